// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/journal/memlog"
	"github.com/cairnmq/cairn/journal/wal"
)

var quiet = slog.New(slog.DiscardHandler)

// inbox is a test consumer: deliveries land in a channel.
type inbox chan core.Delivery

func (c inbox) Deliver(d core.Delivery) { c <- d }

func (c inbox) next(t *testing.T) core.Delivery {
	t.Helper()
	select {
	case d := <-c:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery within 5s")
	}
	return core.Delivery{}
}

func (c inbox) none(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case d := <-c:
		t.Fatalf("unexpected delivery %q", d.Msg.Body)
	case <-time.After(within):
	}
}

// open starts a broker on store; stop ends it and closes its journal.
func open(t *testing.T, store *memlog.Store, opts core.Options) (b *core.Broker, stop func()) {
	t.Helper()
	l, err := store.Open()
	if err != nil {
		t.Fatal(err)
	}
	opts.Journal, opts.Logger = l, quiet
	b, err = core.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() { once.Do(func() { b.Close(); l.Close() }) }
	t.Cleanup(stop)
	return b, stop
}

// openOnWal starts a broker on a wal journal in dir, with maintenance only
// when the test calls Maintain; stop ends both.
func openOnWal(t *testing.T, dir string, wo wal.Options) (b *core.Broker, stop func()) {
	t.Helper()
	return openOnWalWith(t, dir, wo, core.Options{})
}

// openOnWalWith is openOnWal with broker options (its journal, logger and
// maintenance settings are filled in).
func openOnWalWith(t *testing.T, dir string, wo wal.Options, opts core.Options) (b *core.Broker, stop func()) {
	t.Helper()
	wo.Logger = quiet
	l, err := wal.Open(dir, wo)
	if err != nil {
		t.Fatal(err)
	}
	opts.Journal, opts.Logger, opts.MaintainEvery, opts.SnapshotEvery = l, quiet, -1, 1
	b, err = core.Open(opts)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	return b, func() { b.Close(); l.Close() }
}

func send(t *testing.T, b *core.Broker, dest string, body string, persistent bool) *core.Message {
	t.Helper()
	d, err := core.ParseDestination(dest)
	if err != nil {
		t.Fatal(err)
	}
	m := &core.Message{Destination: d, Persistent: persistent, Body: []byte(body), Priority: 4}
	if err := b.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m
}

func subscribe(t *testing.T, b *core.Broker, dest string, opts core.SubscribeOptions) (*core.Subscription, inbox) {
	t.Helper()
	d, _ := core.ParseDestination(dest)
	in := make(inbox, 100000)
	s, err := b.Subscribe(d, opts, in)
	if err != nil {
		t.Fatal(err)
	}
	return s, in
}

// The journal is the truth: a broker opened on it again holds the same
// pending messages, persistent ones only, and what was delivered comes
// back marked redelivered.
func TestReplay(t *testing.T) {
	store := memlog.NewStore(1 << 20)
	b, stop := open(t, store, core.Options{})
	for i := range 5 {
		send(t, b, "/queue/a", fmt.Sprint("a", i), true)
		send(t, b, "/queue/b", fmt.Sprint("b", i), i%2 == 0)
	}
	s, in := subscribe(t, b, "/queue/a", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 3})
	for range 3 {
		d := in.next(t)
		if string(d.Msg.Body) == "a1" {
			continue // delivered, not acked
		}
		if err := s.Ack(context.Background(), d.Msg.Seq); err != nil {
			t.Fatal(err)
		}
	}
	stop()

	b2, _ := open(t, store, core.Options{})
	if r := b2.Recovery(); r.Messages != 3+3 || r.Queues != 2 {
		t.Fatalf("recovery %+v, want 6 messages in 2 queues", r)
	}
	_, in2 := subscribe(t, b2, "/queue/a", core.SubscribeOptions{Mode: core.AckClientIndividual})
	for _, want := range []string{"a1", "a3", "a4"} {
		d := in2.next(t)
		if string(d.Msg.Body) != want {
			t.Fatalf("after replay got %q, want %q", d.Msg.Body, want)
		}
		if want == "a1" && !d.Redelivered {
			t.Fatal("a1 was delivered before the restart and is not marked redelivered")
		}
	}
	_, inb := subscribe(t, b2, "/queue/b", core.SubscribeOptions{})
	for _, want := range []string{"b0", "b2", "b4"} {
		if d := inb.next(t); string(d.Msg.Body) != want {
			t.Fatalf("queue b after replay got %q, want %q (non-persistent ones are gone)", d.Msg.Body, want)
		}
	}
}

