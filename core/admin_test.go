// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/journal/wal"
)

// TestPurgeAndDelete: a purge removes what a queue holds, journaled (a
// restart does not bring it back); a consumer holding purged messages keeps
// its room; a delete is refused while consumers are attached and otherwise
// removes the queue for good.
func TestPurgeAndDelete(t *testing.T) {
	dir := t.TempDir()
	b, stop := openOnWal(t, dir, wal.Options{})
	for i := range 10 {
		send(t, b, "/queue/pq", fmt.Sprint(i), true)
	}
	s, in := subscribe(t, b, "/queue/pq", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 2})
	d := in.next(t)
	in.next(t)
	n, err := b.Purge(context.Background(), "pq")
	if err != nil || n != 10 {
		t.Fatalf("purge: %d, %v; want 10", n, err)
	}
	if err := s.Ack(context.Background(), d.Msg.Seq); err != nil {
		t.Fatal(err)
	}
	send(t, b, "/queue/pq", "after", true)
	if got := in.next(t); string(got.Msg.Body) != "after" {
		t.Fatalf("after the purge the consumer got %q", got.Msg.Body)
	}
	if err := b.DeleteQueue(context.Background(), "pq"); !errors.Is(err, core.ErrInUse) {
		t.Fatalf("delete with a consumer: %v", err)
	}
	stop()
	b, stop = openOnWal(t, dir, wal.Options{})
	if st, _ := b.QueueStats("pq"); st.Pending != 1 {
		t.Fatalf("after restart: %+v, want only the message sent after the purge", st)
	}
	send(t, b, "/queue/gone", "x", true)
	if err := b.DeleteQueue(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.QueueStats("gone"); ok {
		t.Fatal("a deleted queue is still there")
	}
	stop()
	b, stop = openOnWal(t, dir, wal.Options{})
	defer stop()
	if _, ok := b.QueueStats("gone"); ok {
		t.Fatal("a deleted queue came back after a restart")
	}
	_, in2 := subscribe(t, b, "/queue/gone", core.SubscribeOptions{})
	in2.none(t, 50*time.Millisecond)
}
