// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/memlog"
)

// collect is a consumer that keeps what it is given.
type collect chan Delivery

func (c collect) Deliver(d Delivery) { c <- d }

func limitedStore(records int) *memlog.Store {
	s := memlog.NewStore(1 << 20)
	s.LimitBatches(journal.BatchLimit{Records: records})
	return s
}

func persistentTo(queue string, i int) *Message {
	return &Message{Destination: Destination{Queue, queue}, Persistent: true, Priority: 4, Body: fmt.Appendf(nil, "m%d", i)}
}

// A burst of SENDs (SendMany) over the journal's batch limit is split into
// appends that fit, not refused (the JetStream journal takes 1,000 records;
// the STOMP listener gathers up to 1,024 SENDs), and every message learns
// the record it landed in: paging reads it back from there.
func TestBurstOverTheBatchLimitIsSplit(t *testing.T) {
	const limit, n = 100, 1050
	store := limitedStore(limit)
	b, l := openMem(t, store)
	msgs := make([]*Message, n)
	for i := range msgs {
		msgs[i] = persistentTo("q", i)
	}
	// A non-persistent message and a topic message among them need no record.
	msgs[7].Persistent = false
	msgs[500].Destination = Destination{Topic, "t"}
	if err := b.SendMany(context.Background(), msgs); err != nil {
		t.Fatalf("a burst of %d sends on a journal that takes %d at once: %v", n, limit, err)
	}
	for i, m := range msgs {
		if i == 7 || i == 500 {
			if m.index != 0 {
				t.Fatalf("message %d needs no record but has index %d", i, m.index)
			}
			continue
		}
		r, err := l.Read(m.index)
		if err != nil {
			t.Fatalf("message %d: record %d: %v", i, m.index, err)
		}
		got, err := decodeEnqueue(r.Data)
		if err != nil || got.Seq != m.Seq {
			t.Fatalf("message %d (seq %d) points at record %d, which holds seq %d (%v)", i, m.Seq, m.index, got.Seq, err)
		}
	}
	if st, _ := b.QueueStats("q"); st.Pending != n-1 {
		t.Fatalf("queue holds %d, want %d", st.Pending, n-1)
	}
	b.Close()
	l.Close()
	b2, l2 := openMem(t, store)
	defer l2.Close()
	defer b2.Close()
	if st, _ := b2.QueueStats("q"); st.Pending != n-2 {
		t.Fatalf("after a restart the queue holds %d, want %d (the persistent ones)", st.Pending, n-2)
	}
}

// One SEND, whose records must land together (a composite destination's
// copies, a topic's durable subscriptions' copies), and one transaction are
// refused up front with ErrTooLarge when they need more records than one
// append holds: nothing is stored or delivered, and a transaction's acked
// messages stay delivered, to be acknowledged again.
func TestAtomicOverTheBatchLimitIsRefused(t *testing.T) {
	const limit = 10
	store := limitedStore(limit)
	b, l := openMem(t, store)
	defer l.Close()
	defer b.Close()
	ctx := context.Background()

	in := make(collect, 100)
	if _, err := b.Subscribe(Destination{Queue, "c0"}, SubscribeOptions{Mode: AckAuto}, in); err != nil {
		t.Fatal(err)
	}
	composite := func(k int) []*Message {
		var msgs []*Message
		for i := range k {
			m := persistentTo(fmt.Sprintf("c%d", i), 0)
			msgs = append(msgs, m)
		}
		return msgs
	}
	last := l.LastIndex()
	err := b.SendConfirmed(ctx, composite(limit+1), func() { t.Error("confirmed a send that was refused") })
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a composite SEND of %d records on a journal that takes %d: %v, want ErrTooLarge", limit+1, limit, err)
	}
	if l.LastIndex() != last {
		t.Fatalf("a refused send stored records %d-%d", last+1, l.LastIndex())
	}
	select {
	case d := <-in:
		t.Fatalf("a refused send delivered %q", d.Msg.Body)
	case <-time.After(50 * time.Millisecond):
	}
	if err := b.SendConfirmed(ctx, composite(limit), nil); err != nil {
		t.Fatalf("a composite SEND of exactly the limit: %v", err)
	}
	<-in

	// Durable subscriptions' copies count too.
	topic := Destination{Topic, "news"}
	for i := range limit + 1 {
		s, err := b.SubscribeDurable(ctx, "c", fmt.Sprint("d", i), topic, SubscribeOptions{Mode: AckAuto}, make(collect, 10))
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	last = l.LastIndex()
	if err := b.Send(ctx, &Message{Destination: topic, Persistent: true, Priority: 4, Body: []byte("x")}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a topic SEND copied to %d durable subscriptions on a journal that takes %d: %v, want ErrTooLarge", limit+1, limit, err)
	}
	if l.LastIndex() != last {
		t.Fatalf("a refused topic send stored records %d-%d", last+1, l.LastIndex())
	}

	// A transaction: its acks and sends.
	for i := range 3 {
		if err := b.Send(ctx, persistentTo("work", i)); err != nil {
			t.Fatal(err)
		}
	}
	work := make(collect, 10)
	sub, err := b.Subscribe(Destination{Queue, "work"}, SubscribeOptions{Mode: AckClientIndividual}, work)
	if err != nil {
		t.Fatal(err)
	}
	var acks []TxAck
	for range 3 {
		d := <-work
		acks = append(acks, TxAck{Sub: sub, Seq: d.Msg.Seq})
	}
	var sends []*Message
	for i := range limit {
		sends = append(sends, persistentTo("out", i))
	}
	last = l.LastIndex()
	if err := b.Commit(ctx, sends, acks); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a transaction of %d sends and acks on a journal that takes %d: %v, want ErrTooLarge", limit+1, limit, err)
	}
	if l.LastIndex() != last {
		t.Fatalf("a refused transaction stored records %d-%d", last+1, l.LastIndex())
	}
	if st, _ := b.QueueStats("out"); st.Pending != 0 {
		t.Fatalf("a refused transaction delivered %d messages", st.Pending)
	}
	for _, a := range acks {
		if err := sub.Ack(ctx, a.Seq); err != nil {
			t.Fatalf("a message acked in a refused transaction cannot be acked again: %v", err)
		}
	}
	if err := b.Commit(ctx, sends[:limit-1], nil); err != nil {
		t.Fatalf("a transaction within the limit: %v", err)
	}
}