// A transaction's sends and acks land together, and survive a restart.
func TestCommit(t *testing.T) {
	store := memlog.NewStore(1 << 20)
	b, stop := open(t, store, core.Options{})
	send(t, b, "/queue/in", "work", true)
	s, in := subscribe(t, b, "/queue/in", core.SubscribeOptions{Mode: core.AckClientIndividual})
	d := in.next(t)
	out := &core.Message{Destination: core.Destination{Kind: core.Queue, Name: "out"}, Persistent: true, Body: []byte("result")}
	if err := b.Commit(context.Background(), []*core.Message{out}, []core.TxAck{{Sub: s, Seq: d.Msg.Seq}}); err != nil {
		t.Fatal(err)
	}
	stop()
	b2, _ := open(t, store, core.Options{})
	if st, _ := b2.QueueStats("in"); st.Pending != 0 {
		t.Fatalf("the acked input is back: %+v", st)
	}
	_, outIn := subscribe(t, b2, "/queue/out", core.SubscribeOptions{})
	if d := outIn.next(t); string(d.Msg.Body) != "result" {
		t.Fatalf("got %q", d.Msg.Body)
	}
}

// A queue whose consumer stops reading does not hold up another queue, and
// a topic subscriber that stops reading loses its oldest messages instead
// of slowing the publisher or the other subscribers.
func TestSlowConsumersAreIsolated(t *testing.T) {
	b, _ := open(t, memlog.NewStore(1<<20), core.Options{TopicBacklog: 5})
	subscribe(t, b, "/queue/stuck", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 1})
	for range 50 {
		send(t, b, "/queue/stuck", "x", true)
	}
	_, fast := subscribe(t, b, "/queue/flowing", core.SubscribeOptions{Mode: core.AckAuto})
	send(t, b, "/queue/flowing", "y", true)
	fast.next(t)

	_, slow := subscribe(t, b, "/topic/t", core.SubscribeOptions{Mode: core.AckClient, Prefetch: 2})
	fs, fastT := subscribe(t, b, "/topic/t", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 1000})
	time.Sleep(50 * time.Millisecond) // the subscriptions reach the topic's loop
	done := make(chan struct{})
	go func() {
		for i := range 200 {
			send(t, b, "/topic/t", fmt.Sprint(i), false)
		}
		close(done)
	}()
	for i := range 200 {
		d := fastT.next(t)
		if string(d.Msg.Body) != fmt.Sprint(i) {
			t.Fatalf("fast subscriber got %q, want %d", d.Msg.Body, i)
		}
		if err := fs.Ack(context.Background(), d.Msg.Seq); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	slow.next(t)
	slow.next(t)
	slow.none(t, 50*time.Millisecond)
}

// Many producers and consumers on several queues at once (run with -race):
// every message is delivered once and acknowledged, and nothing is left.
func TestConcurrentSendAck(t *testing.T) {
	b, _ := open(t, memlog.NewStore(1<<20), core.Options{})
	const queues, producers, each = 4, 8, 200
	var wg sync.WaitGroup
	seen := make([]map[string]bool, queues)
	for q := range queues {
		seen[q] = map[string]bool{}
		s, in := subscribe(t, b, fmt.Sprint("/queue/q", q), core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 16})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range producers * each / queues {
				d := in.next(t)
				if seen[q][string(d.Msg.Body)] {
					t.Errorf("%q delivered twice", d.Msg.Body)
				}
				seen[q][string(d.Msg.Body)] = true
				if err := s.Ack(context.Background(), d.Msg.Seq); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				send(t, b, fmt.Sprint("/queue/q", (p+i)%queues), fmt.Sprint(p, "-", i), i%3 != 0)
			}
		}()
	}
	wg.Wait()
	for q := range queues {
		st, _ := b.QueueStats(fmt.Sprint("q", q))
		if st.Pending != 0 || st.InFlight != 0 {
			t.Fatalf("queue q%d after everything was acked: %+v", q, st)
		}
	}
}

