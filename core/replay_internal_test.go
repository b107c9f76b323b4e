// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/memlog"
)

// openMem opens a broker on a new journal of store, without maintenance.
func openMem(t *testing.T, store *memlog.Store) (*Broker, journal.Log) {
	t.Helper()
	l, err := store.Open()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(Options{Journal: l, Logger: slog.New(slog.DiscardHandler), MaintainEvery: -1})
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	return b, l
}

// A record that does not decode, with batches of good records on both
// sides of it, fails the start-up with its index: the reading goroutine of
// the two-stage replay stops, and nothing hangs.
func TestReplayStopsAtABadRecord(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	store := memlog.NewStore(1 << 26)
	b, l := openMem(t, store)
	const n = 5 * replayBatch
	for i := range n {
		m := &Message{Destination: Destination{Queue, "q"}, Persistent: true, Priority: 4, Body: fmt.Appendf(nil, "m%d", i)}
		if err := b.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	last := l.LastIndex()
	bad, _, err := l.Append(context.Background(), []journal.Record{{Type: evEnqueue, Data: []byte{0xff, 0xff, 0xff}}})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= n; i++ { // more batches after it
		r, err := l.Read(last - n + i)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := l.Append(context.Background(), []journal.Record{{Type: r.Type, Data: r.Data}}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()

	l, err = store.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b, err = Open(Options{Journal: l, Logger: quiet, MaintainEvery: -1})
	if err == nil {
		b.Close()
		t.Fatal("a broker opened on a journal with an undecodable enqueue record")
	}
	t.Logf("open: %v", err)
	if want := fmt.Sprintf("journal record %d:", bad); !strings.Contains(err.Error(), want) {
		t.Fatalf("open: %v; want an error naming %q", err, want)
	}
}

// encodeV4 writes p as snapshot format 4 did: no priority, expiry or size
// per pending message.
func encodeV4(p *projection) []byte {
	e := encoder{}
	e.uint(4)
	e.uint(p.applied)
	e.uint(p.seq)
	names := slices.Sorted(maps.Keys(p.queues))
	e.uint(uint64(len(names)))
	for _, n := range names {
		q := p.queues[n]
		e.str(n)
		e.uint(q.bound)
		seqs := slices.Sorted(maps.Keys(q.pending))
		e.uint(uint64(len(seqs)))
		var prev uint64
		for _, s := range seqs {
			e.uint(s - prev)
			e.uint(q.pending[s].index)
			e.uint(uint64(q.redeliveries[s]))
			prev = s
		}
	}
	e.uint(0) // dedup ids
	e.uint(0) // durable subscriptions
	return e.b
}

// A snapshot in format 4 lacks what a restart pages messages by: the
// restart reads the enqueue records of the messages it names pending, and
// the broker holds the same messages, sizes and order as before.
func TestSnapshotFormat4(t *testing.T) {
	store := memlog.NewStore(1 << 26)
	b, l := openMem(t, store)
	for i := range 30 {
		m := &Message{Destination: Destination{Queue, "q"}, Persistent: true, Priority: uint8(i % 10), Body: fmt.Appendf(nil, "m%02d-%s", i, strings.Repeat("x", i*10))}
		if i%4 == 0 {
			m.Expires = time.Now().Add(time.Hour).UnixMilli()
		}
		if err := b.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Maintain(true); err != nil {
		t.Fatal(err)
	}
	before, _ := b.QueueStats("q")
	b.Close()
	snap := l.(journal.Snapshotter)
	idx, data, err := snap.LoadSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	p, err := decodeProjection(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.SaveSnapshot(idx, encodeV4(p)); err != nil {
		t.Fatal(err)
	}
	l.Close()

	b, l = openMem(t, store)
	defer l.Close()
	defer b.Close()
	if r := b.Recovery(); r.Snapshot != idx || r.Records < 30 || r.Messages != 30 {
		t.Fatalf("recovery %+v: want the snapshot at %d and the 30 enqueue records read", r, idx)
	}
	if st, _ := b.QueueStats("q"); st.Pending != 30 || st.JournalBytes != before.JournalBytes {
		t.Fatalf("after the restart %+v, before it %+v", st, before)
	}
	in := make(chan Delivery, 30)
	if _, err := b.Subscribe(Destination{Queue, "q"}, SubscribeOptions{}, deliverTo(in)); err != nil {
		t.Fatal(err)
	}
	for prio := 9; prio >= 0; prio-- {
		for i := prio; i < 30; i += 10 {
			d := <-in
			if want := fmt.Sprintf("m%02d-", i); !strings.HasPrefix(string(d.Msg.Body), want) || (d.Msg.Expires != 0) != (i%4 == 0) {
				t.Fatalf("got %.4q expires %d, want %s", d.Msg.Body, d.Msg.Expires, want)
			}
		}
	}
}

type deliverTo chan Delivery

func (c deliverTo) Deliver(d Delivery) { c <- d }

// A pending message whose enqueue record is before the journal's first (a
// journal whose head was removed by hand) fails the start-up, naming it.
func TestInstallMissingRecord(t *testing.T) {
	b, l := openMem(t, memlog.NewStore(1<<20))
	defer l.Close()
	defer b.Close()
	rb := &rebuild{p: newProjection()}
	rb.p.queue("q").pending[7] = pref{index: 3, meta: packMeta(100, 4)}
	err := b.install(rb, 10)
	var ce *journal.CorruptionError
	if !errors.As(err, &ce) || ce.Index != 3 || !strings.Contains(err.Error(), "message 7 of queue q") {
		t.Fatalf("install: %v; want a corruption error naming record 3 and message 7", err)
	}
}
