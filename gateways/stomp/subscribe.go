// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// SUBSCRIBE and UNSUBSCRIBE: a STOMP subscription, browsing, durable subscriptions.

package stomp

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/core/selector"
	"github.com/cairnmq/cairn/gateways/auth"
)

// subscription is a STOMP subscription: the broker's subscription and the
// client's id for it.
type subscription struct {
	ss      *session
	id      string
	destStr string
	wild    bool         // a wildcard: MESSAGE frames name each message's destination
	mode    core.AckMode // the SUBSCRIBE's ack mode
	core    Subscription // nil for a browse
	gone    atomic.Bool  // unsubscribed: its deliveries still queued are not written
	mu      sync.Mutex

	// Until open, deliveries wait here: the SUBSCRIBE's RECEIPT goes out
	// only once the subscription is registered (so it misses nothing sent
	// after), and before any MESSAGE of it.
	holding atomic.Bool
	held    []outItem // under mu
}

// Deliver implements core.Consumer: it queues the MESSAGE without blocking.
func (s *subscription) Deliver(d core.Delivery) {
	if !s.hold(d) {
		s.ss.push(outItem{d: d, sub: s})
	}
}

// DeliverLater implements core.LaterConsumer: it queues the MESSAGE for
// Flush, without starting a writer.
func (s *subscription) DeliverLater(d core.Delivery) {
	if !s.hold(d) {
		s.ss.pushLater(outItem{d: d, sub: s})
	}
}

// Flush implements core.LaterConsumer (see session.writeLaterDeliveries).
func (s *subscription) Flush() { s.ss.writeLaterDeliveries() }

// hold keeps d while the subscription is not yet open, and reports
// whether it did.
func (s *subscription) hold(d core.Delivery) bool {
	if !s.holding.Load() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.holding.Load() {
		return false
	}
	s.held = append(s.held, outItem{d: d, sub: s})
	return true
}

// open ends the hold once the subscription is registered: the RECEIPT
// asked for goes out first, then what was delivered meanwhile.
func (s *subscription) open(receipt string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if receipt != "" {
		s.ss.push(outItem{f: frame.New(frame.RECEIPT, frame.ReceiptId, receipt)})
	}
	for _, it := range s.held {
		s.ss.push(it)
	}
	s.held = nil
	s.holding.Store(false)
}

// close ends the broker's subscription, if any (a browse has none).
func (s *subscription) close() {
	if s.core != nil {
		s.core.Close()
	}
}

// durableName is a SUBSCRIBE's or UNSUBSCRIBE's durable subscription name:
// ActiveMQ's activemq.subscriptionName, or durable-subscription-name (as
// ActiveMQ Artemis and RabbitMQ's clients send it).
func durableName(f *frame.Frame) string {
	if n := f.Header.Get("activemq.subscriptionName"); n != "" {
		return n
	}
	return f.Header.Get("durable-subscription-name")
}

func (ss *session) durableError(err error) error {
	switch {
	case errors.Is(err, core.ErrDurableInUse):
		return perr(CodeDurableInUse, "%v", err)
	case errors.Is(err, core.ErrNoDurable):
		return perr(CodeUnknownSubscription, "%v", err)
	case errors.Is(err, core.ErrDurableOwned):
		return perr(CodeAccessDenied, "%v", err)
	}
	return ss.brokerError(err)
}

func (ss *session) subID(f *frame.Frame, destStr string) (string, error) {
	id := f.Header.Get(frame.Id)
	if id == "" {
		if ss.version != "1.0" {
			return "", perr(CodeMissingHeader, "%s needs an id header in STOMP %s", f.Command, ss.version)
		}
		id = destStr
	}
	return id, nil
}

func (ss *session) checkSubscribe(f *frame.Frame) error {
	_, destStr, err := ss.destination(f)
	if err != nil {
		return err
	}
	id, err := ss.subID(f, destStr)
	if err != nil {
		return err
	}
	if ss.subs[id] != nil {
		return perr(CodeDuplicateSubscription, "subscription id %q is in use on this connection", id)
	}
	if _, err := core.ParseAckMode(f.Header.Get(frame.Ack)); err != nil {
		return perr(CodeBadHeader, "%v", err)
	}
	return nil
}