// Snapshots and compaction: with most messages acknowledged, maintenance
// frees the head of the journal, and a restart starts from the snapshot,
// reading only what is pending, and rebuilds the same state.
func TestSnapshotAndCompaction(t *testing.T) {
	dir := t.TempDir()
	openWal := func() (*core.Broker, func()) {
		return openOnWal(t, dir, wal.Options{SegmentBytes: 64 << 10, MaxRecordBytes: 16 << 10})
	}
	b, stop := openWal()
	body := func(i int) string { return fmt.Sprintf("%04d-%s", i, strings.Repeat("x", 1000)) }
	for i := range 2000 {
		send(t, b, "/queue/keep", body(i), true)
	}
	s, in := subscribe(t, b, "/queue/keep", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 5000})
	kept := map[string]bool{}
	for i := range 2000 {
		d := in.next(t)
		if i%100 == 7 {
			kept[string(d.Msg.Body)] = true
			continue
		}
		if err := s.Ack(context.Background(), d.Msg.Seq); err != nil {
			t.Fatal(err)
		}
	}
	s.Close() // the kept ones go back to pending
	res, err := b.Maintain(true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Snapshot == 0 || res.Pending != len(kept) || len(res.Compact.Removed) == 0 || len(res.Compact.Moves) == 0 {
		t.Fatalf("maintenance: %+v", res)
	}
	// Once more after the moves: the copies are caught up and the snapshot
	// is taken past them.
	if _, err := b.Maintain(true); err != nil {
		t.Fatal(err)
	}
	stop()

	b2, stop2 := openWal()
	defer stop2()
	rec := b2.Recovery()
	if rec.Snapshot == 0 || rec.Messages != len(kept) {
		t.Fatalf("recovery %+v, want a snapshot and %d messages", rec, len(kept))
	}
	_, in2 := subscribe(t, b2, "/queue/keep", core.SubscribeOptions{})
	for range len(kept) {
		d := in2.next(t)
		if !kept[string(d.Msg.Body)] {
			t.Fatalf("after compaction and restart got %q, which was acked", d.Msg.Body[:4])
		}
		if !d.Redelivered {
			t.Fatalf("%q was delivered before and is not marked redelivered", d.Msg.Body[:4])
		}
		delete(kept, string(d.Msg.Body))
	}
	in2.none(t, 50*time.Millisecond)
}

