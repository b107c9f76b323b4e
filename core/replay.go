// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cairnmq/cairn/journal"
)

// rebuild is broker state being rebuilt from a snapshot and journal
// records: the projection and the bodies of its pending messages. Start-up
// and a warm standby (Standby) build it the same way.
type rebuild struct {
	p    *projection
	snap uint64 // the snapshot's index; records up to it only supply bodies
	// covered is the snapshot's pending messages in journal order; replay
	// fills in their bodies as it passes them (a cursor, not a map: with a
	// million messages, map probes were most of the start-up time).
	covered []coveredMsg
	next    int                 // covered[next] is the first not yet passed
	bodies  map[uint64]*Message // messages enqueued after the snapshot, by seq
	read    uint64              // the last record applied
	// memLimit (0: none) bounds the bodies kept; past it, messages are
	// kept as stubs, to be paged (paging.go).
	memLimit, mem int64
}

// keep counts m against the memory limit, making it a stub past it.
func (rb *rebuild) keep(m *Message, index uint64) *Message {
	m.index = index
	if rb.memLimit > 0 && rb.mem+int64(m.Size()) > rb.memLimit {
		m.stubSize = m.Size()
		m.stub, m.Body, m.Header = true, nil, nil
		return m
	}
	rb.mem += int64(m.Size())
	return m
}

type coveredMsg struct {
	index, seq uint64
	msg        *Message
}

// newRebuild starts from a snapshot (data nil: none).
func newRebuild(snap uint64, data []byte, memLimit int64) (*rebuild, error) {
	rb := &rebuild{p: newProjection(), snap: snap, bodies: map[uint64]*Message{}, memLimit: memLimit}
	if data != nil {
		p, err := decodeProjection(data)
		if err != nil {
			return nil, fmt.Errorf("core: snapshot at %d: %w", snap, err)
		}
		if p.applied != snap {
			return nil, fmt.Errorf("core: snapshot stored at %d says it covers %d", snap, p.applied)
		}
		rb.p = p
		rb.covered = make([]coveredMsg, 0, len(p.live))
		for idx, seq := range p.live {
			rb.covered = append(rb.covered, coveredMsg{index: idx, seq: seq})
		}
		slices.SortFunc(rb.covered, func(a, b coveredMsg) int { return cmpSeq(a.index, b.index) })
	}
	return rb, nil
}

// from is where reading the journal must start, for a journal whose first
// record is first: at the beginning if the snapshot names pending messages
// (their bodies are in the journal), else just after the snapshot.
func (rb *rebuild) from(first uint64) uint64 {
	if rb.p.pendingCount() == 0 {
		return max(first, rb.snap+1)
	}
	return first
}

// apply takes the next journal record, in order.
func (rb *rebuild) apply(r journal.Record) error { return rb.applyDecoded(r, nil) }

// applyDecoded is apply, with r's message already decoded when r is an
// enqueue record and m is not nil.
func (rb *rebuild) applyDecoded(r journal.Record, m *Message) error {
	rb.read = r.Index
	if r.Index <= rb.snap {
		// Covered by the snapshot: only the bodies it points at.
		for rb.next < len(rb.covered) && rb.covered[rb.next].index < r.Index {
			rb.next++
		}
		if rb.next < len(rb.covered) && rb.covered[rb.next].index == r.Index && r.Type == evEnqueue {
			c := &rb.covered[rb.next]
			var err error
			if m == nil {
				m, err = decodeEnqueue(r.Data)
			}
			if err != nil || m.Seq != c.seq {
				return fmt.Errorf("journal record %d should hold message %d: %v", r.Index, c.seq, err)
			}
			c.msg = rb.keep(m, r.Index)
		}
		return nil
	}
	m, err := rb.p.applyDecoded(r, m)
	if err != nil {
		return err
	}
	if m != nil {
		if old := rb.bodies[m.Seq]; old != nil && !old.stub {
			rb.mem -= int64(old.Size()) // a compaction copy replaces it
		}
		rb.bodies[m.Seq] = rb.keep(m, r.Index)
	}
	if r.Type == evAck || r.Type == evExpired || r.Type == evPurged {
		_, seqs, _ := decodeAck(r.Data)
		for _, s := range seqs {
			if m := rb.bodies[s]; m != nil && !m.stub {
				rb.mem -= int64(m.Size()) // gone: its room is free again
			}
			delete(rb.bodies, s)
		}
	}
	return nil
}

// replayBatch is how many records the reading goroutine hands over at once.
const replayBatch = 256

// decoded is a journal record read ahead, with its message decoded if it
// is an enqueue record the rebuild needs (Data is then nil), or a copy of
// its Data otherwise (nil where the rebuild does not read it).
type decoded struct {
	r journal.Record
	m *Message
}

