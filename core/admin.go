// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cairnmq/cairn/journal"
)

// purgeChunk is the most sequences one purge record holds.
const purgeChunk = 100_000

// ErrInUse says a queue cannot be deleted while consumers are attached.
var ErrInUse = errors.New("core: queue has consumers")

// ErrNoQueue says there is no such queue; ErrNotAQueue that a name is not
// one messages can be moved to (a wildcard, a private name).
var (
	ErrNoQueue   = errors.New("core: no such queue")
	ErrNotAQueue = errors.New("core: not a queue messages can be moved to")
)

// Purge removes every message queue name holds: waiting, delayed,
// delivered but unacknowledged (their acknowledgements then do nothing),
// and set aside because their records do not read back (paging.go). It
// is journaled before it takes effect, so no restart brings them back. It
// returns how many were removed.
func (b *Broker) Purge(ctx context.Context, name string) (int, error) {
	return b.purge(ctx, name, evPurged)
}

// DeleteQueue purges queue name and removes it. It is refused with
// ErrInUse while consumers are attached.
func (b *Broker) DeleteQueue(ctx context.Context, name string) error {
	_, err := b.purge(ctx, name, evDeleted)
	return err
}

func (b *Broker) purge(ctx context.Context, name string, ev journal.RecordType) (int, error) {
	b.mu.Lock()
	q := b.queues[name]
	b.mu.Unlock()
	if q == nil {
		return 0, fmt.Errorf("core: no queue %q", name)
	}
	var (
		n   int
		err error
	)
	q.do(func() {
		if ev == evDeleted && len(q.consumers) > 0 {
			err = fmt.Errorf("%w: %s has %d", ErrInUse, name, len(q.consumers))
			return
		}
		// Exactly the persistent messages it holds, in records of at most
		// purgeChunk, and for a delete the removal last.
		var seqs []uint64
		held := func(e *entry) {
			if e.msg.Persistent {
				seqs = append(seqs, e.msg.Seq)
			}
		}
		q.pending.each(held)
		for _, e := range q.delayed {
			held(e)
		}
		for _, f := range q.inflight {
			held(f.e)
		}
		if q.pages != nil {
			for i := range q.pages {
				q.pages[i].each(func(r pageRef) { seqs = append(seqs, r.seq) })
			}
		}
		seqs = append(seqs, q.aside...)
		var recs []journal.Record
		for len(seqs) > 0 {
			k := min(len(seqs), purgeChunk)
			recs = append(recs, journal.Record{Type: evPurged, Data: encodeAck(q.dest, seqs[:k])})
			seqs = seqs[k:]
		}
		if ev == evDeleted {
			recs = append(recs, journal.Record{Type: evDeleted, Data: encodeDispatched(q.dest, 0)})
		}
		// A purge need not be atomic: a failure part way returns an error
		// (the journal then fails until reopened, and what it journaled
		// is gone after the restart, as the caller was not told otherwise),
		// so it takes as many appends as the journal's batch limit needs.
		if len(recs) > 0 {
			if _, err = journal.AppendInBatches(ctx, b.log, recs, func(uint64, int) {}); err != nil {
				err = journalError(err)
				return
			}
		}
		n = q.pending.len() + len(q.delayed) + len(q.inflight) + q.paged + len(q.aside)
		b.storeUsed(-q.pagedBytes)
		q.pages, q.paged, q.pagedBytes, q.pageExtras, q.pagedExpiry, q.aside = nil, 0, 0, nil, 0, nil
		q.pending.each(func(e *entry) { q.account(e.msg, -1) })
		for _, e := range q.delayed {
			q.account(e.msg, -1)
		}
		for seq, f := range q.inflight {
			q.account(f.e.msg, -1)
			f.sub.credit++ // its ack, when it comes, finds nothing
			delete(q.inflight, seq)
		}
		q.pending.reset()
		clear(q.delayed)
		q.delayed = q.delayed[:0]
		clear(q.groups)
		if ev == evDeleted {
			q.deleted.Store(true)
		}
	})
	if err != nil || ev != evDeleted {
		return n, err
	}
	b.mu.Lock()
	if b.queues[name] == q {
		delete(b.queues, name)
	}
	b.mu.Unlock()
	q.stop()
	return n, nil
}

