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
	held map[uint64]heldMsg // the messages subscribers hold, by sequence (addHeld)
	gone uint64             // messages lost by subscribers since removed (TopicStats.Dropped)
	// Since the broker started, on the loop: messages published, and
	// deliveries acknowledged (TopicStats).
	published, acked uint64

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
		refs := 0
		t.published++
		for _, s := range t.subs {
			if s.matches(m) && (s.noLocal == 0 || s.noLocal != m.Origin) && t.offer(s, e) {
				refs++
			}
		}
		if refs > 0 {
			t.addHeld(m, refs)
		}
	})
}

// Memory. A topic message is in memory while a subscriber holds it: in
// flight (delivered, not acknowledged; the connection may not have written
// it yet) or in a backlog. held counts, per message held, how many
// subscribers hold it, so that the broker's topicUsed counts each message
// once however many hold it. Acknowledgements name the messages they take
// (credit), so the counts are exact.
type heldMsg struct {
	size int32
	refs int32
}

// addHeld counts m as held by refs more subscribers.
func (t *topic) addHeld(m *Message, refs int) {
	if t.held == nil {
		t.held = map[uint64]heldMsg{}
	}
	h, ok := t.held[m.Seq]
	if !ok {
		h.size = int32(m.Size())
		t.b.topicMemory(int64(h.size))
	}
	h.refs += int32(refs)
	t.held[m.Seq] = h
}

// unhold takes one subscriber's hold of seq away, and returns its size.
func (t *topic) unhold(seq uint64) int64 {
	h, ok := t.held[seq]
	if !ok {
		return 0
	}
	if h.refs--; h.refs > 0 {
		t.held[seq] = h
	} else {
		delete(t.held, seq)
		t.b.topicMemory(-int64(h.size))
	}
	return int64(h.size)
}

// topicMemory counts delta bytes more (or fewer) held by topics, in the
// broker's memory too.
func (b *Broker) topicMemory(delta int64) {
	b.topicUsed.Add(delta)
	b.memoryFreed(delta)
}

// holding is what s holds, in flight and in its backlog, in bytes.
func (s *Subscription) holding() int64 { return s.heldBytes + s.backlogBytes }

// holds tells the broker whether s now holds anything, given what it held
// before (for the fair part each subscriber may keep; share).
func (t *topic) holds(s *Subscription, before int64) {
	switch after := s.holding(); {
	case before == 0 && after > 0:
		t.b.topicHolders.Add(1)
	case before > 0 && after == 0:
		t.b.topicHolders.Add(-1)
	}
}

// tight reports whether holding size more bytes would take the topics past
// half their TopicMemoryLimit: from there on, each subscriber holds at most
// its share of the other half.
func (t *topic) tight(size int64) bool {
	lim := t.b.opts.TopicMemoryLimit
	return lim > 0 && t.b.topicUsed.Load()+size > lim/2
}

// share is what one subscriber may hold while the topics are tight: half
// the TopicMemoryLimit over the subscribers holding anything. So, tight or
// not, the topics hold at most their TopicMemoryLimit, and one message more
// for each subscriber that held nothing.
func (t *topic) share() int64 {
	return t.b.opts.TopicMemoryLimit / 2 / max(1, t.b.topicHolders.Load())
}

