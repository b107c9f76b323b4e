// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"container/heap"
	"context"
	"slices"
	"time"

	"github.com/cairnmq/cairn/journal"
)

// expired reports whether m has passed its expiry at now (Unix ms).
func expired(m *Message, now int64) bool { return m.Expires > 0 && m.Expires <= now }

// dropExpired leaves out of msgs those already expired on arrival: they
// are confirmed to the sender and never stored or delivered.
func dropExpired(msgs []*Message) []*Message {
	now := int64(0)
	for i, m := range msgs {
		if m.Expires == 0 {
			continue
		}
		if now == 0 {
			now = time.Now().UnixMilli()
		}
		if expired(m, now) {
			kept := append(make([]*Message, 0, len(msgs)), msgs[:i]...)
			for _, m := range msgs[i+1:] {
				if !expired(m, now) {
					kept = append(kept, m)
				}
			}
			return kept
		}
	}
	return msgs
}

// expire removes expired entries of a queue: journaled (evExpired) for the
// persistent ones, then dropped, or moved to the dead-letter queue under
// ExpiredToDLQ. Entries whose removal the journal refused stay pending.
func (q *queue) expire(es []*entry) (kept []*entry) {
	if len(es) == 0 {
		return nil
	}
	if q.b.opts.ExpiredToDLQ {
		dlq := q.policy.dlq(q.name)
		for _, e := range es {
			if dlq == q.name || !q.deadLetter(e, dlq, "expired") {
				kept = append(kept, e)
			}
		}
		q.expired += len(es) - len(kept)
		return kept
	}
	var seqs []uint64
	for _, e := range es {
		if e.msg.Persistent {
			seqs = append(seqs, e.msg.Seq)
		}
	}
	if len(seqs) > 0 {
		rec := journal.Record{Type: evExpired, Data: encodeAck(q.dest, seqs)}
		if _, _, err := q.b.log.Append(context.Background(), []journal.Record{rec}); err != nil {
			q.b.opts.Logger.Error("journal: expiry", "queue", q.name, "err", err)
			return es
		}
	}
	q.expired += len(es)
	for _, e := range es {
		q.account(e.msg, -1)
	}
	return nil
}

// sweep expires the pending and delayed messages past their expiry that no
// consumer has come for.
// It scans only a queue that has held a message with an expiry since a
// sweep last found none.
func (q *queue) sweep() {
	if !q.mayExpire {
		return
	}
	now := time.Now().UnixMilli()
	var gone []*entry
	found := false
	live := func(e *entry) bool {
		found = found || e.msg.Expires > 0
		if expired(e.msg, now) {
			gone = append(gone, e)
			return false
		}
		return true
	}
	q.pending.filter(live)
	q.delayed = slices.DeleteFunc(q.delayed, func(e *entry) bool { return !live(e) })
	if q.pagedExpiry > 0 && q.pagedExpiry <= now {
		gone = append(gone, q.sweepPaged(now)...)
	}
	found = found || q.pagedExpiry > 0
	for _, f := range q.inflight {
		found = found || f.e.msg.Expires > 0
	}
	q.mayExpire = found
	if len(gone) == 0 {
		return
	}
	for _, e := range q.expire(gone) { // the journal refused: they stay
		q.pending.push(e)
	}
	heap.Init(&q.delayed)
	q.armDelay()
}

// sweepPagedMax bounds the paged messages one sweep reads back to expire
// (on the queue's loop); the next sweep goes on.
const sweepPagedMax = 4096

// sweepPaged takes the paged messages expired at now out of the page
// store, read back for expire (which may dead-letter them), and sets
// pagedExpiry to the soonest expiry left. One that cannot be read back
// stays paged (logged), for the next sweep.
func (q *queue) sweepPaged(now int64) []*entry {
	var due []pageRef
	for p := range q.pages {
		q.pages[p].each(func(r pageRef) {
			if r.expires > 0 && r.expires.ms() <= now && len(due) < sweepPagedMax {
				due = append(due, r)
			}
		})
	}
	read := make(map[uint64]*Message, len(due))
	gone := map[uint64]bool{} // lost: set aside
	for i, rr := range q.readBackMany(due) {
		switch {
		case rr.m != nil:
			read[due[i].seq] = rr.m
		case rr.err != nil:
			q.readFailed(due[i], rr.err)
			gone[due[i].seq] = lost(rr.err)
		}
	}
	var expired []*entry
	soonest := int64(0)
	for p := range q.pages {
		if q.pages[p].n == 0 {
			continue
		}
		q.pages[p].filter(func(r pageRef) bool {
			if m := read[r.seq]; m != nil {
				q.unpage(r)
				q.account(m, 1) // in memory now; expire takes it off
				e, _ := q.unpaged(r, m)
				expired = append(expired, e)
				return false
			}
			if gone[r.seq] {
				q.setAside(r)
				return false
			}
			if e := r.expires.ms(); e > 0 && (soonest == 0 || e < soonest) {
				soonest = e
			}
			return true
		})
	}
	q.pagedExpiry = soonest
	return expired
}

// sweepExpired asks every queue to sweep; the background loop calls it.
func (b *Broker) sweepExpired() {
	b.mu.Lock()
	qs := make([]*queue, 0, len(b.queues))
	for _, q := range b.queues {
		qs = append(qs, q)
	}
	b.mu.Unlock()
	for _, q := range qs {
		q.post(q.sweep)
	}
	b.expireDurables()
}
