// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/journal/wal"
)

// TestPriority: a queue dispatches strictly by priority, highest first,
// FIFO within a priority, for messages waiting when a consumer comes and
// after a restart; a message given back goes back to its place.
func TestPriority(t *testing.T) {
	dir := t.TempDir()
	b, stop := openOnWal(t, dir, wal.Options{})
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 200
	for _, q := range []string{"/queue/live", "/queue/restart"} {
		d, _ := core.ParseDestination(q)
		for i := range n {
			m := &core.Message{Destination: d, Persistent: true, Priority: uint8(rng.IntN(10)), Body: []byte(fmt.Sprint(i))}
			if err := b.Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(b *core.Broker, queue string, giveBack bool) {
		t.Helper()
		s, in := subscribe(t, b, queue, core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 1})
		var prev *core.Message
		for i := range n {
			dl := in.next(t)
			m := dl.Msg
			if prev != nil && (m.Priority > prev.Priority || m.Priority == prev.Priority && m.Seq < prev.Seq) {
				t.Fatalf("delivery %d: priority %d seq %d after priority %d seq %d", i, m.Priority, m.Seq, prev.Priority, prev.Seq)
			}
			if giveBack && i == 10 {
				// Given back, it is the next delivered again.
				if err := s.Nack(m.Seq); err != nil {
					t.Fatal(err)
				}
				if again := in.next(t); again.Msg.Seq != m.Seq {
					t.Fatalf("after a NACK of seq %d the next is %d", m.Seq, again.Msg.Seq)
				}
			}
			prev = m
			if err := s.Ack(context.Background(), m.Seq); err != nil {
				t.Fatal(err)
			}
		}
	}
	check(b, "/queue/live", true)
	stop()
	b2, stop2 := openOnWal(t, dir, wal.Options{})
	defer stop2()
	check(b2, "/queue/restart", true)
}

// TestConsumerPriority: while the higher-priority consumer has room, the
// lower one gets nothing.
func TestConsumerPriority(t *testing.T) {
	b, stop := openOnWal(t, t.TempDir(), wal.Options{})
	defer stop()
	_, lo := subscribe(t, b, "/queue/cp", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 10, Priority: 1})
	_, hi := subscribe(t, b, "/queue/cp", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 2, Priority: 5})
	for i := range 3 {
		send(t, b, "/queue/cp", fmt.Sprint(i), true)
	}
	hi.next(t)
	hi.next(t)
	if d := lo.next(t); string(d.Msg.Body) != "2" {
		t.Fatalf("the low-priority consumer got %q, want the one the high-priority consumer had no room for", d.Msg.Body)
	}
	hi.none(t, 50*time.Millisecond)
}
