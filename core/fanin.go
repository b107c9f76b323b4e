// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"context"
	"fmt"
	"sync"
)

// A wildcard queue subscription (Subscribe of /queue/orders.>) is one
// subscription per matching queue, those there now and those made later,
// behind one Subscription: its acknowledgements go to the member that
// delivered the message, and Close ends them all. Each member has the
// subscription's prefetch; each delivery's Sub is its member, and its
// message names its own queue.
type fanIn struct {
	b    *Broker
	opts SubscribeOptions
	c    Consumer

	mu        sync.Mutex
	members   []*Subscription
	closed    bool
	stopWatch func()
}

// subscribeQueues subscribes c to every queue matching pattern, now and as
// they appear. Queues whose names start with $ (the broker's own) are left
// out.
func (b *Broker) subscribeQueues(pattern Destination, opts SubscribeOptions, c Consumer) (*Subscription, error) {
	f := &fanIn{b: b, opts: opts, c: c}
	s := &Subscription{b: b, dest: pattern, mode: opts.Mode, fan: f}
	add := func(name string) {
		if private(name) || !MatchDestination(pattern.Name, name) {
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.closed {
			return
		}
		for _, m := range f.members {
			if m.dest.Name == name {
				return // already subscribed to that queue
			}
		}
		m, err := b.Subscribe(Destination{Kind: Queue, Name: name}, opts, c)
		if err != nil {
			return // the broker is closing
		}
		f.members = append(f.members, m)
	}
	stop := b.WatchQueues(add)
	f.mu.Lock()
	f.stopWatch = stop
	f.mu.Unlock()
	for _, st := range b.Queues() {
		add(st.Destination.Name)
	}
	return s, nil
}

// owner is the member that delivered seq and has not had it acknowledged,
// or nil.
func (f *fanIn) owner(seq uint64) *Subscription {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.members {
		if m.Has(seq) {
			return m
		}
	}
	return nil
}

// ackMany acknowledges seqs, in order, each with the member that delivered
// it: a run of seqs of one member is one acknowledgement of it.
func (f *fanIn) ackMany(ctx context.Context, seqs []uint64, kind ackKind) error {
	for len(seqs) > 0 {
		m := f.owner(seqs[0])
		if m == nil {
			return fmt.Errorf("%w: %s", ErrUnknownAck, FormatID(seqs[0]))
		}
		n := 1
		for n < len(seqs) && m.Has(seqs[n]) {
			n++
		}
		if err := m.ackMany(ctx, seqs[:n], kind); err != nil {
			return err
		}
		seqs = seqs[n:]
	}
	return nil
}

func (f *fanIn) nack(seq uint64, wait bool) error {
	m := f.owner(seq)
	if m == nil {
		return fmt.Errorf("%w: %s", ErrUnknownAck, FormatID(seq))
	}
	return m.nack(seq, wait)
}

func (f *fanIn) unacked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.members {
		n += m.Unacked()
	}
	return n
}

// close ends every member; their unacknowledged deliveries go back to
// their queues.
func (f *fanIn) close() {
	f.mu.Lock()
	f.closed = true
	members, stop := f.members, f.stopWatch
	f.members = nil
	f.mu.Unlock()
	if stop != nil {
		stop()
	}
	for _, m := range members {
		m.Close()
	}
}
