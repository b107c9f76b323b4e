// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/journal/wal"
)

// TestQueueStats: depth, counts and bytes follow sends, acks, redelivery
// delays, expiry and dead-lettering.
func TestQueueStats(t *testing.T) {
	opts := core.Options{ExpirySweep: 10 * time.Millisecond, Redelivery: []core.RedeliveryRule{
		{Pattern: "st", Policy: core.RedeliveryPolicy{MaxRedeliveries: 1, InitialDelay: time.Hour}}}}
	b, stop := openOnWalWith(t, t.TempDir(), wal.Options{}, opts)
	defer stop()
	body := strings.Repeat("x", 1000)
	a := send(t, b, "/queue/st", body, true)
	send(t, b, "/queue/st", body, true)
	send(t, b, "/queue/st", body, false)
	sendExpiring(t, b, "/queue/st", body, 20*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // the sweep expires the last
	st, _ := b.QueueStats("st")
	if st.Pending != 3 || st.Enqueued != 4 || st.Expired != 1 || st.MemoryBytes != 3*int64(a.Size()) || st.JournalBytes != 2*int64(a.Size()) {
		t.Fatalf("after sends and an expiry: %+v (one message is %d bytes)", st, a.Size())
	}
	s, in := subscribe(t, b, "/queue/st", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 2})
	d1, d2 := in.next(t), in.next(t)
	if err := s.Ack(context.Background(), d1.Msg.Seq); err != nil {
		t.Fatal(err)
	}
	if err := s.NackWait(d2.Msg.Seq); err != nil { // delayed an hour
		t.Fatal(err)
	}
	st, _ = b.QueueStats("st")
	if st.Dequeued != 1 || st.Delayed != 1 || st.Depth() != 2 || st.Consumers != 1 || st.MemoryBytes != 2*int64(a.Size()) {
		t.Fatalf("after an ack and a NACK: %+v", st)
	}
	d, _ := core.ParseDestination("/queue/st")
	for _, origin := range []uint64{7, 8, 7} {
		if err := b.Send(context.Background(), &core.Message{Destination: d, Body: []byte("p"), Origin: origin}); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ = b.QueueStats("st"); st.Producers != 2 {
		t.Fatalf("producers: %+v", st)
	}
	names := []string{}
	for _, q := range b.Queues() {
		names = append(names, q.Destination.Name)
	}
	if strings.Join(names, ",") != "st" {
		t.Fatalf("Queues: %v", names)
	}
}
