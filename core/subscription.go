// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cairnmq/cairn/core/selector"
	"github.com/cairnmq/cairn/journal"
)

// AckMode is how a subscription's deliveries are acknowledged.
type AckMode uint8

const (
	// AckAuto: a delivery is acknowledged once it is written to the client
	// (the gateway calls Ack after the write).
	AckAuto AckMode = iota
	// AckClient: an ACK acknowledges that message and every message
	// delivered before it on the subscription (cumulative).
	AckClient
	// AckClientIndividual: an ACK acknowledges one message.
	AckClientIndividual
)

// ParseAckMode reads a SUBSCRIBE ack header ("" is auto).
func ParseAckMode(s string) (AckMode, error) {
	switch s {
	case "", "auto":
		return AckAuto, nil
	case "client":
		return AckClient, nil
	case "client-individual":
		return AckClientIndividual, nil
	}
	return 0, fmt.Errorf("ack mode %q is not auto, client or client-individual", s)
}

// Delivery is one message handed to a subscription.
type Delivery struct {
	Msg         *Message
	Sub         *Subscription
	Redelivered bool
	// Redeliveries is how many times the message was given back (NACKed,
	// or its consumer went away) before this delivery; it survives restarts.
	Redeliveries uint32
}

// Consumer receives a subscription's deliveries. Deliver is called from the
// destination's goroutine and must not block; the number outstanding is
// bounded by the subscription's prefetch (for topics, plus the backlog).
type Consumer interface {
	Deliver(Delivery)
}

// A LaterConsumer can also take a delivery to send at the next Flush.
// When a producer's goroutine dispatches a message itself (SendConfirmed,
// on an idle queue), it delivers that way and calls Flush once the queue is
// released, so that the message goes out on that goroutine too, with no
// hand-off to another. Flush must not wait.
type LaterConsumer interface {
	Consumer
	DeliverLater(Delivery)
	Flush()
}

// SubscribeOptions configure a subscription.
type SubscribeOptions struct {
	Mode AckMode
	// Prefetch is the most unacknowledged deliveries at once (default 1000
	// for queues and 32767 for topics, ActiveMQ's STOMP defaults).
	Prefetch int
	// Priority is the consumer's priority on a queue (activemq.priority):
	// while a higher-priority consumer has prefetch room, lower ones get
	// nothing; equals share round robin.
	Priority int
	// Exclusive asks for all of a queue's messages (activemq.exclusive):
	// the first exclusive consumer gets everything while it is there, and
	// the next exclusive one takes over when it goes.
	Exclusive bool
	// Selector, if set, limits the subscription to the messages it
	// matches (a SUBSCRIBE's selector header).
	Selector *selector.Selector
	// Connection names the subscriber's connection (Message.Origin of what
	// it sends). With NoLocal, a topic leaves out messages whose Origin is
	// Connection (activemq.noLocal).
	NoLocal    bool
	Connection uint64
	// Owner is the subscribing user, for durable subscriptions: one made
	// by a user is that user's alone.
	Owner string
}

// Subscription is one consumer's interest in a destination.
type Subscription struct {
	b         *Broker
	dest      Destination
	mode      AckMode
	prefetch  int
	priority  int
	exclusive bool
	onClose   func() // set before the subscription is handed out
	selector  *selector.Selector
	noLocal   uint64 // with NoLocal: the subscriber's connection
	consumer  Consumer
	q         *queue
	t         *topic
	fan       *fanIn // a wildcard queue subscription: the queues' subscriptions (fanin.go)

	// Owned by the destination's goroutine.
	credit       int
	backlog      []*entry // topics: held beyond prefetch
	backlogBytes int64    // their Size()s
	heldBytes    int64    // topics: bytes delivered and not acknowledged, about (topic.hold)
	heldCount    int
	slow         bool          // topics: publishers no longer wait for it
	dropped      atomic.Uint64 // topics: messages lost from a full backlog (Dropped)

	// Deliveries not yet acknowledged. live answers "is it unacknowledged"
	// in O(1); order keeps delivery order for cumulative acks and may hold
	// entries already taken (skipped, and compacted away when they are
	// most of it), so that acknowledging in any order costs O(1) each.
	mu     sync.Mutex
	live   map[uint64]bool // seq -> persistent
	order  []uint64
	closed bool
}

type delivered struct {
	seq        uint64
	persistent bool
}

func seqsOf(ds []delivered) []uint64 {
	seqs := make([]uint64, len(ds))
	for i, d := range ds {
		seqs[i] = d.seq
	}
	return seqs
}