// subscribe carries out a SUBSCRIBE. Its RECEIPT, if asked for, goes out
// once the subscription is registered, and before any of its MESSAGEs.
func (ss *session) subscribe(f *frame.Frame, receipt string) error {
	if err := ss.checkSubscribe(f); err != nil {
		return err
	}
	dest, destStr, _ := ss.destination(f)
	if err := ss.allowed(auth.Read, dest); err != nil {
		return err
	}
	id, _ := ss.subID(f, destStr)
	mode, _ := core.ParseAckMode(f.Header.Get(frame.Ack))
	opts := core.SubscribeOptions{Mode: mode, Connection: ss.num, Owner: ss.user}
	if p := f.Header.Get("activemq.prefetchSize"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return perr(CodeBadHeader, "activemq.prefetchSize %q is not a positive number", p)
		}
		opts.Prefetch = n
	}
	if p := f.Header.Get("activemq.priority"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 127 {
			return perr(CodeBadHeader, "activemq.priority %q is not a number from 0 to 127", p)
		}
		opts.Priority = n
	}
	if sel := f.Header.Get("selector"); strings.TrimSpace(sel) != "" {
		// ActiveMQ prefixes STOMP selectors with convert_string_expressions:,
		// which is what Cairn's selectors do anyway; a client may send it too.
		sel = strings.TrimPrefix(sel, "convert_string_expressions:")
		parsed, err := selector.Parse(sel)
		if err != nil {
			return perr(CodeBadSelector, "%v", err)
		}
		opts.Selector = parsed
	}
	if f.Header.Get("activemq.noLocal") == "true" {
		opts.NoLocal = true
	}
	switch x := f.Header.Get("activemq.exclusive"); x {
	case "", "false":
	case "true":
		opts.Exclusive = true
	default:
		return perr(CodeBadHeader, "activemq.exclusive %q is not true or false", x)
	}
	s := &subscription{ss: ss, id: id, destStr: destStr, wild: core.IsWildcard(dest.Name), mode: opts.Mode}
	s.holding.Store(true)
	if dest.Kind == core.Queue && s.wild && (f.Header.Get("browser") == "true" || durableName(f) != "") {
		return perr(CodeBadDestination, "%s: a wildcard queue subscription cannot browse or be durable", destStr)
	}
	if f.Header.Get("browser") == "true" {
		if dest.Kind != core.Queue {
			return perr(CodeBadDestination, "browser:true needs a queue, not %s", s.destStr)
		}
		s.open(receipt)
		return ss.browse(s, dest)
	}
	var cs Subscription
	var err error
	if name := durableName(f); name != "" {
		if ss.clientID == "" {
			return perr(CodeMissingHeader, "a durable subscription (activemq.subscriptionName) needs client-id on CONNECT")
		}
		if dest.Kind != core.Topic {
			return perr(CodeBadDestination, "a durable subscription is for a topic, not %s", destStr)
		}
		cs, err = ss.srv.broker.SubscribeDurable(context.Background(), ss.clientID, name, dest, opts, s)
	} else {
		cs, err = ss.srv.broker.Subscribe(dest, opts, s)
	}
	if err != nil {
		return ss.durableError(err)
	}
	s.core = cs
	ss.subs[id] = s
	ss.nsubs.Store(int32(len(ss.subs)))
	s.open(receipt)
	return nil
}

// browse answers a SUBSCRIBE with browser:true (to a queue): a MESSAGE for
// each message the queue holds, taking none, then one with browser:end. ActiveMQ shows a
// browser at most 400 messages by default (maxBrowsePageSize); this shows
// them all.
func (ss *session) browse(s *subscription, dest core.Destination) error {
	msgs, _ := ss.srv.broker.Browse(dest.Name)
	for _, m := range msgs {
		if !ss.push(outItem{d: core.Delivery{Msg: m}, sub: s}) {
			return nil
		}
	}
	end := frame.New(frame.MESSAGE, frame.Destination, s.destStr, frame.Subscription, s.id,
		frame.MessageId, "ID:cairn-browser-end", "browser", "end", frame.ContentLength, "0")
	ss.push(outItem{f: end})
	if ss.browsers == nil {
		ss.browsers = map[string]bool{}
	}
	ss.browsers[s.id] = true // until UNSUBSCRIBE, so that the client may send it
	return nil
}

func (ss *session) unsubscribe(f *frame.Frame) error {
	id := f.Header.Get(frame.Id)
	if id == "" && ss.version == "1.0" {
		id = f.Header.Get(frame.Destination)
	}
	if id == "" {
		return perr(CodeMissingHeader, "UNSUBSCRIBE needs an id header")
	}
	s := ss.subs[id]
	name := durableName(f)
	if s == nil && name == "" {
		if ss.browsers[id] {
			delete(ss.browsers, id)
			return nil
		}
		return perr(CodeUnknownSubscription, "no subscription %q on this connection", id)
	}
	if s != nil {
		delete(ss.subs, id)
		ss.nsubs.Store(int32(len(ss.subs)))
		ss.endDeliveries(s)
		s.close()
	}
	if name != "" {
		// With the subscription name, UNSUBSCRIBE ends the durable
		// subscription and drops what was kept for it (as in ActiveMQ).
		if ss.clientID == "" {
			return perr(CodeMissingHeader, "removing a durable subscription needs client-id on CONNECT")
		}
		if err := ss.srv.broker.UnsubscribeDurable(context.Background(), ss.clientID, name, ss.user); err != nil {
			return ss.durableError(err)
		}
	}
	return nil
}

// endDeliveries stops s's deliveries before its core subscription closes:
// what is still queued for it is not written, and what was written to an
// auto-ack subscription is acknowledged first, so that closing it does not
// hand a message the client has already received to another consumer.
func (ss *session) endDeliveries(s *subscription) {
	s.gone.Store(true)
	if s.core != nil && s.mode != core.AckAuto {
		return // the client acks what it got; the rest is redelivered
	}
	b := make(chan struct{})
	ss.push(outItem{barrier: b})
	select {
	case <-b:
	case <-ss.written: // the writer has finished: no more auto acks start
		ss.acks.Wait()
	}
}
