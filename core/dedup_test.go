// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/journal/wal"
)

func sendID(t *testing.T, b *core.Broker, dest, body, id string) {
	t.Helper()
	d, _ := core.ParseDestination(dest)
	m := &core.Message{Destination: d, Persistent: true, Body: []byte(body), Priority: 4, Header: []string{core.DedupHeader, id}}
	if err := b.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func depth(t *testing.T, b *core.Broker, queue string) int {
	t.Helper()
	st, _ := b.QueueStats(queue)
	return st.Pending
}

// TestDedup: a SEND whose _AMQ_DUPL_ID a queue stored recently is
// confirmed and dropped, also when the copies race, and also after a
// restart (from the journal, and from a snapshot once the first copy was
// consumed).
func TestDedup(t *testing.T) {
	dir := t.TempDir()
	wo := wal.Options{SegmentBytes: 64 << 10, MaxRecordBytes: 16 << 10}
	b, stop := openOnWal(t, dir, wo)
	sendID(t, b, "/queue/d", "one", "a")
	sendID(t, b, "/queue/d", "one again", "a")
	sendID(t, b, "/queue/other", "same id, other queue", "a")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); sendID(t, b, "/queue/d", "raced", "r") }()
	}
	wg.Wait()
	if n := depth(t, b, "d"); n != 2 {
		t.Fatalf("queue d holds %d, want 2 (a and r once each)", n)
	}
	if n := depth(t, b, "other"); n != 1 {
		t.Fatalf("queue other holds %d, want 1", n)
	}
	// Consume everything of d, then snapshot: the ids live on in it.
	s, in := subscribe(t, b, "/queue/d", core.SubscribeOptions{Mode: core.AckClientIndividual})
	for range 2 {
		d := in.next(t)
		if err := s.Ack(context.Background(), d.Msg.Seq); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	sendID(t, b, "/queue/d", "after the snapshot", "late")
	if _, err := b.Maintain(true); err != nil {
		t.Fatal(err)
	}
	sendID(t, b, "/queue/d", "in the journal only", "tail")
	stop()

	b2, stop2 := openOnWal(t, dir, wo)
	defer stop2()
	for _, id := range []string{"a", "r", "late", "tail"} {
		sendID(t, b2, "/queue/d", "resent "+id, id)
	}
	_, in2 := subscribe(t, b2, "/queue/d", core.SubscribeOptions{})
	for _, want := range []string{"after the snapshot", "in the journal only"} {
		if d := in2.next(t); string(d.Msg.Body) != want {
			t.Fatalf("after restart got %q, want %q", d.Msg.Body, want)
		}
	}
	in2.none(t, 100*time.Millisecond)
	sendID(t, b2, "/queue/d", "new", "fresh")
	if d := in2.next(t); string(d.Msg.Body) != "new" {
		t.Fatalf("a new id: got %q", d.Msg.Body)
	}
}

// TestDedupWindowBound: the window forgets the oldest ids.
func TestDedupWindowBound(t *testing.T) {
	b, stop := openOnWal(t, t.TempDir(), wal.Options{})
	defer stop()
	d, _ := core.ParseDestination("/queue/w")
	var batch []*core.Message
	for i := range core.DefaultDedupWindow + 10 {
		batch = append(batch, &core.Message{Destination: d, Persistent: true, Body: []byte("x"), Header: []string{core.DedupHeader, fmt.Sprint(i)}})
		if len(batch) == 1000 || i == core.DefaultDedupWindow+9 {
			if err := b.SendMany(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	sendID(t, b, "/queue/w", "x", "0")                                   // forgotten: stored again
	sendID(t, b, "/queue/w", "x", fmt.Sprint(core.DefaultDedupWindow+5)) // remembered
	if n := depth(t, b, "w"); n != core.DefaultDedupWindow+11 {
		t.Fatalf("depth %d, want %d", n, core.DefaultDedupWindow+11)
	}
}
