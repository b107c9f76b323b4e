// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairnmq/cairn/journal"
)

// purgeChunk is the most sequences one purge record holds.
const purgeChunk = 100_000

// ErrInUse says a queue cannot be deleted while consumers are attached.
var ErrInUse = errors.New("core: queue has consumers")

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