// Acknowledgements in any order, individual and cumulative, over many
// unacknowledged deliveries (the bookkeeping compacts as it goes).
func TestAckBookkeeping(t *testing.T) {
	b, _ := open(t, memlog.NewStore(1<<20), core.Options{})
	for i := range 500 {
		send(t, b, "/queue/ind", fmt.Sprint(i), true)
		send(t, b, "/queue/cum", fmt.Sprint(i), true)
	}
	ind, inInd := subscribe(t, b, "/queue/ind", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 1000})
	var seqs []uint64
	for range 500 {
		seqs = append(seqs, inInd.next(t).Msg.Seq)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(seqs), func(i, j int) { seqs[i], seqs[j] = seqs[j], seqs[i] })
	for i, seq := range seqs {
		if !ind.Has(seq) {
			t.Fatalf("ack %d: %d is not unacknowledged", i, seq)
		}
		if err := ind.Ack(context.Background(), seq); err != nil {
			t.Fatal(err)
		}
		if ind.Has(seq) || ind.Unacked() != 500-i-1 {
			t.Fatalf("after ack %d: Has %t, Unacked %d", i, ind.Has(seq), ind.Unacked())
		}
	}
	if err := ind.Ack(context.Background(), seqs[0]); !errors.Is(err, core.ErrUnknownAck) {
		t.Fatalf("second ack of the same delivery: %v", err)
	}

	cum, inCum := subscribe(t, b, "/queue/cum", core.SubscribeOptions{Mode: core.AckClient, Prefetch: 1000})
	var order []uint64
	for range 500 {
		order = append(order, inCum.next(t).Msg.Seq)
	}
	if err := cum.Ack(context.Background(), order[199]); err != nil {
		t.Fatal(err)
	}
	if cum.Unacked() != 300 || cum.Has(order[0]) || !cum.Has(order[200]) {
		t.Fatalf("after a cumulative ack of the 200th: %d unacked", cum.Unacked())
	}
	if err := cum.Ack(context.Background(), order[100]); !errors.Is(err, core.ErrUnknownAck) {
		t.Fatalf("ack of a delivery already covered: %v", err)
	}
	if err := cum.Ack(context.Background(), order[499]); err != nil || cum.Unacked() != 0 {
		t.Fatalf("last cumulative ack: %v, %d left", err, cum.Unacked())
	}
}

// A topic subscriber that is only briefly slow loses nothing: publishers
// wait while its backlog is half full.
func TestTopicFlowControl(t *testing.T) {
	b, _ := open(t, memlog.NewStore(1<<20), core.Options{TopicBacklog: 100, TopicPublishWait: 10 * time.Second})
	s, in := subscribe(t, b, "/topic/ticks", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 10})
	time.Sleep(20 * time.Millisecond) // the subscription reaches the topic
	const n = 3000
	go func() {
		for i := range n {
			send(t, b, "/topic/ticks", fmt.Sprint(i), false)
		}
	}()
	for i := range n {
		d := in.next(t)
		if string(d.Msg.Body) != fmt.Sprint(i) {
			t.Fatalf("message %d is %q: the subscriber lost messages", i, d.Msg.Body)
		}
		if i%100 == 0 {
			time.Sleep(2 * time.Millisecond) // briefly slow
		}
		if err := s.Ack(context.Background(), d.Msg.Seq); err != nil {
			t.Fatal(err)
		}
	}
}

// Redelivery counts (NACK, consumer gone) are journaled and survive a
// restart, with or without a snapshot in between.
func TestRedeliveryCount(t *testing.T) {
	for _, snapshot := range []bool{false, true} {
		t.Run(fmt.Sprint("snapshot=", snapshot), func(t *testing.T) {
			dir := t.TempDir()
			openWal := func() (*core.Broker, func()) { return openOnWal(t, dir, wal.Options{}) }
			b, stop := openWal()
			send(t, b, "/queue/r", "poison", true)
			s, in := subscribe(t, b, "/queue/r", core.SubscribeOptions{Mode: core.AckClientIndividual})
			for want := range uint32(2) {
				d := in.next(t)
				if d.Redeliveries != want {
					t.Fatalf("delivery %d has Redeliveries %d", want, d.Redeliveries)
				}
				if err := s.Nack(d.Msg.Seq); err != nil {
					t.Fatal(err)
				}
			}
			d := in.next(t) // the third delivery; then the consumer goes away
			if d.Redeliveries != 2 || !d.Redelivered {
				t.Fatalf("third delivery: %+v", d)
			}
			s.Close()
			if snapshot {
				if _, err := b.Maintain(true); err != nil {
					t.Fatal(err)
				}
			}
			stop()
			b2, stop2 := openWal()
			defer stop2()
			_, in2 := subscribe(t, b2, "/queue/r", core.SubscribeOptions{})
			if d := in2.next(t); d.Redeliveries != 3 || !d.Redelivered {
				t.Fatalf("after the restart: Redeliveries %d, redelivered %t; want 3 and true", d.Redeliveries, d.Redelivered)
			}
		})
	}
}
