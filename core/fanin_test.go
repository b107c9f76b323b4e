// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/journal/memlog"
)

// TestWildcardQueueSubscription: one Subscribe of orders.> takes from every
// matching queue, those there before and one made after, and leaves the
// rest; acknowledgements (one at a time, many at once, in a transaction)
// reach the queue that delivered; Close gives back what is unacknowledged
// to each queue and stops following new ones.
func TestWildcardQueueSubscription(t *testing.T) {
	b, _ := open(t, memlog.NewStore(1<<20), core.Options{})
	ctx := context.Background()
	send(t, b, "/queue/orders.eu", "eu1", true)
	send(t, b, "/queue/orders.eu", "eu2", true)
	send(t, b, "/queue/other", "x", true)
	s, in := subscribe(t, b, "/queue/orders.>", core.SubscribeOptions{Mode: core.AckClientIndividual})
	if s.Destination().Name != "orders.>" {
		t.Fatalf("the subscription's destination is %v", s.Destination())
	}
	got := map[string]core.Delivery{}
	for range 2 {
		d := in.next(t)
		got[string(d.Msg.Body)] = d
	}
	send(t, b, "/queue/orders.us", "us1", true) // a queue made after the SUBSCRIBE
	send(t, b, "/queue/orders.us", "us2", true)
	for range 2 {
		d := in.next(t)
		got[string(d.Msg.Body)] = d
	}
	in.none(t, 50*time.Millisecond) // nothing from /queue/other
	if s.Unacked() != 4 || !s.Has(got["us1"].Msg.Seq) || s.Has(12345) {
		t.Fatalf("Unacked %d, Has(us1) %t", s.Unacked(), s.Has(got["us1"].Msg.Seq))
	}
	if err := s.Ack(ctx, got["eu1"].Msg.Seq); err != nil {
		t.Fatal(err)
	}
	// One AckMany across two queues, and a transaction's ack through the
	// wildcard subscription.
	if err := s.AckMany(ctx, []uint64{got["eu2"].Msg.Seq, got["us1"].Msg.Seq}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx, nil, []core.TxAck{{Sub: s, Seq: got["us2"].Msg.Seq}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, got["eu1"].Msg.Seq); !errors.Is(err, core.ErrUnknownAck) {
		t.Fatalf("a second ack of eu1: %v, want ErrUnknownAck", err)
	}
	for _, q := range []string{"orders.eu", "orders.us"} {
		if st, _ := b.QueueStats(q); st.Pending != 0 || st.InFlight != 0 {
			t.Fatalf("%s after every ack: %+v", q, st)
		}
	}
	// Unacknowledged at Close: back to its own queue, for the next consumer.
	send(t, b, "/queue/orders.eu", "eu3", true)
	d := in.next(t)
	if err := s.Nack(d.Msg.Seq); err != nil {
		t.Fatal(err)
	}
	if d = in.next(t); string(d.Msg.Body) != "eu3" || !d.Redelivered {
		t.Fatalf("after a NACK: %q redelivered %t", d.Msg.Body, d.Redelivered)
	}
	s.Close()
	send(t, b, "/queue/orders.new", "n", true)
	in.none(t, 50*time.Millisecond)
	_, in2 := subscribe(t, b, "/queue/orders.eu", core.SubscribeOptions{Mode: core.AckClientIndividual})
	if d := in2.next(t); string(d.Msg.Body) != "eu3" {
		t.Fatalf("after Close the queue gave %q, want eu3 back", d.Msg.Body)
	}
}

// TestWildcardsSkipPrivateDestinations: a /topic/> subscriber gets what is
// published to topics, not what goes to a connection's temporary topic
// (its replies), nor does a /queue/> subscriber take from temporary queues.
func TestWildcardsSkipPrivateDestinations(t *testing.T) {
	b, _ := open(t, memlog.NewStore(1<<20), core.Options{})
	ctx := context.Background()
	_, all := subscribe(t, b, "/topic/>", core.SubscribeOptions{})
	_, allQueues := subscribe(t, b, "/queue/>", core.SubscribeOptions{})
	for _, d := range []core.Destination{core.TempDestination(core.Topic, "conn1", "replies"), core.TempDestination(core.Queue, "conn1", "replies")} {
		if err := b.Send(ctx, &core.Message{Destination: d, Body: []byte("private")}); err != nil {
			t.Fatal(err)
		}
	}
	send(t, b, "/topic/news", "public", false)
	if d := all.next(t); string(d.Msg.Body) != "public" {
		t.Fatalf("the /topic/> subscriber got %q", d.Msg.Body)
	}
	all.none(t, 50*time.Millisecond)
	allQueues.none(t, 50*time.Millisecond)
}
