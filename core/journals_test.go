// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/internal/natstest"
	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/jetstream"
	"github.com/cairnmq/cairn/journal/memlog"
	"github.com/cairnmq/cairn/journal/wal"
)

// journalKind opens one kind of journal, again and again on the same
// storage, as a broker restarting on it would.
type journalKind struct {
	name string
	new  func(t *testing.T) func() (journal.Log, error)
}

// journalKinds are the journals the broker must behave the same on: the
// embedded one, JetStream on an in-process nats-server (whose atomic
// batches take 1,000 records), and the in-memory log limited as JetStream
// is, so that a seam mismatch shows in a broker test and not at a user's.
func journalKinds() []journalKind {
	return []journalKind{
		{"wal", func(t *testing.T) func() (journal.Log, error) {
			dir := t.TempDir()
			return func() (journal.Log, error) { return wal.Open(dir, wal.Options{Logger: quiet}) }
		}},
		{"jetstream", func(t *testing.T) func() (journal.Log, error) {
			nc := natstest.Connect(t, natstest.StartServer(t))
			return func() (journal.Log, error) {
				return jetstream.Open(context.Background(), nc, jetstream.Options{Stream: "BROKER", SegmentRecords: 512, Logger: quiet})
			}
		}},
		{"memlog-limited", func(t *testing.T) func() (journal.Log, error) {
			s := memlog.NewStore(64 << 10)
			s.LimitBatches(journal.BatchLimit{Records: 1000})
			return func() (journal.Log, error) { return s.Open() }
		}},
	}
}

// onEachJournal runs fn on every journal kind, with a function that starts
// a broker on it (again after the previous one stopped).
func onEachJournal(t *testing.T, opts core.Options, fn func(t *testing.T, start func() (*core.Broker, func()))) {
	for _, k := range journalKinds() {
		t.Run(k.name, func(t *testing.T) {
			open := k.new(t)
			start := func() (*core.Broker, func()) {
				t.Helper()
				l, err := open()
				if err != nil {
					t.Fatal(err)
				}
				o := opts
				o.Journal, o.Logger = l, quiet
				if o.MaintainEvery == 0 {
					o.MaintainEvery = -1
				}
				b, err := core.Open(o)
				if err != nil {
					l.Close()
					t.Fatal(err)
				}
				stopped := false
				stop := func() {
					if !stopped {
						stopped = true
						b.Close()
						l.Close()
					}
				}
				t.Cleanup(stop)
				return b, stop
			}
			fn(t, start)
		})
	}
}

// Durability across a restart on every journal: a burst larger than one
// JetStream batch, delivered-and-unacked messages back marked redelivered,
// acked ones gone, the rest in order.
func TestOnEachJournalRestart(t *testing.T) {
	onEachJournal(t, core.Options{}, func(t *testing.T, start func() (*core.Broker, func())) {
		b, stop := start()
		const n = 2500
		var msgs []*core.Message
		for i := range n {
			msgs = append(msgs, &core.Message{Destination: core.Destination{Kind: core.Queue, Name: "r"}, Persistent: true,
				Priority: 4, Body: fmt.Appendf(nil, "m%04d", i)})
		}
		if err := b.SendMany(context.Background(), msgs); err != nil {
			t.Fatal(err)
		}
		s, in := subscribe(t, b, "/queue/r", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 20})
		for i := range 20 {
			d := in.next(t)
			if i < 10 {
				if err := s.Ack(context.Background(), d.Msg.Seq); err != nil {
					t.Fatal(err)
				}
			}
		}
		stop()
		b, _ = start()
		if st, _ := b.QueueStats("r"); st.Pending != n-10 {
			t.Fatalf("after the restart: %+v, want %d", st, n-10)
		}
		s, in = subscribe(t, b, "/queue/r", core.SubscribeOptions{Mode: core.AckClientIndividual})
		for i := 10; i < n; i++ {
			d := in.next(t)
			if err := s.Ack(context.Background(), d.Msg.Seq); err != nil {
				t.Fatal(err)
			}
			// Those delivered before the restart come marked (and some
			// more may: what the journaled dispatch bound covers).
			if want := fmt.Sprintf("m%04d", i); string(d.Msg.Body) != want || i < 20 && !d.Redelivered {
				t.Fatalf("delivery %d: %q redelivered %t, want %q", i, d.Msg.Body, d.Redelivered, want)
			}
		}
	})
}

