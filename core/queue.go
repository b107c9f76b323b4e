// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnmq/cairn/journal"
)

// loop runs a destination's operations one at a time, so the destination's
// state needs no lock. Its goroutine runs only while there is work: an idle
// destination (thousands of them, one per idle consumer's queue) costs no
// goroutine. At most maxQueued operations wait; posting more blocks the
// poster (a producer outrunning a destination is slowed, not buffered
// without bound).
//
// The role of running the loop may also be taken by a caller on its own
// goroutine, when the loop is idle (claim, do, runOrPost): the operation then
// costs no goroutine start and no wake-up of another thread, which on a
// small machine is most of what one operation costs. Operations posted
// meanwhile queue behind it and go to a goroutine when it is done.
type loop struct {
	mu      sync.Mutex
	cond    sync.Cond // signalled when ops drain or the role is given up
	ops     []func()
	spare   []func()
	running bool // someone holds the role: the goroutine, or a caller
	stopped bool
	quit    chan struct{} // closed by stop
}

const maxQueued = 4096

func newLoop() loop { return loop{quit: make(chan struct{})} }

// post queues f to run on the loop. It reports false, and drops f, if the
// loop has stopped.
func (l *loop) post(f func()) bool {
	l.mu.Lock()
	if l.cond.L == nil {
		l.cond.L = &l.mu
	}
	for len(l.ops) >= maxQueued && !l.stopped {
		l.cond.Wait()
	}
	if l.stopped {
		l.mu.Unlock()
		return false
	}
	l.ops = append(l.ops, f)
	if !l.running {
		l.running = true
		go l.run()
	}
	l.mu.Unlock()
	return true
}

func (l *loop) run() {
	l.mu.Lock()
	for len(l.ops) > 0 && !l.stopped {
		batch := l.ops
		l.ops, l.spare = l.spare[:0], nil
		l.cond.Broadcast()
		l.mu.Unlock()
		for i, f := range batch {
			f()
			batch[i] = nil
		}
		l.mu.Lock()
		if l.spare == nil && cap(batch) <= maxQueued {
			l.spare = batch[:0]
		}
	}
	l.running = false
	if len(l.ops) == 0 {
		l.spare = nil // an idle destination holds no buffers
	}
	l.cond.Broadcast()
	l.mu.Unlock()
}

// claim takes the role of running the loop for the caller if the loop is
// idle (nothing queued, no goroutine), and reports whether it did. The
// caller must then call runClaimed soon, without waiting on anything first.
func (l *loop) claim() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running || l.stopped || len(l.ops) > 0 {
		return false
	}
	l.running = true
	return true
}

// runClaimed runs f as the holder of the role (see claim), then gives the role
// up: to a goroutine if operations were queued meanwhile.
func (l *loop) runClaimed(f func()) {
	l.mu.Lock()
	stopped := l.stopped
	l.mu.Unlock()
	if !stopped {
		f()
	}
	l.mu.Lock()
	if len(l.ops) > 0 && !l.stopped {
		go l.run() // the role passes on: running stays true
	} else {
		l.running = false
		l.spare = nil
		l.cond.Broadcast()
	}
	l.mu.Unlock()
}

// runOrPost runs f at once on the caller's goroutine if the loop is idle,
// and posts it otherwise. It reports false, and drops f, if the loop has
// stopped.
func (l *loop) runOrPost(f func()) bool {
	if l.claim() {
		l.runClaimed(f)
		return true
	}
	return l.post(f)
}

// do runs f on the loop and waits for it; if the loop stops first, f may
// not run. An idle loop runs f on the caller's goroutine.
func (l *loop) do(f func()) {
	if l.claim() {
		l.runClaimed(f)
		return
	}
	ran := make(chan struct{})
	if l.post(func() { f(); close(ran) }) {
		select {
		case <-ran:
		case <-l.quit:
		}
	}
}

// stop ends the loop once the operation running now (if any) is done;
// operations still queued are dropped, and callers waiting in do for them
// are let go.
func (l *loop) stop() {
	l.mu.Lock()
	if l.cond.L == nil {
		l.cond.L = &l.mu
	}
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.stopped = true
	l.ops = nil
	l.cond.Broadcast()
	for l.running {
		l.cond.Wait()
	}
	l.mu.Unlock()
	close(l.quit) // after the goroutine is gone: nothing runs once do returns
}

// entry is a message waiting in, or delivered from, a destination.
type entry struct {
	msg          *Message
	redelivered  bool
	redeliveries uint32    // times given back (NACK, consumer gone), journaled
	due          time.Time // while waiting out a redelivery delay
}