// Subscribe adds a subscription to dest. Deliveries start at once: when
// Subscribe returns, the subscription is registered, and gets every
// message sent to dest from then on (a topic keeps nothing for a
// subscriber that is not there yet). c may get its first deliveries
// before Subscribe returns.
//
// A queue name with wildcards (orders.>, orders.*.eu) subscribes c to
// every queue it matches, those there now and those made later, with one
// Subscription that acknowledges through whichever queue delivered.
func (b *Broker) Subscribe(dest Destination, opts SubscribeOptions, c Consumer) (*Subscription, error) {
	if b.isClosed() {
		return nil, ErrClosed
	}
	if dest.Kind == Queue && IsWildcard(dest.Name) {
		return b.subscribeQueues(dest, opts, c)
	}
	if opts.Prefetch <= 0 {
		opts.Prefetch = 1000
		if dest.Kind == Topic {
			opts.Prefetch = 32767
		}
	}
	s := &Subscription{b: b, dest: dest, mode: opts.Mode, prefetch: opts.Prefetch, priority: opts.Priority,
		exclusive: opts.Exclusive, selector: opts.Selector, consumer: c, credit: opts.Prefetch}
	if opts.NoLocal {
		s.noLocal = opts.Connection
	}
	switch dest.Kind {
	case Queue:
		s.q = b.queue(dest.Name)
		s.q.do(func() { s.q.addConsumer(s) })
	case Topic:
		s.t = b.topic(dest.Name)
		s.t.do(func() { s.t.addSubscriber(s) })
	default:
		return nil, fmt.Errorf("bad destination kind %d", dest.Kind)
	}
	return s, nil
}

// Destination is what the subscription consumes.
func (s *Subscription) Destination() Destination { return s.dest }

// Mode is the subscription's ack mode.
func (s *Subscription) Mode() AckMode { return s.mode }

// deliver records e as unacknowledged and hands it to the consumer. It runs
// on the destination's goroutine.
func (s *Subscription) deliver(e *entry) {
	s.mu.Lock()
	if s.live == nil {
		s.live = map[uint64]bool{}
	}
	s.live[e.msg.Seq] = e.msg.Persistent && s.q != nil
	s.order = append(s.order, e.msg.Seq)
	s.mu.Unlock()
	d := Delivery{Msg: e.msg, Sub: s, Redelivered: e.redelivered, Redeliveries: e.redeliveries}
	if s.q != nil && s.q.flushes != nil {
		if lc, ok := s.consumer.(LaterConsumer); ok {
			lc.DeliverLater(d)
			if !slices.Contains(*s.q.flushes, lc) {
				*s.q.flushes = append(*s.q.flushes, lc)
			}
			return
		}
	}
	s.consumer.Deliver(d)
}

// take removes the deliveries an ACK or NACK of seq covers: seq alone,
// or with cumulative everything delivered up to it.
func (s *Subscription) take(seq uint64, cumulative bool) ([]delivered, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.live[seq]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownAck, FormatID(seq))
	}
	if !cumulative {
		delete(s.live, seq)
		s.compactLocked()
		return []delivered{{seq: seq, persistent: p}}, nil
	}
	var taken []delivered
	i := 0
	for ; i < len(s.order); i++ {
		o := s.order[i]
		if p, ok := s.live[o]; ok {
			taken = append(taken, delivered{seq: o, persistent: p})
			delete(s.live, o)
		}
		if o == seq {
			i++
			break
		}
	}
	s.order = s.order[i:]
	s.compactLocked()
	return taken, nil
}

// persistentTaken is how many persistent messages take(seq, cumulative)
// would take now, taking none.
func (s *Subscription) persistentTaken(seq uint64, cumulative bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.live[seq]
	if !ok {
		return 0
	}
	if !cumulative {
		if p {
			return 1
		}
		return 0
	}
	n := 0
	for _, o := range s.order {
		if p, ok := s.live[o]; ok && p {
			n++
		}
		if o == seq {
			break
		}
	}
	return n
}

// Dropped is how many messages a topic subscription lost because its
// backlog (TopicBacklog messages, TopicBacklogBytes bytes) was full; 0 for
// a queue's. Safe to call from any goroutine.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// compactLocked drops taken entries from order once they are most of it.
func (s *Subscription) compactLocked() {
	if len(s.order) < 64 || len(s.order) < 2*len(s.live) {
		return
	}
	kept := make([]uint64, 0, len(s.live)+16)
	for _, o := range s.order {
		if _, ok := s.live[o]; ok {
			kept = append(kept, o)
		}
	}
	s.order = kept
}

// Ack acknowledges the delivery of seq (and, in client mode, every earlier
// one). For persistent messages the acknowledgement is journaled: when Ack
// returns nil it is durable, and the messages never come back.
func (s *Subscription) Ack(ctx context.Context, seq uint64) error {
	return s.ackMany(ctx, []uint64{seq}, ackDurable)
}

// AckMany acknowledges several deliveries, in order, with one journal
// append. If one of them is unknown, those before it are still
// acknowledged and the error is returned. Nobody waits for these to be
// durable (a listener's burst of ACKs without receipts): when the journal
// has no room at all for them (journal.ErrNoSpace), they are done in
// memory and journaled once it has (deferAcks); a crash before that
// redelivers the messages, marked redelivered.
func (s *Subscription) AckMany(ctx context.Context, seqs []uint64) error {
	return s.ackMany(ctx, seqs, ackUnreceipted)
}

// How an acknowledgement is journaled.
type ackKind int