// MoveMessages moves the messages of queue from whose sequences are in
// seqs (every one, if seqs is nil) to queue to, or with keep copies them
// there, and returns how many it moved. Only messages waiting in memory
// move: those in flight, waiting out a redelivery delay, or paged stay
// (skipped counts those of seqs that did not move). Each message's copy is
// enqueued there and, unless keep, the original acknowledged here, in one
// journal append: a crash leaves it in one place or the other, never
// neither. The copy is a new message (a new message-id) with the
// original's headers, body, priority, persistence and expiry.
func (b *Broker) MoveMessages(ctx context.Context, from, to string, seqs []uint64, keep bool) (moved, skipped int, err error) {
	if to == "" || IsWildcard(to) || strings.HasPrefix(to, "$") {
		return 0, 0, fmt.Errorf("%w: %q", ErrNotAQueue, to)
	}
	return b.relocate(ctx, from, seqs, keep, func(m *Message) (Destination, []string, bool) {
		return Destination{Queue, to}, slices.Clone(m.Header), true
	})
}

// RetryDeadLetters sends the dead letters of queue dlq whose sequences are
// in seqs (every one, if nil) back to the queues they came from (their
// original-destination header), without the headers the move to the
// dead-letter queue added, as MoveMessages moves them. A dead letter from
// a topic's durable subscription or without that header stays (skipped).
func (b *Broker) RetryDeadLetters(ctx context.Context, dlq string, seqs []uint64) (moved, skipped int, err error) {
	return b.relocate(ctx, dlq, seqs, false, func(m *Message) (Destination, []string, bool) {
		var h []string
		var orig string
		for i := 0; i+1 < len(m.Header); i += 2 {
			switch m.Header[i] {
			case HeaderOriginalDestination:
				orig = m.Header[i+1]
			case HeaderDLQCause, HeaderOriginalMessageID, HeaderRedeliveries:
			default:
				h = append(h, m.Header[i], m.Header[i+1])
			}
		}
		d, err := ParseDestination(orig)
		if err != nil || d.Kind != Queue || private(d.Name) {
			return Destination{}, nil, false
		}
		return d, h, true
	})
}

// relocate carries out MoveMessages and RetryDeadLetters: target names
// where a message goes, with which headers (false: it stays).
func (b *Broker) relocate(ctx context.Context, from string, seqs []uint64, keep bool, target func(*Message) (Destination, []string, bool)) (moved, skipped int, err error) {
	b.mu.Lock()
	q := b.queues[from]
	b.mu.Unlock()
	if q == nil {
		return 0, len(seqs), fmt.Errorf("%w: %s", ErrNoQueue, from)
	}
	var want map[uint64]bool
	if seqs != nil {
		want = make(map[uint64]bool, len(seqs))
		for _, s := range seqs {
			want[s] = true
		}
	}
	type move struct {
		orig, copy *Message
	}
	lim := journal.LimitOf(b.log)
	q.do(func() {
		var moves []move
		q.pending.each(func(e *entry) {
			if want != nil && !want[e.msg.Seq] {
				return
			}
			d, h, ok := target(e.msg)
			if !ok || d == q.dest {
				return
			}
			m := e.msg
			moves = append(moves, move{m, &Message{Destination: d, Persistent: m.Persistent, Priority: m.Priority, Expires: m.Expires, Header: h, Body: m.Body}})
		})
		// Journal them a batch at a time, each message's copy and ack in
		// the same append.
		done := map[uint64]bool{}
		for len(moves) > 0 && err == nil {
			var recs []journal.Record
			n, bytes := 0, 0
			for n < len(moves) {
				mv := moves[n]
				var add []journal.Record
				if mv.orig.Persistent {
					b.stamp(mv.copy)
					add = append(add, journal.Record{Type: evEnqueue, Data: encodeEnqueue(mv.copy)})
					if !keep {
						add = append(add, journal.Record{Type: evAck, Data: encodeAck(q.dest, []uint64{mv.orig.Seq})})
					}
				}
				size := 0
				for i := range add {
					size += journal.FrameSize(&add[i])
				}
				if n > 0 && lim.CheckSize(len(recs)+len(add), bytes+size) != nil {
					break
				}
				recs, bytes = append(recs, add...), bytes+size
				n++
			}
			if len(recs) > 0 {
				if _, _, err = b.log.Append(ctx, recs); err != nil {
					err = journalError(err)
					break
				}
			}
			for _, mv := range moves[:n] {
				if !mv.orig.Persistent {
					b.stamp(mv.copy)
				}
				if !keep {
					done[mv.orig.Seq] = true
				}
				b.queue(mv.copy.Destination.Name).enqueue(mv.copy)
				moved++
			}
			moves = moves[n:]
		}
		if len(done) > 0 {
			q.pending.filter(func(e *entry) bool {
				if done[e.msg.Seq] {
					q.account(e.msg, -1)
					q.dequeued++
					return false
				}
				return true
			})
		}
	})
	if seqs != nil {
		skipped = len(seqs) - moved
	}
	if moved > 0 {
		b.opts.Logger.Info("messages moved", "from", from, "moved", moved, "copied", keep)
	}
	return moved, skipped, err
}