// A transaction's sends and acks, and a NACKed message's way to the
// dead-letter queue, survive a restart on every journal.
func TestOnEachJournalTransactionsAndDeadLetters(t *testing.T) {
	opts := core.Options{Redelivery: []core.RedeliveryRule{{Pattern: "poison", Policy: core.RedeliveryPolicy{MaxRedeliveries: 1, DeadLetterQueue: "DLQ.poison"}}}}
	onEachJournal(t, opts, func(t *testing.T, start func() (*core.Broker, func())) {
		b, stop := start()
		send(t, b, "/queue/in", "work", true)
		s, in := subscribe(t, b, "/queue/in", core.SubscribeOptions{Mode: core.AckClientIndividual})
		d := in.next(t)
		out := &core.Message{Destination: core.Destination{Kind: core.Queue, Name: "out"}, Persistent: true, Priority: 4, Body: []byte("result")}
		if err := b.Commit(context.Background(), []*core.Message{out}, []core.TxAck{{Sub: s, Seq: d.Msg.Seq}}); err != nil {
			t.Fatal(err)
		}
		send(t, b, "/queue/poison", "bad", true)
		ps, pin := subscribe(t, b, "/queue/poison", core.SubscribeOptions{Mode: core.AckClientIndividual})
		for range 2 { // delivered, NACKed, redelivered once, NACKed: over the limit
			pd := pin.next(t)
			if err := ps.NackWait(pd.Msg.Seq); err != nil {
				t.Fatal(err)
			}
		}
		stop()
		b, _ = start()
		if st, _ := b.QueueStats("in"); st.Pending != 0 {
			t.Fatalf("the acked input is back: %+v", st)
		}
		if st, _ := b.QueueStats("poison"); st.Pending != 0 {
			t.Fatalf("the poison message is still in its queue: %+v", st)
		}
		_, oin := subscribe(t, b, "/queue/out", core.SubscribeOptions{})
		if d := oin.next(t); string(d.Msg.Body) != "result" {
			t.Fatalf("the transaction's send: %q", d.Msg.Body)
		}
		_, din := subscribe(t, b, "/queue/DLQ.poison", core.SubscribeOptions{})
		if d := din.next(t); string(d.Msg.Body) != "bad" {
			t.Fatalf("the dead letter: %q", d.Msg.Body)
		}
	})
}

// A durable topic subscription keeps what its topic gets while it is away,
// across a restart, on every journal; and messages paged past the memory
// limit read back in order after one.
func TestOnEachJournalDurablesAndPaging(t *testing.T) {
	onEachJournal(t, core.Options{MemoryLimit: 64 << 10}, func(t *testing.T, start func() (*core.Broker, func())) {
		b, stop := start()
		topic := core.Destination{Kind: core.Topic, Name: "news"}
		ds, err := b.SubscribeDurable(context.Background(), "c1", "d1", topic, core.SubscribeOptions{Mode: core.AckAuto}, make(inbox, 10))
		if err != nil {
			t.Fatal(err)
		}
		ds.Close() // offline: what the topic gets is kept
		for i := range 5 {
			m := &core.Message{Destination: topic, Persistent: true, Priority: 4, Body: fmt.Appendf(nil, "n%d", i)}
			if err := b.Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
		body := make([]byte, 1024)
		for i := range 300 { // 300 KiB past a 64 KiB memory limit: paged
			copy(body, fmt.Sprintf("p%03d", i))
			m := &core.Message{Destination: core.Destination{Kind: core.Queue, Name: "paged"}, Persistent: true, Priority: 4, Body: append([]byte(nil), body...)}
			if err := b.Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
		stop()
		b, _ = start()
		in := make(inbox, 100)
		if _, err := b.SubscribeDurable(context.Background(), "c1", "d1", topic, core.SubscribeOptions{Mode: core.AckAuto}, in); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if d := in.next(t); string(d.Msg.Body) != fmt.Sprint("n", i) {
				t.Fatalf("kept message %d: %q", i, d.Msg.Body)
			}
		}
		_, pin := subscribe(t, b, "/queue/paged", core.SubscribeOptions{Mode: core.AckAuto})
		for i := range 300 {
			if d := pin.next(t); string(d.Msg.Body[:4]) != fmt.Sprintf("p%03d", i) {
				t.Fatalf("paged message %d read back as %q", i, d.Msg.Body[:4])
			}
		}
	})
}
