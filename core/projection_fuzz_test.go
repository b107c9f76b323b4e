// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/cairnmq/cairn/core/selector"
	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/memlog"
)

// FuzzDecodeProjection: a snapshot passes its journal's checksum before
// the broker decodes it, but whatever the bytes, decoding returns an error
// or a projection and never panics; what decodes re-encodes to a snapshot
// that decodes to the same encoding.
func FuzzDecodeProjection(f *testing.F) {
	p := newProjection()
	p.applied, p.seq = 1000, 77
	q := p.queue("orders")
	q.bound = 60
	for s := uint64(50); s < 70; s++ {
		q.pending[s] = pref{index: 900 + s, meta: packMeta(int(s)*10, uint8(s%10)), expires: secs(s % 3 * 1_900_000_000)}
	}
	q.redeliveries = map[uint64]uint32{52: 3}
	p.queue("empty")
	p.dedup.add("producer-1:5")
	p.durable[durableKey{"client-a", "sub-1"}] = durableSpec{topic: "prices", selector: "region = 'EU'"}
	v5 := p.encode()
	f.Add(v5)
	f.Add(encodeV4(p))
	f.Add(newProjection().encode())
	f.Add(v5[:len(v5)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodeProjection(data)
		if err != nil {
			return
		}
		once := p.encode()
		p2, err := decodeProjection(once)
		if err != nil {
			t.Fatalf("a decoded snapshot re-encodes to one that does not decode: %v", err)
		}
		if twice := p2.encode(); !bytes.Equal(once, twice) {
			t.Fatalf("re-encoding is not stable:\n%x\n%x", once, twice)
		}
	})
}

// FuzzApplyRecord: a journal record that passes its checksum but holds
// anything at all gives replay an error or a change of state, never a
// panic; nor does reading it back as a message. Seeded with the records of
// a real session: sends with headers, priority and expiry, acks, a NACK's
// redelivery count, a transaction, a durable subscription, a purge.
func FuzzApplyRecord(f *testing.F) {
	l, err := memlog.NewStore(1 << 24).Open()
	if err != nil {
		f.Fatal(err)
	}
	b, err := Open(Options{Journal: l, Logger: slog.New(slog.DiscardHandler), MaintainEvery: -1})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	q := Destination{Queue, "orders"}
	for i := range 5 {
		m := &Message{Destination: q, Persistent: true, Priority: uint8(i), Expires: time.Now().Add(time.Hour).UnixMilli(),
			Header: []string{"correlation-id", fmt.Sprint(i), "region", "EU"}, Body: fmt.Appendf(nil, "m%d", i)}
		if err := b.Send(ctx, m); err != nil {
			f.Fatal(err)
		}
	}
	in := make(deliverTo, 10)
	s, err := b.Subscribe(q, SubscribeOptions{Mode: AckClientIndividual, Prefetch: 10}, in)
	if err != nil {
		f.Fatal(err)
	}
	d1, d2 := <-in, <-in
	if err := s.Ack(ctx, d1.Msg.Seq); err != nil {
		f.Fatal(err)
	}
	if err := s.Nack(d2.Msg.Seq); err != nil {
		f.Fatal(err)
	}
	d3 := <-in
	if err := b.Commit(ctx, []*Message{{Destination: q, Persistent: true, Priority: 4, Body: []byte("tx")}}, []TxAck{{s, d3.Msg.Seq}}); err != nil {
		f.Fatal(err)
	}
	s.Close()
	sel, err := selector.Parse("region = 'EU'")
	if err != nil {
		f.Fatal(err)
	}
	ds, err := b.SubscribeDurable(ctx, "client-a", "sub-1", Destination{Topic, "prices"}, SubscribeOptions{Selector: sel}, make(deliverTo, 10))
	if err != nil {
		f.Fatal(err)
	}
	ds.Close()
	if _, err := b.Purge(ctx, "orders"); err != nil {
		f.Fatal(err)
	}
	b.Close()
	for i := l.FirstIndex(); i <= l.LastIndex(); i++ {
		r, err := l.Read(i)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(r.Type), r.Data)
	}
	l.Close()
	f.Fuzz(func(t *testing.T, typ uint8, data []byte) {
		p := newProjection()
		p.apply(journal.Record{Index: 7, Type: journal.RecordType(typ), Data: data})
		if typ == uint8(evEnqueue) {
			decodeEnqueue(data)
		}
	})
}
