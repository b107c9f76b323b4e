// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// topic is a publish/subscribe destination: each message goes to every
// subscriber there is when it is published. Its state is owned by its loop,
// except the flow-control gate.
type topic struct {
	loop
	b    *Broker
	name string
	subs []*Subscription

	// Flow control: while some subscriber's backlog is half full,
	// publishers wait for it to drain, so a subscriber that is only briefly
	// slow loses nothing. A publisher that has waited TopicPublishWait marks
	// the subscribers still behind as slow: they no longer hold the gate
	// (they lose their oldest messages instead) until they catch up. A stuck
	// subscriber costs the topic one wait, not one per message.
	gateMu sync.Mutex
	gate   chan struct{} // non-nil while full; closed when it drains
	queued atomic.Int64  // publishes posted to the loop and not yet offered
}

func newTopic(b *Broker, name string) *topic {
	return &topic{loop: newLoop(), b: b, name: name}
}

func (t *topic) publish(m *Message) {
	// The gate only sees what the loop has offered: keep the publishes
	// queued ahead of it to a quarter of the backlog, so that the gate
	// (closed at half) closes before a backlog can overflow.
	if t.queued.Add(1) > int64(max(1, t.b.opts.TopicBacklog/4)) {
		t.do(func() {})
	}
	t.gateMu.Lock()
	gate := t.gate
	t.gateMu.Unlock()
	if gate != nil {
		timer := time.NewTimer(t.b.opts.TopicPublishWait)
		select {
		case <-gate:
		case <-timer.C:
			t.post(t.markSlow)
		}
		timer.Stop()
	}
	t.post(func() {
		t.queued.Add(-1)
		e := &entry{msg: m}
		for _, s := range t.subs {
			if s.matches(m) && (s.noLocal == 0 || s.noLocal != m.Origin) {
				t.offer(s, e)
			}
		}
	})
}

// offer delivers e to s if it has credit, or holds it in s's backlog,
// dropping the oldest held message when the backlog is full: a subscriber
// that does not read loses messages rather than slow the topic.
func (t *topic) offer(s *Subscription, e *entry) {
	size := int64(e.msg.Size())
	if s.credit > 0 && (s.heldCount == 0 || s.heldBytes+size <= t.b.opts.TopicBacklogBytes) {
		s.credit--
		t.hold(s, size)
		s.deliver(e)
		return
	}
	// Close the gate at half the backlog: publishes already queued on the
	// loop (up to maxQueued) still land, and should not overflow it.
	if !s.slow && len(s.backlog) >= t.b.opts.TopicBacklog/2 {
		t.setFull(true)
	}
	for len(s.backlog) > 0 && (len(s.backlog) >= t.b.opts.TopicBacklog || s.backlogBytes+size > t.b.opts.TopicBacklogBytes) {
		s.backlogBytes -= int64(s.backlog[0].msg.Size())
		s.backlog[0] = nil
		s.backlog = s.backlog[1:]
		n := s.dropped.Add(1)
		if n&(n-1) == 0 { // log at 1, 2, 4, 8, ... drops
			t.b.opts.Logger.Warn("slow topic subscriber: dropping its oldest messages", "topic", t.name, "dropped", n)
		}
	}
	s.backlog = append(s.backlog, e)
	s.backlogBytes += size
}

// credit returns n acknowledged deliveries' worth of credit to s and sends
// it what its backlog holds.
func (t *topic) credit(s *Subscription, n int) {
	s.credit += n
	t.release(s, n)
	for s.credit > 0 && len(s.backlog) > 0 {
		e := s.backlog[0]
		size := int64(e.msg.Size())
		if s.heldCount > 0 && s.heldBytes+size > t.b.opts.TopicBacklogBytes {
			break
		}
		s.backlog[0] = nil
		s.backlog = s.backlog[1:]
		s.backlogBytes -= size
		s.credit--
		t.hold(s, size)
		s.deliver(e)
	}
	if s.slow && len(s.backlog) <= t.b.opts.TopicBacklog/4 {
		s.slow = false // caught up: it holds the gate again
	}
	t.checkFull()
}

// hold counts a delivery of size bytes in flight to s: a topic subscriber
// holds at most TopicBacklogBytes in flight (and as much again in its
// backlog), whatever its prefetch, so that a prefetch of 100,000 large
// messages to a subscriber that stopped reading cannot take gigabytes.
func (t *topic) hold(s *Subscription, size int64) {
	s.heldBytes += size
	s.heldCount++
}

// release takes n acknowledged deliveries out of flight. Acks name
// messages, not sizes: each counts as the average held.
func (t *topic) release(s *Subscription, n int) {
	if n >= s.heldCount {
		s.heldBytes, s.heldCount = 0, 0
		return
	}
	s.heldBytes -= s.heldBytes / int64(s.heldCount) * int64(n)
	s.heldCount -= n
}

// markSlow runs when a publisher has waited its full TopicPublishWait: the
// subscribers still behind stop holding the gate.
func (t *topic) markSlow() {
	for _, s := range t.subs {
		if len(s.backlog) > t.b.opts.TopicBacklog/4 && !s.slow {
			s.slow = true
			t.b.opts.Logger.Warn("slow topic subscriber: publishers no longer wait for it; it loses its oldest messages when its backlog is full",
				"topic", t.name, "backlog", len(s.backlog))
		}
	}
	t.checkFull()
}

// checkFull opens the gate once every subscriber that holds it is down to a
// quarter of its backlog.
func (t *topic) checkFull() {
	for _, s := range t.subs {
		if !s.slow && len(s.backlog) > t.b.opts.TopicBacklog/4 {
			return
		}
	}
	t.setFull(false)
}

// setFull closes the publishers' gate (full) or opens it.
func (t *topic) setFull(full bool) {
	t.gateMu.Lock()
	defer t.gateMu.Unlock()
	switch {
	case full && t.gate == nil:
		t.gate = make(chan struct{})
	case !full && t.gate != nil:
		close(t.gate)
		t.gate = nil
	}
}

func (t *topic) addSubscriber(s *Subscription) { t.subs = append(t.subs, s) }

func (t *topic) removeSubscriber(s *Subscription) {
	t.subs = slices.DeleteFunc(t.subs, func(c *Subscription) bool { return c == s })
	s.backlog, s.backlogBytes = nil, 0
	t.checkFull()
}

// TopicStats describes one topic.
type TopicStats struct {
	Name        string
	Subscribers int // subscriptions now (durable ones while their subscriber is connected)
}

// Topics lists the topics the broker has, with their subscribers, sorted
// by name.
func (b *Broker) Topics() []TopicStats {
	b.mu.Lock()
	ts := make([]*topic, 0, len(b.topics))
	for _, t := range b.topics {
		ts = append(ts, t)
	}
	b.mu.Unlock()
	out := make([]TopicStats, 0, len(ts))
	for _, t := range ts {
		var n int
		t.do(func() { n = len(t.subs) })
		out = append(out, TopicStats{Name: t.name, Subscribers: n})
	}
	slices.SortFunc(out, func(a, b TopicStats) int { return strings.Compare(a.Name, b.Name) })
	return out
}
