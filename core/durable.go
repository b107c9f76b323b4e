// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairnmq/cairn/core/selector"
	"github.com/cairnmq/cairn/journal"
)

// A durable topic subscription, named by a client id and a subscription
// name (STOMP: CONNECT client-id, SUBSCRIBE activemq.subscriptionName),
// keeps the topic's messages while its subscriber is away. It is a queue
// of its own, named durableQueue(client, name), into which every message
// published to the topic is copied (journaled like any queue message when
// persistent); the subscriber consumes that queue, with a queue's acks,
// redelivery and dead letters. Creating and removing it are journal events
// (evDurable, evUndurable), and the set of them is in snapshots.

// Errors of durable subscriptions.
var (
	// ErrDurableInUse: the durable subscription has a subscriber already.
	ErrDurableInUse = errors.New("core: durable subscription is in use")
	// ErrDurableOwned: the durable subscription was made by another user.
	ErrDurableOwned = errors.New("core: durable subscription belongs to another user")
	// ErrNoDurable: no durable subscription by that name.
	ErrNoDurable = errors.New("core: no such durable subscription")
)

// durableQueue is the internal queue of a durable subscription. Queue
// names starting with '$' are reserved (ParseDestination refuses them).
func durableQueue(client, name string) string { return "$durable:" + client + ":" + name }

type durableKey struct{ client, name string }

// durableSpec is what a durable subscription is for: its topic (perhaps a
// wildcard) and its selector's text ("" for none).
// durableSpec is what a durable subscription is: its topic and selector,
// and the user who made it ("" when made without one), who alone may use
// or remove it.
type durableSpec struct{ topic, selector, owner string }

// durable is a durable subscription; guarded by Broker.mu.
type durable struct {
	key durableKey
	durableSpec
	sel     *selector.Selector // parsed selector: only what it matches is kept
	active  bool
	offline time.Time // since when it has had no subscriber
}

// newDurable makes the in-memory durable of key and spec.
func newDurable(key durableKey, spec durableSpec) (*durable, error) {
	d := &durable{key: key, durableSpec: spec}
	if spec.selector != "" {
		sel, err := selector.Parse(spec.selector)
		if err != nil {
			return nil, err
		}
		d.sel = sel
	}
	return d, nil
}

// DurableInfo describes a durable subscription.
type DurableInfo struct {
	ClientID, Name, Topic string
	Active                bool
	OfflineSince          time.Time // zero while active
	Stats                 Stats     // of the messages kept for it
}

// SubscribeDurable subscribes c to topic as the durable subscription
// (client, name): created, and journaled, if it is new; recreated if it
// was for another topic (ActiveMQ does the same); the messages kept while
// it was away come first. Its selector (opts.Selector) decides what is
// kept; a different selector, like a different topic, recreates the
// subscription. A second subscriber to the same durable subscription is
// refused with ErrDurableInUse. The prefetch default is ActiveMQ's for
// durable subscribers, 100.
func (b *Broker) SubscribeDurable(ctx context.Context, client, name string, topic Destination, opts SubscribeOptions, c Consumer) (*Subscription, error) {
	if client == "" || name == "" {
		return nil, errors.New("core: a durable subscription needs a client id and a name")
	}
	if topic.Kind != Topic {
		return nil, fmt.Errorf("core: a durable subscription is for a topic, not %s", topic)
	}
	k := durableKey{client, name}
	b.durMu.Lock()
	defer b.durMu.Unlock()
	b.mu.Lock()
	d := b.durables[k]
	b.mu.Unlock()
	if d != nil && d.active {
		return nil, fmt.Errorf("%w: %s/%s", ErrDurableInUse, client, name)
	}
	spec := durableSpec{topic: topic.Name, owner: opts.Owner}
	if opts.Selector != nil {
		spec.selector = opts.Selector.String()
	}
	if d != nil && d.owner != "" && d.owner != opts.Owner {
		return nil, fmt.Errorf("%w: %s/%s", ErrDurableOwned, client, name)
	}
	if d != nil && (d.topic != spec.topic || d.selector != spec.selector) {
		if err := b.removeDurableLocked(ctx, d); err != nil {
			return nil, err
		}
		d = nil
	}
	if d == nil {
		nd, err := newDurable(k, spec)
		if err != nil {
			return nil, err
		}
		rec := journal.Record{Type: evDurable, Data: encodeDurable(client, name, spec)}
		if _, _, err := b.log.Append(ctx, []journal.Record{rec}); err != nil {
			return nil, journalError(err)
		}
		d = nd
		b.mu.Lock()
		b.addDurableLocked(d)
		b.mu.Unlock()
	}
	if opts.Prefetch <= 0 {
		opts.Prefetch = 100
	}
	opts.Selector = nil // applied when messages are kept for it
	s, err := b.Subscribe(Destination{Queue, durableQueue(client, name)}, opts, c)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	d.active = true
	b.mu.Unlock()
	s.onClose = func() {
		b.mu.Lock()
		d.active, d.offline = false, time.Now()
		b.mu.Unlock()
	}
	return s, nil
}

// UnsubscribeDurable removes the durable subscription (client, name) and
// the messages kept for it. It is refused with ErrDurableInUse while it
// has a subscriber.
func (b *Broker) UnsubscribeDurable(ctx context.Context, client, name string) error {
	return b.unsubscribeDurable(ctx, client, name, "", false)
}

