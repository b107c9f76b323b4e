// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/journal/wal"
)

// TestPaging: past the memory limit a queue keeps persistent messages in
// the journal only and reads them back in order as a consumer drains it;
// strictly by priority; through compaction moving paged messages' records
// (read back from where the projection says they went), and across a
// restart, after which every pending message starts paged.
func TestPaging(t *testing.T) {
	dir := t.TempDir()
	pad := strings.Repeat("x", 8000)
	body := func(p, i int) string { return fmt.Sprintf("p%d-%05d-%s", p, i, pad) }
	one := int64((&core.Message{Body: []byte(body(0, 0))}).Size())
	opts := core.Options{MemoryLimit: 50 * one}
	wo := wal.Options{SegmentBytes: 4 << 20, MaxRecordBytes: 64 << 10}
	b, stop := openOnWalWith(t, dir, wo, opts)
	d, _ := core.ParseDestination("/queue/big")
	sendP := func(b *core.Broker, prio, i int) {
		t.Helper()
		if err := b.Send(context.Background(), &core.Message{Destination: d, Persistent: true, Priority: uint8(prio), Body: []byte(body(prio, i))}); err != nil {
			t.Fatal(err)
		}
	}
	// Low-priority messages among many normal ones: consumed last, their
	// records end up few in head segments that compaction rewrites.
	const low, normal = 300, 3000
	for i := range normal {
		sendP(b, 4, i)
		if i%10 == 0 {
			sendP(b, 1, i/10)
		}
	}
	st, _ := b.QueueStats("big")
	if st.Pending != low+normal || st.Paged < low+normal-60 || st.MemoryBytes > 51*one {
		t.Fatalf("after %d sends with room for 50: %+v", low+normal, st)
	}
	sendP(b, 9, 0) // paged too, but it goes first
	s, in := subscribe(t, b, "/queue/big", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 10})
	expect := func(in inbox, s *core.Subscription, prio, from, k int) {
		t.Helper()
		for i := from; i < from+k; i++ {
			got := in.next(t)
			if string(got.Msg.Body) != body(prio, i) {
				t.Fatalf("got %q, want %q", got.Msg.Body[:8], body(prio, i)[:8])
			}
			if err := s.Ack(context.Background(), got.Msg.Seq); err != nil {
				t.Fatal(err)
			}
		}
	}
	expect(in, s, 9, 0, 1)
	expect(in, s, 4, 0, normal)
	// The head segments are now mostly acknowledged: compaction moves the
	// paged low-priority messages' records forward and frees them.
	var moved int
	for range 2 {
		res, err := b.Maintain(true)
		if err != nil {
			t.Fatal(err)
		}
		moved += len(res.Compact.Moves)
	}
	if moved == 0 {
		t.Fatal("compaction moved nothing: the test does not exercise moved paged messages")
	}
	expect(in, s, 1, 0, 100)
	s.Close()
	if st, _ := b.QueueStats("big"); st.MemoryBytes > 61*one {
		t.Fatalf("memory over the limit while draining: %+v", st)
	}
	stop()

	b, stop = openOnWalWith(t, dir, wo, opts)
	defer stop()
	st, _ = b.QueueStats("big")
	if st.Pending != low-100 || st.MemoryBytes > 51*one || st.Paged == 0 {
		t.Fatalf("after a restart with %d left: %+v", low-100, st)
	}
	s, in = subscribe(t, b, "/queue/big", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 10})
	expect(in, s, 1, 100, low-100)
	in.none(t, 0)
}

// After one maintenance pass whose compaction moved paged messages'
// records and freed the old ones, the queue reads them back from where
// they went, with no further pass.
func TestPagedMessagesMovedOnce(t *testing.T) {
	pad := strings.Repeat("x", 2000)
	body := func(p, i int) string { return fmt.Sprintf("p%d-%05d-%s", p, i, pad) }
	one := int64((&core.Message{Body: []byte(body(0, 0))}).Size())
	b, stop := openOnWalWith(t, t.TempDir(), wal.Options{SegmentBytes: 1 << 20, MaxRecordBytes: 64 << 10}, core.Options{MemoryLimit: 20 * one})
	defer stop()
	d, _ := core.ParseDestination("/queue/moved")
	for i := range 3000 {
		for _, p := range []int{4, 1} {
			if p == 1 && i%30 != 0 {
				continue
			}
			if err := b.Send(context.Background(), &core.Message{Destination: d, Persistent: true, Priority: uint8(p), Body: []byte(body(p, i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	s, in := subscribe(t, b, "/queue/moved", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 10})
	for range 3000 { // the normal ones go first, and are acknowledged
		got := in.next(t)
		if got.Msg.Priority != 4 {
			t.Fatalf("got priority %d before the normal ones were through", got.Msg.Priority)
		}
		if err := s.Ack(context.Background(), got.Msg.Seq); err != nil {
			t.Fatal(err)
		}
	}
	res, err := b.Maintain(true)
	if err != nil || len(res.Compact.Moves) == 0 || len(res.Compact.Removed) == 0 {
		t.Fatalf("maintenance moved %d records and freed %d segments (%v): the test needs both", len(res.Compact.Moves), len(res.Compact.Removed), err)
	}
	for i := 0; i < 3000; i += 30 {
		got := in.next(t)
		if string(got.Msg.Body) != body(1, i) {
			t.Fatalf("got %.8q, want %.8q", got.Msg.Body, body(1, i))
		}
		if err := s.Ack(context.Background(), got.Msg.Seq); err != nil {
			t.Fatal(err)
		}
	}
}