// before orders two messages of a queue for dispatch.
func before(a, b *Message) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	return a.Seq < b.Seq
}

// flight is a delivered, unacknowledged message.
type flight struct {
	e   *entry
	sub *Subscription
}

// queue is a point-to-point destination. All its state is owned by its loop.
type queue struct {
	loop
	b         *Broker
	name      string
	dest      Destination
	pending   pending
	inflight  map[uint64]*flight
	acking    map[uint64]*flight // acknowledged, the ack not yet durable
	consumers []*Subscription
	next      int              // round-robin position
	bound     uint64           // journaled dispatch bound: messages up to it may have been delivered
	flushes   *[]LaterConsumer // set while a producer's goroutine runs the loop: see LaterConsumer

	groups       map[string]*Subscription // message group -> the consumer it is pinned to
	exclusives   int                      // consumers that asked to be exclusive
	selectors    int                      // consumers with a selector
	mayExpire    bool                     // a message with an expiry may be here: sweeps look
	deleted      atomic.Bool              // removed by DeleteQueue: Broker.queue makes a new one
	enqueued     int                      // messages that entered since start (not counting replay)
	producers    map[uint64]int64         // sending connection -> its last send (Unix ms)
	dequeued     int                      // messages acknowledged since start
	bytes        int64                    // bytes of the messages held (waiting, delayed, in flight)
	storedBytes  int64                    // of which persistent: what the journal holds for them
	pages        *[10]refFIFO             // paged messages by priority, oldest first (paging.go); nil until one is
	pageExtras   map[uint64]pageExtra     // for the few paged messages that were given back
	paged        int                      // how many
	pagedBytes   int64
	pagedExpiry  int64     // no paged message expires before this (Unix ms; 0: none expires)
	fetching     bool      // a refill's read-back is in flight
	aside        []uint64  // paged messages set aside, whose records will not read back (Stats.Unreadable)
	fetchRetry   time.Time // after a read-back failed, no refill before this
	expired      int       // messages expired since start
	policy       RedeliveryPolicy
	delayed      delayed // given back, waiting out the policy's delay
	delayTimer   *time.Timer
	deadLettered int
}

func newQueue(b *Broker, name string) *queue {
	// The maps are made on first use: a destination per idle consumer
	// (thousands) costs as little as can be.
	return &queue{loop: newLoop(), b: b, name: name, dest: Destination{Queue, name}, policy: b.redeliveryPolicy(name)}
}

// activeProducers counts the connections that sent to q within the last
// minute, and forgets the others.
func (q *queue) activeProducers() int {
	since := time.Now().Add(-time.Minute).UnixMilli()
	for origin, at := range q.producers {
		if at < since {
			delete(q.producers, origin)
		}
	}
	return len(q.producers)
}

// account adds (n = 1) or removes (n = -1) m from the byte counts.
func (q *queue) account(m *Message, n int64) {
	size := n * int64(m.Size())
	q.bytes += size
	q.b.memoryFreed(size)
	if m.Persistent {
		q.storedBytes += size
		q.b.storeUsed(size)
	}
}

func (q *queue) enqueue(m *Message) {
	q.post(func() { q.add(m) })
}

// add takes a sent message in; on the loop.
func (q *queue) add(m *Message) {
	q.enqueued++
	if m.Origin != 0 {
		if q.producers == nil {
			q.producers = map[uint64]int64{}
		}
		q.producers[m.Origin] = m.Timestamp // stamped at send: no clock read here
	}
	if q.mayPage(m) {
		q.page(&entry{msg: m})
	} else {
		q.account(m, 1)
		q.mayExpire = q.mayExpire || m.Expires > 0
		q.pending.push(&entry{msg: m})
	}
	q.dispatch()
}

func (q *queue) addConsumer(s *Subscription) {
	q.consumers = append(q.consumers, s)
	if s.exclusive {
		q.exclusives++
	}
	if s.selector != nil {
		q.selectors++
	}
	q.dispatch()
}

// removeConsumer drops s and gives its in-flight messages back.
func (q *queue) removeConsumer(s *Subscription) {
	q.consumers = slices.DeleteFunc(q.consumers, func(c *Subscription) bool { return c == s })
	if s.exclusive {
		q.exclusives--
	}
	if s.selector != nil {
		q.selectors--
	}
	for gid, owner := range q.groups {
		if owner == s {
			delete(q.groups, gid) // its groups go to whoever takes their next message
		}
	}
	var back []uint64
	for seq, f := range q.inflight {
		if f.sub == s {
			delete(q.inflight, seq)
			back = q.giveBack(f, back)
		}
	}
	q.journalRedelivered(back)
	q.dispatch()
}