// A purge needs no atomicity: one of more records than an append holds is
// split, and a restart does not bring anything back.
func TestPurgeOverTheBatchLimit(t *testing.T) {
	store := limitedStore(2)
	b, l := openMem(t, store)
	const n = 2*purgeChunk + 10 // three purge records, and a delete's
	msgs := make([]*Message, n)
	for i := range msgs {
		msgs[i] = persistentTo("big", i)
	}
	if err := b.SendMany(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteQueue(context.Background(), "big"); err != nil {
		t.Fatalf("delete of a queue of %d messages on a journal that takes 2 records at once: %v", n, err)
	}
	b.Close()
	l.Close()
	b2, l2 := openMem(t, store)
	defer l2.Close()
	defer b2.Close()
	if r := b2.Recovery(); r.Messages != 0 {
		t.Fatalf("after the delete and a restart %d messages are back", r.Messages)
	}
}

// fullLog is a journal whose appends fail as a full device's do while full
// is set, and which then reports LowOnSpace.
type fullLog struct {
	journal.Log
	full atomic.Bool
}

func (l *fullLog) Append(ctx context.Context, recs []journal.Record) (uint64, uint64, error) {
	if l.full.Load() {
		return 0, 0, fmt.Errorf("%w: test", journal.ErrNoSpace)
	}
	return l.Log.Append(ctx, recs)
}

func (l *fullLog) LowOnSpace() bool { return l.full.Load() }

// With no room at all in the journal, acknowledgements nobody waits for
// (a burst of ACKs without receipts, auto acks) are done in memory and
// journaled once there is room; an ACK whose RECEIPT would say "durable"
// is refused instead. A restart after they are journaled does not bring
// the messages back.
func TestAcksWaitForRoom(t *testing.T) {
	store := memlog.NewStore(1 << 20)
	ml, err := store.Open()
	if err != nil {
		t.Fatal(err)
	}
	fl := &fullLog{Log: ml}
	b, err := Open(Options{Journal: fl, Logger: slog.New(slog.DiscardHandler), MaintainEvery: -1, ExpirySweep: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := b.Send(context.Background(), persistentTo("q", i)); err != nil {
			t.Fatal(err)
		}
	}
	in := make(collect, 10)
	sub, err := b.Subscribe(Destination{Queue, "q"}, SubscribeOptions{Mode: AckClientIndividual}, in)
	if err != nil {
		t.Fatal(err)
	}
	var ds []Delivery
	for range 4 {
		ds = append(ds, <-in)
	}
	fl.full.Store(true)
	if err := sub.AckMany(context.Background(), []uint64{ds[0].Msg.Seq, ds[1].Msg.Seq}); err != nil {
		t.Fatalf("unreceipted acks with no room in the journal: %v", err)
	}
	if err := sub.Ack(context.Background(), ds[2].Msg.Seq); !errors.Is(err, journal.ErrNoSpace) {
		t.Fatalf("a receipted ack with no room in the journal: %v, want ErrNoSpace", err)
	}
	if n := b.DeferredAcks(); n != 1 {
		t.Fatalf("%d ack records deferred, want 1", n)
	}
	if err := b.Send(context.Background(), persistentTo("q", 9)); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("a persistent send with no room: %v, want ErrStoreUnavailable", err)
	}
	fl.full.Store(false)
	for deadline := time.Now().Add(5 * time.Second); b.DeferredAcks() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the deferred acks were not journaled 5s after room came back")
		}
	}
	if err := sub.Ack(context.Background(), ds[3].Msg.Seq); err != nil {
		t.Fatal(err)
	}
	b.Close()
	ml.Close()
	b2, l2 := openMem(t, store)
	defer l2.Close()
	defer b2.Close()
	if r := b2.Recovery(); r.Messages != 1 { // the one whose receipted ack was refused
		t.Fatalf("after a restart %d messages, want 1", r.Messages)
	}
}
