// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import "slices"

// topic is a publish/subscribe destination: each message goes to every
// subscriber there is when it is published. Its state is owned by its loop.
type topic struct {
	loop
	b    *Broker
	name string
	subs []*Subscription
}

func newTopic(b *Broker, name string) *topic {
	return &topic{loop: newLoop(), b: b, name: name}
}

func (t *topic) publish(m *Message) {
	t.post(func() {
		e := &entry{msg: m}
		for _, s := range t.subs {
			t.offer(s, e)
		}
	})
}

// offer delivers e to s if it has credit, or holds it in s's backlog,
// dropping the oldest held message when the backlog is full: a subscriber
// that does not read loses messages rather than slow the topic.
func (t *topic) offer(s *Subscription, e *entry) {
	if s.credit > 0 {
		s.credit--
		s.deliver(e)
		return
	}
	if len(s.backlog) >= t.b.opts.TopicBacklog {
		s.backlog[0] = nil
		s.backlog = s.backlog[1:]
		s.dropped++
		if s.dropped&(s.dropped-1) == 0 { // log at 1, 2, 4, 8, ... drops
			t.b.opts.Logger.Warn("slow topic subscriber: dropping its oldest messages", "topic", t.name, "dropped", s.dropped)
		}
	}
	s.backlog = append(s.backlog, e)
}

// credit returns n acknowledged deliveries' worth of credit to s and sends
// it what its backlog holds.
func (t *topic) credit(s *Subscription, n int) {
	s.credit += n
	for s.credit > 0 && len(s.backlog) > 0 {
		e := s.backlog[0]
		s.backlog[0] = nil
		s.backlog = s.backlog[1:]
		s.credit--
		s.deliver(e)
	}
}

func (t *topic) addSubscriber(s *Subscription) { t.subs = append(t.subs, s) }

func (t *topic) removeSubscriber(s *Subscription) {
	t.subs = slices.DeleteFunc(t.subs, func(c *Subscription) bool { return c == s })
	s.backlog = nil
}