const (
	ackDurable     ackKind = iota // its return says it is durable (a RECEIPT may follow)
	ackUnreceipted                // nobody waits: deferred when the journal has no room
	ackLazy                       // AutoAck: lazily, and deferred when the journal has no room
)

// AutoAck acknowledges deliveries that were written to an auto-ack
// subscriber. Nobody waits for these to be durable, so the journal writes
// them lazily (journal.LazyAppender) when it can: they ride on the next
// fsync instead of costing one. A crash before that redelivers them,
// marked redelivered.
func (s *Subscription) AutoAck(ctx context.Context, seqs []uint64) error {
	return s.ackMany(ctx, seqs, ackLazy)
}

func (s *Subscription) ackMany(ctx context.Context, seqs []uint64, kind ackKind) error {
	if s.fan != nil {
		return s.fan.ackMany(ctx, seqs, kind)
	}
	var taken []delivered
	var unknown error
	for _, seq := range seqs {
		t, err := s.take(seq, s.mode == AckClient)
		if err != nil {
			unknown = err
			break
		}
		taken = append(taken, t...)
	}
	if len(taken) == 0 {
		return unknown
	}
	if s.t != nil {
		seqs := seqsOf(taken)
		s.t.post(func() { s.t.credit(s, seqs) })
		return unknown
	}
	all := seqsOf(taken)
	// Phase one, on the queue's goroutine: the messages stop being in flight
	// for this subscription, so that a close racing with this ack cannot
	// hand them to someone else once the ack is durable.
	var held, persistent []uint64
	s.q.do(func() { held, persistent = s.q.ackBegin(s, all) })
	var err error
	if len(persistent) > 0 {
		recs := []journal.Record{{Type: evAck, Data: encodeAck(s.dest, persistent)}}
		if la, ok := s.b.log.(journal.LazyAppender); ok && kind == ackLazy {
			err = la.AppendLazy(ctx, recs)
		} else {
			_, _, err = s.b.log.Append(ctx, recs)
		}
		if err != nil && kind != ackDurable && errors.Is(err, journal.ErrNoSpace) {
			s.b.deferAcks(recs)
			err = nil
		}
	}
	s.q.runOrPost(func() { s.q.ackEnd(s, held, err) })
	if err != nil {
		return journalError(err)
	}
	return unknown
}

// AutoAckWaits reports whether AutoAck may wait on the journal: it does
// when the journal cannot take records lazily (journal.LazyAppender), and
// then a listener should not call it on a path that others wait for.
func (b *Broker) AutoAckWaits() bool {
	_, lazy := b.log.(journal.LazyAppender)
	return !lazy
}

// Nack gives the delivery of seq (in client mode, and every earlier one)
// back to the destination, to be delivered again, marked redelivered, as
// its redelivery policy says.
func (s *Subscription) Nack(seq uint64) error { return s.nack(seq, false) }

// NackWait is Nack that returns once the give-back is done and durable: its
// redelivery count (or its move to the dead-letter queue) is in the
// journal, so a RECEIPT for the NACK means it survives a crash.
func (s *Subscription) NackWait(seq uint64) error { return s.nack(seq, true) }

func (s *Subscription) nack(seq uint64, wait bool) error {
	if s.fan != nil {
		return s.fan.nack(seq, wait)
	}
	taken, err := s.take(seq, s.mode == AckClient)
	if err != nil {
		return err
	}
	if s.t != nil {
		seqs := seqsOf(taken)
		s.t.post(func() { s.t.credit(s, seqs) })
		return nil
	}
	seqs := seqsOf(taken)
	if !wait {
		s.q.post(func() { s.q.requeue(s, seqs) })
		return nil
	}
	s.q.do(func() { s.q.requeue(s, seqs) })
	if sy, ok := s.b.log.(journal.Syncer); ok {
		return sy.Sync()
	}
	return nil
}

// Close ends the subscription. Its unacknowledged deliveries go back to the
// queue, to be delivered again marked redelivered.
func (s *Subscription) Close() {
	if s.fan != nil {
		s.fan.close()
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if s.q != nil {
		s.live, s.order = nil, nil
		s.mu.Unlock()
		s.q.do(func() { s.q.removeConsumer(s) })
	} else {
		s.mu.Unlock()
		s.t.do(func() {
			// On the topic's goroutine, so that no delivery lands in
			// between: what is in flight stops being held.
			s.mu.Lock()
			unacked := make([]uint64, 0, len(s.live))
			for seq := range s.live {
				unacked = append(unacked, seq)
			}
			s.live, s.order = nil, nil
			s.mu.Unlock()
			s.t.removeSubscriber(s, unacked)
		})
	}
	if s.onClose != nil {
		s.onClose()
	}
}

// Unacked is how many deliveries wait for an acknowledgement.
func (s *Subscription) Unacked() int {
	if s.fan != nil {
		return s.fan.unacked()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// Has reports whether seq is delivered to s and not acknowledged.
func (s *Subscription) Has(seq uint64) bool {
	if s.fan != nil {
		return s.fan.owner(seq) != nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.live[seq]
	return ok
}