// offer delivers e to s if it has credit, or holds it in s's backlog,
// dropping the oldest held message when the backlog is full: a subscriber
// that does not read loses messages rather than slow the topic. It reports
// whether s holds e now.
//
// While the topics are tight on memory, a subscriber holding more than its
// share first gives up its backlog, oldest first, to come within it, and
// if that is not enough it loses e: one that stopped reading loses
// messages rather than take the memory of those that keep up, which hold
// less than their share and lose nothing.
func (t *topic) offer(s *Subscription, e *entry) bool {
	before := s.holding()
	defer t.holds(s, before)
	size := int64(e.msg.Size())
	if s.holding() > 0 && t.tight(size) {
		share := t.share()
		for len(s.backlog) > 0 && s.holding()+size > share {
			t.dropOldest(s)
		}
		if s.holding() > 0 && s.holding()+size > share {
			t.lost(s)
			return false
		}
	}
	if s.credit > 0 && (s.heldCount == 0 || s.heldBytes+size <= t.b.opts.TopicBacklogBytes) {
		s.credit--
		s.heldBytes += size
		s.heldCount++
		s.deliver(e)
		return true
	}
	// Close the gate at half the backlog: publishes already queued on the
	// loop (up to maxQueued) still land, and should not overflow it.
	if !s.slow && len(s.backlog) >= t.b.opts.TopicBacklog/2 {
		t.setFull(true)
	}
	for len(s.backlog) > 0 && (len(s.backlog) >= t.b.opts.TopicBacklog || s.backlogBytes+size > t.b.opts.TopicBacklogBytes) {
		t.dropOldest(s)
	}
	s.backlog = append(s.backlog, e)
	s.backlogBytes += size
	return true
}

// dropOldest drops the oldest message of s's backlog.
func (t *topic) dropOldest(s *Subscription) {
	e := s.backlog[0]
	s.backlogBytes -= int64(e.msg.Size())
	s.backlog[0] = nil
	s.backlog = s.backlog[1:]
	t.unhold(e.msg.Seq)
	t.lost(s)
}

// lost counts a message s lost, and logs at 1, 2, 4, 8, ... of them.
func (t *topic) lost(s *Subscription) {
	if n := s.dropped.Add(1); n&(n-1) == 0 {
		t.b.opts.Logger.Warn("slow topic subscriber: dropping its oldest messages", "topic", t.name, "dropped", n)
	}
}

// credit takes the acknowledged deliveries seqs out of s's flight, returns
// their credit, and sends s what its backlog holds.
func (t *topic) credit(s *Subscription, seqs []uint64) {
	before := s.holding()
	defer t.holds(s, before)
	for _, seq := range seqs {
		s.heldBytes -= t.unhold(seq)
	}
	t.acked += uint64(len(seqs))
	s.credit += len(seqs)
	if s.heldCount -= len(seqs); s.heldCount <= 0 {
		s.heldBytes, s.heldCount = 0, 0
	}
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
		s.heldBytes += size
		s.heldCount++
		s.deliver(e)
	}
	if s.slow && len(s.backlog) <= t.b.opts.TopicBacklog/4 {
		s.slow = false // caught up: it holds the gate again
	}
	t.checkFull()
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

// removeSubscriber takes s off the topic; unacked are its deliveries in
// flight, which it no longer holds.
func (t *topic) removeSubscriber(s *Subscription, unacked []uint64) {
	t.subs = slices.DeleteFunc(t.subs, func(c *Subscription) bool { return c == s })
	before := s.holding()
	for _, e := range s.backlog {
		t.unhold(e.msg.Seq)
	}
	for _, seq := range unacked {
		t.unhold(seq)
	}
	s.backlog, s.backlogBytes, s.heldBytes, s.heldCount = nil, 0, 0, 0
	t.holds(s, before)
	t.gone += s.dropped.Load()
	t.checkFull()
}

// TopicStats describes one topic.
type TopicStats struct {
	Name        string
	Subscribers int // subscriptions now (durable ones while their subscriber is connected)
	// Dropped is how many messages its subscribers lost, being too slow
	// (Subscription.Dropped), since the broker started.
	Dropped uint64
	// Published is how many messages were published to it, Acknowledged
	// how many deliveries its subscribers acknowledged (a message to three
	// subscribers counts three times), since the broker started.
	Published, Acknowledged uint64
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
		st := TopicStats{Name: t.name}
		t.do(func() {
			st.Subscribers, st.Dropped, st.Published, st.Acknowledged = len(t.subs), t.gone, t.published, t.acked
			for _, s := range t.subs {
				st.Dropped += s.dropped.Load()
			}
		})
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b TopicStats) int { return strings.Compare(a.Name, b.Name) })
	return out
}
