// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cairnmq/cairn/journal"
)

// rebuild is broker state being rebuilt from a snapshot and journal
// records: the projection, which is all a restart needs (pending messages
// go to their queues paged, and are read back from the journal as
// consumers reach them). Start-up and a warm standby (Standby) build it the
// same way.
type rebuild struct {
	p    *projection
	snap uint64 // the snapshot's index; records up to it only fill in fill
	// fill is, for a snapshot older than format 5 (which did not store
	// priorities and sizes), its pending messages in journal order: replay
	// reads their enqueue records for them. A cursor, not a map: with a
	// million messages, map probes were most of the start-up time.
	fill []coveredMsg
	next int    // fill[next] is the first not yet passed
	read uint64 // the last record applied
}

type coveredMsg struct{ index, seq uint64 }

// newRebuild starts from a snapshot (data nil: none).
func newRebuild(snap uint64, data []byte) (*rebuild, error) {
	rb := &rebuild{p: newProjection(), snap: snap}
	if data != nil {
		p, err := decodeProjection(data)
		if err != nil {
			return nil, fmt.Errorf("core: snapshot at %d: %w", snap, err)
		}
		if p.applied != snap {
			return nil, fmt.Errorf("core: snapshot stored at %d says it covers %d", snap, p.applied)
		}
		rb.p = p
		for _, q := range p.queues {
			for seq, pr := range q.pending {
				if !pr.known() {
					rb.fill = append(rb.fill, coveredMsg{index: pr.index, seq: seq})
				}
			}
		}
		slices.SortFunc(rb.fill, func(a, b coveredMsg) int { return cmpSeq(a.index, b.index) })
	}
	return rb, nil
}

// from is where reading the journal must start, for a journal whose first
// record is first: just after the snapshot, or at the beginning if an old
// snapshot's messages need their records read.
func (rb *rebuild) from(first uint64) uint64 {
	if len(rb.fill) > rb.next {
		return first
	}
	return max(first, rb.snap+1)
}

// apply takes the next journal record, in order.
func (rb *rebuild) apply(r journal.Record) error {
	var h *enqHead
	if r.Type == evEnqueue && rb.needs(r.Index) {
		eh, err := peekEnqueue(r.Data, rb.p.names)
		if err != nil {
			return fmt.Errorf("journal record %d: %w", r.Index, err)
		}
		h = &eh
	}
	return rb.applyPeeked(r, h)
}

// needs reports whether the rebuild reads record index, advancing the fill
// cursor to it. Only the reading goroutine of replay, or apply, calls it.
func (rb *rebuild) needs(index uint64) bool {
	if index > rb.snap {
		return true
	}
	for rb.next < len(rb.fill) && rb.fill[rb.next].index < index {
		rb.next++
	}
	return rb.next < len(rb.fill) && rb.fill[rb.next].index == index
}

// applyPeeked is apply, with an enqueue record's head already read (h) if
// the rebuild needs it, r.Data unread then.
func (rb *rebuild) applyPeeked(r journal.Record, h *enqHead) error {
	rb.read = r.Index
	if r.Index > rb.snap {
		return rb.p.applyPeeked(r, h)
	}
	// Covered by the snapshot: only what an old one lacks.
	if h == nil {
		return nil
	}
	if q := rb.p.queues[h.dest.Name]; q != nil {
		if pr, ok := q.pending[h.seq]; ok && pr.index == r.Index {
			pr := h.pref(r.Index)
			q.pending[h.seq] = pr
			rb.p.live.add(r.Index, int(pr.size()))
			return nil
		}
	}
	return fmt.Errorf("journal record %d should hold a message the snapshot at %d names pending, but holds message %d of %s",
		r.Index, rb.snap, h.seq, h.dest.Name)
}

// replayBatch is how many records the reading goroutine hands over at once.
const replayBatch = 256

// peeked is a journal record read ahead: an enqueue record the rebuild
// needs with its head read (Data nil), any other it reads with a copy of
// its Data, and one it does not read with neither.
type peeked struct {
	r    journal.Record
	h    enqHead
	head bool // h is read
}

