// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/journal/wal"
)

// TestMoveCopyAndRetry: messages moved between queues, copied, and dead
// letters sent back to where they came from, each in the journal: a
// restart finds them where they went. A message in flight does not move.
func TestMoveCopyAndRetry(t *testing.T) {
	dir := t.TempDir()
	opts := core.Options{Redelivery: []core.RedeliveryRule{{Pattern: "work", Policy: core.RedeliveryPolicy{MaxRedeliveries: 0, DeadLetterQueue: "ActiveMQ.DLQ"}}}}
	b, stop := openOnWalWith(t, dir, wal.Options{}, opts)
	ctx := context.Background()
	var seqs []uint64
	for i := range 5 {
		seqs = append(seqs, send(t, b, "/queue/a", fmt.Sprint("a", i), true).Seq)
	}
	moved, skipped, err := b.MoveMessages(ctx, "a", "b", seqs[1:3], false)
	if err != nil || moved != 2 || skipped != 0 {
		t.Fatalf("move: %d moved, %d skipped, %v", moved, skipped, err)
	}
	if moved, _, err := b.MoveMessages(ctx, "a", "c", nil, true); err != nil || moved != 3 {
		t.Fatalf("copy: %d, %v", moved, err)
	}
	// A dead letter, sent back.
	send(t, b, "/queue/work", "poison", true)
	s, in := subscribe(t, b, "/queue/work", core.SubscribeOptions{Mode: core.AckClientIndividual})
	if err := s.Nack(in.next(t).Msg.Seq); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the dead letter", func() bool { st, _ := b.QueueStats("ActiveMQ.DLQ"); return st.Pending == 1 })
	s.Close()
	if moved, _, err := b.RetryDeadLetters(ctx, "ActiveMQ.DLQ", nil); err != nil || moved != 1 {
		t.Fatalf("retry: %d, %v", moved, err)
	}
	// One in flight stays where it is.
	inflight := send(t, b, "/queue/busy", "held", true)
	hold, hin := subscribe(t, b, "/queue/busy", core.SubscribeOptions{Mode: core.AckClientIndividual})
	hin.next(t)
	if moved, skipped, _ := b.MoveMessages(ctx, "busy", "elsewhere", []uint64{inflight.Seq}, false); moved != 0 || skipped != 1 {
		t.Fatalf("a message in flight: %d moved, %d skipped", moved, skipped)
	}
	hold.Close()
	if _, _, err := b.MoveMessages(ctx, "nothere", "b", nil, false); err == nil {
		t.Fatal("a move from a queue that does not exist")
	}

	check := func(b *core.Broker, when string) {
		t.Helper()
		for q, want := range map[string]int{"a": 3, "b": 2, "c": 3, "work": 1, "ActiveMQ.DLQ": 0} {
			if st, _ := b.QueueStats(q); st.Pending != want {
				t.Errorf("%s: %s holds %d, want %d", when, q, st.Pending, want)
			}
		}
		// What they hold, by a consumer (after a restart they are paged).
		_, bin := subscribe(t, b, "/queue/b", core.SubscribeOptions{Mode: core.AckClientIndividual})
		if m1, m2 := bin.next(t).Msg, bin.next(t).Msg; string(m1.Body) != "a1" || string(m2.Body) != "a2" {
			t.Errorf("%s: b holds %q and %q", when, m1.Body, m2.Body)
		}
		_, win := subscribe(t, b, "/queue/work", core.SubscribeOptions{Mode: core.AckClientIndividual})
		back := win.next(t).Msg
		if string(back.Body) != "poison" || back.Get(core.HeaderOriginalDestination) != "" || back.Get(core.HeaderDLQCause) != "" {
			t.Errorf("%s: the retried dead letter is %+v", when, back)
		}
	}
	check(b, "live")
	stop() // the checks' consumers acked nothing: all comes back
	b2, stop2 := openOnWalWith(t, dir, wal.Options{}, opts)
	defer stop2()
	check(b2, "after a restart")
}
