// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package bridge

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/gateways/stomp"
)

// topicBacklog is how many messages a topic subscriber may have waiting
// beyond its prefetch before it loses its oldest, as core's topics do.
const topicBacklog = 10000

// topicKey names one upstream topic subscription: every local subscriber
// of the same topic (or wildcard) and selector shares it.
type topicKey struct{ dest, selector string }

// topicGroup is one upstream subscription of a topic, fanned out to its
// local subscribers. Upstream acknowledges it automatically: a topic
// message is for whoever is subscribed when it is published, and is not
// kept for anyone (durable subscriptions are relayed one for one).
type topicGroup struct {
	g   *Gateway
	l   *link
	id  string
	key topicKey

	mu      sync.Mutex
	members []*topicSub
}

func (t *topicGroup) subscribeFrame() *frame.Frame {
	f := frame.New(frame.SUBSCRIBE, frame.Id, t.id, frame.Destination, t.key.dest, frame.Ack, "auto",
		"activemq.prefetchSize", "32767")
	if t.key.selector != "" {
		f.Header.Add("selector", t.key.selector)
	}
	return f
}

func (t *topicGroup) lost() {}

func (t *topicGroup) message(f *frame.Frame) {
	m, _, redelivered := t.g.messageOf(f)
	t.mu.Lock()
	members := t.members
	t.mu.Unlock()
	for _, s := range members {
		if s.noLocal == 0 || s.noLocal != m.Origin {
			s.offer(m, redelivered)
		}
	}
}

// subscribeTopic adds a local subscriber to its topic's group, starting
// the group's upstream subscription if it is the first.
func (g *Gateway) subscribeTopic(dest core.Destination, opts core.SubscribeOptions, c core.Consumer) (stomp.Subscription, error) {
	key := topicKey{dest: destinationString(dest)}
	if opts.Selector != nil {
		key.selector = opts.Selector.String()
	}
	prefetch := opts.Prefetch
	if prefetch <= 0 {
		prefetch = 32767
	}
	s := &topicSub{c: c, mode: opts.Mode, credit: prefetch, live: map[uint64]bool{}}
	if opts.NoLocal {
		s.noLocal = opts.Connection
	}
	g.topicMu.Lock()
	t := g.topics[key]
	if t == nil {
		l := g.links[g.topicN%len(g.links)]
		g.topicN++
		t = &topicGroup{g: g, l: l, id: l.id("t"), key: key}
		t.members = []*topicSub{s}
		s.t = t
		g.topics[key] = t
		g.topicMu.Unlock()
		if err := l.waitUp(g.opts.Wait); err != nil {
			g.dropTopic(t, s)
			return nil, err
		}
		if err := g.await(context.Background(), l.subscribe(t.id, t)); err != nil {
			g.dropTopic(t, s)
			return nil, err
		}
		return s, nil
	}
	t.mu.Lock()
	t.members = append(append([]*topicSub(nil), t.members...), s) // copy on write: message reads without the lock
	t.mu.Unlock()
	s.t = t
	g.topicMu.Unlock()
	return s, nil
}

// dropTopic removes s from t, and ends t's upstream subscription once it
// has no subscriber.
func (g *Gateway) dropTopic(t *topicGroup, s *topicSub) {
	g.topicMu.Lock()
	defer g.topicMu.Unlock()
	t.mu.Lock()
	kept := make([]*topicSub, 0, len(t.members))
	for _, m := range t.members {
		if m != s {
			kept = append(kept, m)
		}
	}
	t.members = kept
	t.mu.Unlock()
	if len(kept) == 0 && g.topics[t.key] == t {
		delete(g.topics, t.key)
		t.l.removeSub(t.id, frame.New(frame.UNSUBSCRIBE, frame.Id, t.id))
	}
}

// topicSub is one local subscriber of a topic: its prefetch is counted
// here, and what arrives while it has no credit waits in a bounded
// backlog.
type topicSub struct {
	t       *topicGroup
	c       core.Consumer
	mode    core.AckMode
	noLocal uint64 // with activemq.noLocal: the subscriber's connection, whose own messages it is not given

	mu      sync.Mutex
	credit  int
	live    map[uint64]bool // delivered, not acknowledged
	order   []uint64        // delivery order, for cumulative acks
	backlog []backlogged
	closed  bool
	dropped atomic.Uint64
}

type backlogged struct {
	m           *core.Message
	redelivered bool
}

func (s *topicSub) offer(m *core.Message, redelivered bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.credit > 0 && len(s.backlog) == 0 {
		s.deliverLocked(m, redelivered)
		return
	}
	if len(s.backlog) >= topicBacklog {
		s.backlog = s.backlog[1:]
		s.dropped.Add(1)
	}
	s.backlog = append(s.backlog, backlogged{m, redelivered})
}

func (s *topicSub) deliverLocked(m *core.Message, redelivered bool) {
	s.credit--
	s.live[m.Seq] = true
	s.order = append(s.order, m.Seq)
	s.c.Deliver(core.Delivery{Msg: m, Redelivered: redelivered})
}

// ack returns the credit of what an ack of seq acknowledges and delivers
// from the backlog.
func (s *topicSub) ack(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.live[seq] {
		return core.ErrUnknownAck
	}
	n := 0
	if s.mode == core.AckClient {
		i := 0
		for ; i < len(s.order); i++ {
			o := s.order[i]
			if s.live[o] {
				delete(s.live, o)
				n++
			}
			if o == seq {
				i++
				break
			}
		}
		s.order = s.order[i:]
	} else {
		delete(s.live, seq)
		n = 1
		if len(s.live) == 0 {
			s.order = s.order[:0]
		}
	}
	s.credit += n
	for s.credit > 0 && len(s.backlog) > 0 {
		b := s.backlog[0]
		s.backlog[0] = backlogged{}
		s.backlog = s.backlog[1:]
		s.deliverLocked(b.m, b.redelivered)
	}
	return nil
}

// Ack implements stomp.Subscription: a topic delivery is acknowledged here;
// upstream already considers it delivered.
func (s *topicSub) Ack(ctx context.Context, seq uint64) error { return s.ack(seq) }

// AckMany implements stomp.Subscription.
func (s *topicSub) AckMany(ctx context.Context, seqs []uint64) error {
	var err error
	for _, seq := range seqs {
		if e := s.ack(seq); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// AutoAck implements stomp.Subscription.
func (s *topicSub) AutoAck(ctx context.Context, seqs []uint64) error { return s.AckMany(ctx, seqs) }

// Nack implements stomp.Subscription: as for core's topics, a NACK only
// returns the credit.
func (s *topicSub) Nack(seq uint64) error { return s.ack(seq) }

// NackWait implements stomp.Subscription.
func (s *topicSub) NackWait(seq uint64) error { return s.ack(seq) }

// Has implements stomp.Subscription.
func (s *topicSub) Has(seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live[seq]
}

// Close implements stomp.Subscription.
func (s *topicSub) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.backlog = nil
	s.mu.Unlock()
	s.t.g.dropTopic(s.t, s)
}