// giveBack returns a delivered message for redelivery, counting it: to
// pending, or aside until the policy's delay is over, or, past the policy's
// limit, to the dead-letter queue. It appends the seq of a persistent
// message kept here to persistent (its count is to be journaled).
func (q *queue) giveBack(f *flight, persistent []uint64) []uint64 {
	e := f.e
	e.redelivered = true
	e.redeliveries++
	q.mayExpire = q.mayExpire || e.msg.Expires > 0
	p := q.policy
	if p.MaxRedeliveries >= 0 && int(e.redeliveries) > p.MaxRedeliveries {
		if dlq := p.dlq(q.name); dlq != q.name {
			cause := fmt.Sprintf("given back %d times; the limit is %d redeliveries", e.redeliveries, p.MaxRedeliveries)
			if q.deadLetter(e, dlq, cause) {
				return persistent
			}
		}
	}
	if d := p.delay(e.redeliveries); d > 0 {
		q.hold(e, time.Now().Add(d))
	} else {
		q.pending.push(e)
	}
	if e.msg.Persistent {
		persistent = append(persistent, e.msg.Seq)
	}
	return persistent
}

// journalRedelivered records redeliveries, lazily: nobody waits for them.
func (q *queue) journalRedelivered(seqs []uint64) {
	if len(seqs) == 0 {
		return
	}
	recs := []journal.Record{{Type: evRedelivered, Data: encodeAck(q.dest, seqs)}}
	var err error
	if la, ok := q.b.log.(journal.LazyAppender); ok {
		err = la.AppendLazy(context.Background(), recs)
	} else {
		_, _, err = q.b.log.Append(context.Background(), recs)
	}
	if err != nil {
		q.b.opts.Logger.Warn("journal: redelivery count", "queue", q.name, "err", err)
	}
}

// ackBegin moves seqs that are in flight to s into acking, and returns them
// and which of them are persistent (to be journaled).
func (q *queue) ackBegin(s *Subscription, seqs []uint64) (held, persistent []uint64) {
	for _, seq := range seqs {
		f := q.inflight[seq]
		if f == nil || f.sub != s {
			continue
		}
		delete(q.inflight, seq)
		if q.acking == nil {
			q.acking = map[uint64]*flight{}
		}
		q.acking[seq] = f
		held = append(held, seq)
		if f.e.msg.Persistent {
			persistent = append(persistent, seq)
		}
	}
	return held, persistent
}

// ackEnd finishes an ack: the messages are gone, or, if the journal failed,
// back in flight (or pending, if their subscription has gone).
func (q *queue) ackEnd(s *Subscription, seqs []uint64, err error) {
	for _, seq := range seqs {
		f := q.acking[seq]
		if f == nil {
			continue
		}
		delete(q.acking, seq)
		if err == nil {
			s.credit++
			q.dequeued++
			q.account(f.e.msg, -1)
			continue
		}
		if slices.Contains(q.consumers, s) {
			if q.inflight == nil {
				q.inflight = map[uint64]*flight{}
			}
			q.inflight[seq] = f
		} else {
			q.giveBack(f, nil) // the journal has failed: no count to write
		}
	}
	q.dispatch()
}

// requeue gives seqs delivered to s back, for redelivery.
func (q *queue) requeue(s *Subscription, seqs []uint64) {
	var back []uint64
	for _, seq := range seqs {
		f := q.inflight[seq]
		if f == nil || f.sub != s {
			continue
		}
		delete(q.inflight, seq)
		s.credit++
		back = q.giveBack(f, back)
	}
	q.journalRedelivered(back)
	q.dispatch()
}

// nextConsumer picks the next consumer for m: of those with credit whose
// selector matches m, the highest consumer priority, round robin.
func (q *queue) nextConsumer(m *Message) *Subscription {
	top, found := 0, false
	for _, c := range q.consumers {
		if c.credit > 0 && (!found || c.priority > top) && c.matches(m) {
			top, found = c.priority, true
		}
	}
	if !found {
		return nil
	}
	for range q.consumers {
		q.next = (q.next + 1) % len(q.consumers)
		if c := q.consumers[q.next]; c.credit > 0 && c.priority == top && c.matches(m) {
			return c
		}
	}
	return nil
}

// anyCredit reports whether some consumer has room.
func (q *queue) anyCredit() bool {
	for _, c := range q.consumers {
		if c.credit > 0 {
			return true
		}
	}
	return false
}