// UnsubscribeDurableAs is UnsubscribeDurable by user: refused with
// ErrDurableOwned when another user made the subscription.
func (b *Broker) UnsubscribeDurableAs(ctx context.Context, client, name, user string) error {
	return b.unsubscribeDurable(ctx, client, name, user, true)
}

func (b *Broker) unsubscribeDurable(ctx context.Context, client, name, user string, checkOwner bool) error {
	b.durMu.Lock()
	defer b.durMu.Unlock()
	b.mu.Lock()
	d := b.durables[durableKey{client, name}]
	b.mu.Unlock()
	switch {
	case d == nil:
		return fmt.Errorf("%w: %s/%s", ErrNoDurable, client, name)
	case checkOwner && d.owner != "" && d.owner != user:
		return fmt.Errorf("%w: %s/%s", ErrDurableOwned, client, name)
	case d.active:
		return fmt.Errorf("%w: %s/%s", ErrDurableInUse, client, name)
	}
	return b.removeDurableLocked(ctx, d)
}

// removeDurableLocked deletes d's queue, then journals the removal and
// forgets d. (A crash between the two leaves it subscribed, and empty.)
// durMu is held.
func (b *Broker) removeDurableLocked(ctx context.Context, d *durable) error {
	qname := durableQueue(d.key.client, d.key.name)
	if _, ok := b.QueueStats(qname); ok {
		if err := b.DeleteQueue(ctx, qname); err != nil {
			return err
		}
	}
	rec := journal.Record{Type: evUndurable, Data: encodeDurable(d.key.client, d.key.name, d.durableSpec)}
	if _, _, err := b.log.Append(ctx, []journal.Record{rec}); err != nil {
		return journalError(err)
	}
	b.mu.Lock()
	b.dropDurableLocked(d)
	b.mu.Unlock()
	return nil
}

// Durables lists the durable subscriptions.
func (b *Broker) Durables() []DurableInfo {
	b.mu.Lock()
	var out []DurableInfo
	for _, d := range b.durables {
		out = append(out, DurableInfo{ClientID: d.key.client, Name: d.key.name, Topic: d.topic, Active: d.active, OfflineSince: d.offline})
	}
	b.mu.Unlock()
	for i := range out {
		out[i].Stats, _ = b.QueueStats(durableQueue(out[i].ClientID, out[i].Name))
		if out[i].Active {
			out[i].OfflineSince = time.Time{}
		}
	}
	return out
}

// withDurableCopies returns msgs with, after each topic message, a copy of
// it for each durable subscription of its topic.
func (b *Broker) withDurableCopies(msgs []*Message) []*Message {
	if b.durCount.Load() == 0 {
		return msgs // the usual case: no lock on the send path
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.durables) == 0 {
		return msgs
	}
	out := make([]*Message, 0, len(msgs)+1)
	for _, m := range msgs {
		out = append(out, m)
		if m.Destination.Kind != Topic {
			continue
		}
		copyTo := func(ds []*durable) {
			for _, d := range ds {
				if d.sel != nil && !d.sel.Match(selecting{m}) {
					continue
				}
				c := *m
				c.Destination = Destination{Queue, durableQueue(d.key.client, d.key.name)}
				out = append(out, &c)
			}
		}
		copyTo(b.byTopic[m.Destination.Name])
		for pattern := range b.wildDurables {
			if pattern != m.Destination.Name && !private(m.Destination.Name) && MatchDestination(pattern, m.Destination.Name) {
				copyTo(b.byTopic[pattern])
			}
		}
	}
	return out
}

// addDurableLocked and dropDurableLocked keep durables and byTopic; mu is held.
func (b *Broker) addDurableLocked(d *durable) {
	b.durables[d.key] = d
	b.durCount.Store(int32(len(b.durables)))
	b.byTopic[d.topic] = append(b.byTopic[d.topic], d)
	if IsWildcard(d.topic) {
		b.wildDurables[d.topic] = true
	}
}

func (b *Broker) dropDurableLocked(d *durable) {
	delete(b.durables, d.key)
	b.durCount.Store(int32(len(b.durables)))
	list := b.byTopic[d.topic]
	for i, x := range list {
		if x == d {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(b.byTopic, d.topic)
		delete(b.wildDurables, d.topic)
	} else {
		b.byTopic[d.topic] = list
	}
}

// expireDurables removes durable subscriptions offline for longer than
// Options.DurableOfflineTimeout.
func (b *Broker) expireDurables() {
	if b.opts.DurableOfflineTimeout <= 0 {
		return
	}
	b.mu.Lock()
	var old []durableKey
	for k, d := range b.durables {
		if !d.active && time.Since(d.offline) > b.opts.DurableOfflineTimeout {
			old = append(old, k)
		}
	}
	b.mu.Unlock()
	for _, k := range old {
		if err := b.UnsubscribeDurable(context.Background(), k.client, k.name); err == nil {
			b.opts.Logger.Info("removed a durable subscription offline too long", "client_id", k.client, "name", k.name,
				"timeout", b.opts.DurableOfflineTimeout)
		}
	}
}

func encodeDurable(client, name string, spec durableSpec) []byte {
	e := encoder{}
	e.str(client)
	e.str(name)
	e.str(spec.topic)
	e.str(spec.selector)
	e.str(spec.owner)
	return e.b
}

func decodeDurable(p []byte) (client, name string, spec durableSpec, err error) {
	d := decoder{b: p}
	client, name = d.str(), d.str()
	spec = durableSpec{topic: d.str(), selector: d.str()}
	if len(d.b) > 0 { // records written before durables had owners end here
		spec.owner = d.str()
	}
	return client, name, spec, d.check("durable")
}