// replay reads the journal from index from and applies it, in two stages:
// a goroutine reads the records (checksums, framing) and the heads of the
// enqueue records, and the caller applies them in order. The fill cursor
// is the reading goroutine's alone until it is done.
func (rb *rebuild) replay(l journal.Log, from uint64, opts journal.ReplayOptions) (journal.Progress, error) {
	batches := make(chan []peeked, 4)
	stop := make(chan struct{})
	var (
		rp      journal.Progress
		readErr error
	)
	names := map[string]string{} // the reading goroutine's own
	go func() {
		defer close(batches)
		batch := make([]peeked, 0, replayBatch)
		rp, readErr = journal.Replay(l, from, func(r journal.Record) error {
			d := peeked{r: r}
			d.r.Data = nil
			switch {
			case !rb.needs(r.Index):
			case r.Type == evEnqueue:
				h, err := peekEnqueue(r.Data, names)
				if err != nil {
					return fmt.Errorf("journal record %d: %w", r.Index, err)
				}
				d.h, d.head = h, true
			default:
				d.r.Data = bytes.Clone(r.Data)
			}
			batch = append(batch, d)
			if len(batch) == replayBatch {
				select {
				case batches <- batch:
				case <-stop:
					return errReplayStopped
				}
				batch = make([]peeked, 0, replayBatch)
			}
			return nil
		}, opts)
		if len(batch) > 0 && readErr == nil {
			select {
			case batches <- batch:
			case <-stop:
			}
		}
	}()
	var applyErr error
	for batch := range batches {
		for i := range batch {
			d := &batch[i]
			if applyErr != nil {
				continue
			}
			var h *enqHead
			if d.head {
				h = &d.h
			}
			if applyErr = rb.applyPeeked(d.r, h); applyErr != nil {
				close(stop) // the reader stops; what it sent is drained
			}
		}
	}
	if applyErr != nil {
		return rp, applyErr
	}
	return rp, readErr
}

var errReplayStopped = errors.New("core: replay stopped")

// loadRebuild starts a rebuild from the log's newest snapshot, or, if that
// one does not decode and the log keeps older ones, from the newest of
// those that does. With no usable snapshot at all, it starts from nothing
// if the log still holds every record it was ever given (its first index
// is 1: nothing compacted away), and fails otherwise.
func loadRebuild(log journal.Log, logger *slog.Logger) (*rebuild, error) {
	s, ok := log.(journal.Snapshotter)
	if !ok {
		return newRebuild(0, nil)
	}
	idx, data, err := s.LoadSnapshot()
	var ce *journal.CorruptionError
	switch {
	case errors.Is(err, journal.ErrNoSnapshot):
		return newRebuild(0, nil)
	case errors.As(err, &ce):
		return wholeLog(log, logger, fmt.Errorf("core: load snapshot: %w", err))
	case err != nil:
		return nil, fmt.Errorf("core: load snapshot: %w", err)
	}
	rb, err := newRebuild(idx, data)
	if err == nil {
		return rb, nil
	}
	first := err
	k, keeps := log.(journal.SnapshotKeeper)
	for err != nil && keeps {
		logger.Warn("core: the snapshot does not decode; trying the one before it", "snapshot", idx, "err", err)
		idx, data, err = k.LoadSnapshotBefore(idx)
		switch {
		case errors.Is(err, journal.ErrNoSnapshot):
			keeps = false
		case errors.As(err, &ce):
			return wholeLog(log, logger, fmt.Errorf("%w; then: %w", first, err))
		case err != nil:
			return nil, fmt.Errorf("core: load snapshot: %w", err)
		default:
			rb, err = newRebuild(idx, data)
		}
	}
	if err != nil {
		return wholeLog(log, logger, first)
	}
	return rb, nil
}

// wholeLog starts a rebuild from nothing, replaying the whole log, when no
// snapshot is usable (why: err) and the log still starts at its first
// record; otherwise it returns err.
func wholeLog(log journal.Log, logger *slog.Logger, err error) (*rebuild, error) {
	if log.FirstIndex() > 1 {
		return nil, err
	}
	logger.Warn("core: no snapshot is usable, but the journal still holds every record: replaying all of it", "err", err)
	return newRebuild(0, nil)
}

