// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp

import (
	"strings"

	"github.com/cairnmq/cairn/core"
)

// A wildcard queue subscription (/queue/orders.>) is one core subscription
// per matching queue, those there now and those made later; MESSAGE frames
// name each message's queue. Each gets the SUBSCRIBE's prefetch.

// subscribeQueues subscribes s to every queue matching pattern, now and
// as they appear, until s is closed.
func (ss *session) subscribeQueues(s *subscription, pattern string, opts core.SubscribeOptions) {
	b := ss.srv.broker
	add := func(name string) {
		if strings.HasPrefix(name, "$") || !core.MatchDestination(pattern, name) {
			return
		}
		cs, err := b.Subscribe(core.Destination{Kind: core.Queue, Name: name}, opts, s)
		if err != nil {
			return
		}
		if !s.add(cs) {
			cs.Close() // unsubscribed meanwhile
		}
	}
	s.stopWatch = b.WatchQueues(add)
	for _, st := range b.Queues() {
		add(st.Destination.Name)
	}
}

// add attaches one more core subscription; false if s is closed.
func (s *subscription) add(cs *core.Subscription) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	for _, have := range s.more {
		if have.Destination() == cs.Destination() {
			return false // already subscribed to that queue
		}
	}
	s.more = append(s.more, cs)
	return true
}

// owner is the core subscription that delivered seq and has not had it
// acknowledged, or nil.
func (s *subscription) owner(seq uint64) *core.Subscription {
	if s.core != nil {
		if s.core.Has(seq) {
			return s.core
		}
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cs := range s.more {
		if cs.Has(seq) {
			return cs
		}
	}
	return nil
}

// close ends every core subscription of s.
func (s *subscription) close() {
	if s.core != nil {
		s.core.Close()
		return
	}
	s.mu.Lock()
	s.closed = true
	more := s.more
	s.more = nil
	stop := s.stopWatch
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	for _, cs := range more {
		cs.Close()
	}
}