// dispatch hands pending messages to consumers with credit. Before a
// persistent message past the journaled dispatch bound goes out, the bound
// is moved ahead and journaled, so that after a crash every message that
// may have been delivered comes back marked redelivered.
func (q *queue) dispatch() {
	if !q.anyCredit() {
		// Nobody can take a message now (a backlog with full consumers,
		// the common case under load): do not take the first message out
		// of pending only to put it back. The ack or subscribe that gives
		// credit back dispatches again.
		return
	}
	now := int64(0)
	var parked []*entry // group messages whose consumer has no room now
	defer func() {
		for _, e := range parked {
			q.pending.push(e)
		}
	}()
	if q.paged > 0 && len(q.consumers) > 0 {
		q.refill()
	}
	for len(q.consumers) > 0 {
		if q.pending.len() == 0 {
			// All that is in memory is parked, for consumers that are full
			// or do not want it: read paged messages back to look further
			// (fetched dispatches again), as far as parking goes.
			if len(parked) > 0 {
				q.refill()
			}
			break
		}
		if q.paged > 0 && q.topPaged() > q.pending.top() {
			// A paged message outranks all in memory: it goes first, once
			// read back (fetched dispatches again).
			if q.refill(); q.fetching {
				break
			}
		}
		e := q.pending.pop()
		if e.msg.Expires > 0 {
			if now == 0 {
				now = time.Now().UnixMilli()
			}
			if expired(e.msg, now) {
				if kept := q.expire([]*entry{e}); len(kept) > 0 {
					q.pending.push(e) // the journal refused; try again later
					return
				}
				continue
			}
		}
		c, wait := q.consumerFor(e)
		if c == nil {
			if wait && len(parked) < maxParked {
				parked = append(parked, e) // its group's consumer is full; others may go
				continue
			}
			q.pending.push(e)
			return
		}
		if e.msg.Persistent && e.msg.Seq > q.bound {
			bound := q.b.seq.Load() + q.b.opts.DispatchLookahead
			rec := journal.Record{Type: evDispatched, Data: encodeDispatched(q.dest, bound)}
			if _, _, err := q.b.log.Append(context.Background(), []journal.Record{rec}); err != nil {
				q.b.opts.Logger.Error("journal: dispatch bound", "queue", q.name, "err", err)
				q.pending.push(e)
				return
			}
			q.bound = bound
		}
		c.credit--
		if q.inflight == nil {
			q.inflight = map[uint64]*flight{}
		}
		q.inflight[e.msg.Seq] = &flight{e: e, sub: c}
		c.deliver(e)
		if q.paged > 0 && q.pending.len() < refillLow {
			q.refill()
		}
	}
}

// maxParked bounds how many group messages one dispatch steps over while
// their consumers are full.
const maxParked = 1024

// Message group headers (ActiveMQ's).
const (
	HeaderGroupID  = "JMSXGroupID"
	HeaderGroupSeq = "JMSXGroupSeq"
)

// consumerFor picks the consumer e goes to: the exclusive consumer if the
// queue has one; the consumer its message group is pinned to (pinning it
// to the next consumer if it has none, and unpinning it after a message
// with JMSXGroupSeq -1); else the next consumer with room. It returns nil
// when nobody can take e now, with wait set when e waits for its group's
// consumer while other messages may go to others.
func (q *queue) consumerFor(e *entry) (c *Subscription, wait bool) {
	if x := q.exclusive(); x != nil {
		switch {
		case x.credit <= 0:
			return nil, false
		case !x.matches(e.msg):
			return nil, true // it waits for a consumer that wants it
		}
		return x, false
	}
	// With selectors, a message no consumer with room wants waits while
	// others go.
	skip := q.selectors > 0 && q.anyCredit()
	gid := e.msg.Get(HeaderGroupID)
	if gid == "" {
		c := q.nextConsumer(e.msg)
		return c, c == nil && skip
	}
	owner := q.groups[gid]
	if owner == nil {
		if owner = q.nextConsumer(e.msg); owner == nil {
			return nil, skip
		}
		if q.groups == nil {
			q.groups = map[string]*Subscription{}
		}
		q.groups[gid] = owner
	}
	if owner.credit <= 0 {
		return nil, true
	}
	if e.msg.Get(HeaderGroupSeq) == "-1" {
		delete(q.groups, gid) // the group is closed; its next message starts it anew
	}
	return owner, false
}

// exclusive returns the queue's exclusive consumer: the first subscribed
// of those that asked to be (activemq.exclusive); the next takes over when
// it goes.
func (q *queue) exclusive() *Subscription {
	if q.exclusives == 0 {
		return nil
	}
	for _, c := range q.consumers {
		if c.exclusive {
			return c
		}
	}
	return nil
}