// replay rebuilds the broker's state: the newest snapshot (a projection:
// which messages are pending, and where their bodies are in the journal),
// then the journal's records after it. No message body is read: the
// pending messages go to their queues paged, and the queues read them back
// as consumers reach them, so a start-up takes the time of the records
// since the snapshot, not of the backlog. Messages a queue may have
// delivered before the crash (sequence at or below its journaled dispatch
// bound) come back marked redelivered. A warm standby's state
// (Options.Standby) replaces the snapshot and all it has read.
func (b *Broker) replay() error {
	start := time.Now()
	first, last := b.log.FirstIndex(), b.log.LastIndex()
	var rb *rebuild
	from := uint64(0)
	if st := b.opts.Standby; st != nil {
		rb = st.take()
		switch {
		case rb == nil:
		case rb.read > last || rb.read+1 < first && rb.read != 0:
			b.opts.Logger.Warn("core: the warm standby's state does not fit the journal; replaying it all",
				"standby_read", rb.read, "journal_first", first, "journal_last", last)
			rb = nil
		case rb.read == 0:
			from = rb.from(first)
		default:
			from = rb.read + 1
			b.recovery.Warm = true
		}
	}
	if rb == nil {
		var err error
		if rb, err = loadRebuild(b.log, b.opts.Logger); err != nil {
			return err
		}
		from = rb.from(first)
	}
	if rb.snap > last {
		return fmt.Errorf("core: the snapshot covers the journal up to %d, but the journal ends at %d: records it relied on are gone (was the journal repaired?)", rb.snap, last)
	}
	if rb.snap+1 < first && !b.recovery.Warm {
		return fmt.Errorf("core: the journal starts at %d, but the snapshot covers only up to %d: records %d-%d are missing",
			first, rb.snap, rb.snap+1, first-1)
	}
	var err error
	var rp journal.Progress
	if from <= last {
		rp, err = rb.replay(b.log, from, journal.ReplayOptions{Progress: b.opts.Progress, Every: time.Second})
	}
	if err != nil {
		return fmt.Errorf("core: replay: %w", err)
	}
	p := rb.p
	if p.applied < last {
		p.applied = last
	}
	b.seq.Store(p.seq)
	if err := b.install(rb, first); err != nil {
		return err
	}
	b.proj = p
	b.dd = &dedup{stored: newDedupWindow(DefaultDedupWindow), inflight: map[string]chan struct{}{}}
	p.dedup.each(b.dd.stored.add)
	b.durables, b.byTopic, b.wildDurables = map[durableKey]*durable{}, map[string][]*durable{}, map[string]bool{}
	for k, spec := range p.durable {
		d, err := newDurable(k, spec)
		if err != nil {
			return fmt.Errorf("core: durable subscription %s/%s: selector %q: %w", k.client, k.name, spec.selector, err)
		}
		d.offline = time.Now()
		b.addDurableLocked(d)
	}
	b.recovery.Snapshot = rb.snap
	b.recovery.Records = rp.Records
	b.recovery.Took = time.Since(start)
	return nil
}

// install puts the rebuilt pending messages in their queues, paged.
func (b *Broker) install(rb *rebuild, first uint64) error {
	p := rb.p
	type item struct {
		seq uint64
		pr  pref
	}
	var list []item
	for name, pq := range p.queues {
		if len(pq.pending) == 0 && pq.bound == 0 {
			continue
		}
		list = list[:0]
		for seq, pr := range pq.pending {
			if !pr.known() {
				return &journal.CorruptionError{Path: "journal", Index: pr.index,
					Reason: fmt.Sprintf("message %d of queue %s is pending, but its enqueue record %d is not in the journal", seq, name, pr.index)}
			}
			list = append(list, item{seq, pr})
		}
		// In sequence order: pageRef keeps one list per priority.
		slices.SortFunc(list, func(x, y item) int { return cmpSeq(x.seq, y.seq) })
		q := b.queue(name)
		q.bound = pq.bound
		q.mayExpire = true // the first sweep finds out
		now := time.Now()
		for _, it := range list {
			if it.pr.index < first {
				return &journal.CorruptionError{Path: "journal", Index: it.pr.index,
					Reason: fmt.Sprintf("message %d of queue %s is pending, but its enqueue record %d is before the journal's first, %d", it.seq, name, it.pr.index, first)}
			}
			n := pq.redeliveries[it.seq]
			x := pageExtra{redeliveries: n, redelivered: it.seq <= pq.bound || n > 0}
			if d := q.policy.delay(n); d > 0 {
				x.due = now.Add(d)
			}
			q.addPaged(pageRef{seq: it.seq, index: it.pr.index, expires: it.pr.expires, size: it.pr.size()}, it.pr.prio(), x)
		}
		if len(list) > 0 {
			b.recovery.Queues++
			b.recovery.Messages += len(list)
		}
	}
	return nil
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