// replay reads the journal from index from and applies it, in two stages:
// a goroutine reads the records and decodes the enqueue records the
// rebuild needs (decoding and copying the bodies is about a third of a
// start-up), and the caller applies them in order. rb.covered is only read
// by the reading goroutine (its index and seq fields), and written only by
// the caller (msg).
func (rb *rebuild) replay(l journal.Log, from uint64, opts journal.ReplayOptions) (journal.Progress, error) {
	batches := make(chan []decoded, 4)
	stop := make(chan struct{})
	var (
		rp      journal.Progress
		readErr error
	)
	go func() {
		defer close(batches)
		batch := make([]decoded, 0, replayBatch)
		next := 0 // cursor over rb.covered
		rp, readErr = journal.Replay(l, from, func(r journal.Record) error {
			d := decoded{r: r}
			d.r.Data = nil
			need := true // whether applyDecoded reads this record
			if r.Index <= rb.snap {
				for next < len(rb.covered) && rb.covered[next].index < r.Index {
					next++
				}
				need = next < len(rb.covered) && rb.covered[next].index == r.Index && r.Type == evEnqueue
			}
			if need && r.Type == evEnqueue {
				if m, err := decodeEnqueue(r.Data); err == nil {
					d.m = m
				}
			}
			if need && d.m == nil {
				// applyDecoded reads Data (and decodes an enqueue that did
				// not decode here again, for its error).
				d.r.Data = bytes.Clone(r.Data)
			}
			batch = append(batch, d)
			if len(batch) == replayBatch {
				select {
				case batches <- batch:
				case <-stop:
					return errReplayStopped
				}
				batch = make([]decoded, 0, replayBatch)
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
		for _, d := range batch {
			if applyErr == nil {
				if applyErr = rb.applyDecoded(d.r, d.m); applyErr != nil {
					close(stop) // the reader stops; what it sent is drained
				}
			}
		}
	}
	if applyErr != nil {
		return rp, applyErr
	}
	return rp, readErr
}

var errReplayStopped = errors.New("core: replay stopped")

// loadRebuild starts a rebuild from the log's newest snapshot.
func loadRebuild(log journal.Log, memLimit int64) (*rebuild, error) {
	s, ok := log.(journal.Snapshotter)
	if !ok {
		return newRebuild(0, nil, memLimit)
	}
	idx, data, err := s.LoadSnapshot()
	switch {
	case errors.Is(err, journal.ErrNoSnapshot):
		return newRebuild(0, nil, memLimit)
	case err != nil:
		return nil, fmt.Errorf("core: load snapshot: %w", err)
	}
	return newRebuild(idx, data, memLimit)
}

// replay rebuilds the broker's state: the newest snapshot (a projection:
// which messages are pending, and where their bodies are in the journal),
// then one pass over the journal that picks up the bodies of the pending
// messages the snapshot names and applies every record after it. Messages a
// queue may have delivered before the crash (sequence at or below its
// journaled dispatch bound) come back marked redelivered. A warm standby's
// state (Options.Standby) replaces the snapshot and all it has read.
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
		if rb, err = loadRebuild(b.log, b.opts.MemoryLimit); err != nil {
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
	if err := b.install(rb); err != nil {
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

// install puts the rebuilt pending messages in their queues, each in
// sequence order.
func (b *Broker) install(rb *rebuild) error {
	p := rb.p
	type item struct {
		seq  uint64
		prio uint8
		m    *Message
	}
	lists := map[string]*[]item{}
	var (
		lastName string
		lastQ    *pqueue
		lastList *[]item
	)
	add := func(m *Message, index uint64) {
		if lastQ == nil || m.Destination.Name != lastName {
			// Messages come in runs of one queue: look it up per run.
			lastName, lastQ = m.Destination.Name, p.queues[m.Destination.Name]
			if lastQ == nil {
				return
			}
			if lastList = lists[lastName]; lastList == nil {
				lastList = &[]item{}
				lists[lastName] = lastList
			}
		}
		if at, ok := lastQ.pending[m.Seq]; !ok || at != index && index != 0 {
			return // acked since, or moved by compaction (its copy brings it)
		}
		*lastList = append(*lastList, item{m.Seq, m.Priority, m})
	}
	for _, c := range rb.covered {
		if c.msg != nil {
			add(c.msg, c.index)
		}
	}
	for _, m := range rb.bodies {
		add(m, 0)
	}
	for name, pq := range p.queues {
		if len(pq.pending) == 0 && pq.bound == 0 {
			continue
		}
		var list []item
		if l := lists[name]; l != nil {
			list = *l
		}
		if len(list) != len(pq.pending) {
			found := make(map[uint64]bool, len(list))
			for _, it := range list {
				found[it.seq] = true
			}
			for seq, idx := range pq.pending {
				if !found[seq] {
					return &journal.CorruptionError{Path: "journal", Index: idx,
						Reason: fmt.Sprintf("message %d of queue %s is pending, but its enqueue record %d is not in the journal", seq, name, idx)}
				}
			}
			return fmt.Errorf("core: queue %s: %d pending messages rebuilt for %d in the projection", name, len(list), len(pq.pending))
		}
		// Sort on keys held in the slice: chasing a million pointers to
		// compare them costs more than the rest of install. Dispatch order
		// (priority, then sequence) sorted is already a heap.
		slices.SortFunc(list, func(x, y item) int {
			if x.prio != y.prio {
				return int(y.prio) - int(x.prio)
			}
			return cmpSeq(x.seq, y.seq)
		})
		q := b.queue(name)
		q.bound = pq.bound
		q.mayExpire = true // the first sweep finds out
		now := time.Now()
		var paging [10]bool // per priority: from the first stub on, everything is paged
		for _, it := range list {
			n := pq.redeliveries[it.seq]
			e := &entry{msg: it.m, redelivered: it.seq <= pq.bound || n > 0, redeliveries: n}
			if p := it.m.Priority; it.m.stub || paging[p] {
				paging[p] = true
				q.page(e)
				continue
			}
			q.account(e.msg, 1)
			// A message given back before the restart waits its redelivery
			// delay again, from now: its due time was not journaled.
			if d := q.policy.delay(e.redeliveries); d > 0 {
				q.hold(e, now.Add(d))
				continue
			}
			q.pending.push(e)
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
