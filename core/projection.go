// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/cairnmq/cairn/journal"
)

// projection is the journal's state at the level of record indexes: for
// each queue, which messages are pending, which journal record holds each
// one's enqueue (its body) and what a queue needs to page it (its priority
// and size), and the queue's dispatch bound. It is what a snapshot stores:
// bodies stay in the journal, so a snapshot is a few bytes per pending
// message, and the records it points at are exactly what compaction must
// keep. A restart puts the pending messages in their queues from the
// projection alone, paged (paging.go): it reads no message body.
//
// The projection is built by applying journal records in order, the same
// way at start-up and in the background maintenance loop, so a snapshot
// taken at index I reflects exactly the records up to I.
type projection struct {
	applied uint64 // last journal index applied
	seq     uint64 // highest message sequence seen
	queues  map[string]*pqueue
	live    *liveSet                   // journal indexes of the pending messages' enqueue records
	dedup   *dedupWindow               // recent DedupHeader ids (per queue), in the snapshot since format 3
	durable map[durableKey]durableSpec // durable subscriptions, in the snapshot since format 4
	names   map[string]string          // interned queue names, for peekEnqueue
}

type pqueue struct {
	pending      map[uint64]pref   // seq -> its enqueue record
	redeliveries map[uint64]uint32 // seq -> times given back, for those given back
	bound        uint64
}

// pref is a pending message in the projection: the journal record of its
// enqueue, and what a restart pages the message by, its Size and priority
// (packed: the projection holds one per pending message) and its expiry
// (in snapshots since format 5; before, meta is 0 until replay reads the
// record).
type pref struct {
	index   uint64
	meta    uint32 // Size<<4 | priority; 0: not known yet
	expires secs
}

func (p pref) size() int32 { return int32(p.meta >> 4) }
func (p pref) prio() uint8 { return uint8(p.meta & 0xf) }
func (p pref) known() bool { return p.meta != 0 }

// packMeta makes a pref's meta (a Size is at least messageOverhead, so never 0).
func packMeta(size int, prio uint8) uint32 {
	return uint32(min(max(size, 1), 1<<28-1))<<4 | uint32(min(prio, 9))
}

// pref is h's message as pending at journal record index.
func (h *enqHead) pref(index uint64) pref {
	return pref{index: index, meta: packMeta(h.size, h.prio), expires: toSecs(h.expires)}
}

func newProjection() *projection {
	return &projection{queues: map[string]*pqueue{}, live: newLiveSet(), dedup: newDedupWindow(DefaultDedupWindow),
		durable: map[durableKey]durableSpec{}, names: map[string]string{}}
}

func (p *projection) queue(name string) *pqueue {
	q := p.queues[name]
	if q == nil {
		q = &pqueue{pending: map[uint64]pref{}}
		p.queues[name] = q
	}
	return q
}

// apply applies one record.
func (p *projection) apply(r journal.Record) error {
	var h *enqHead
	if r.Type == evEnqueue {
		eh, err := peekEnqueue(r.Data, p.names)
		if err != nil {
			return fmt.Errorf("journal record %d: %w", r.Index, err)
		}
		h = &eh
	}
	return p.applyPeeked(r, h)
}

// applyPeeked is apply, with an enqueue record's head already read (h;
// r.Data is then not read).
func (p *projection) applyPeeked(r journal.Record, h *enqHead) error {
	p.applied = r.Index
	switch r.Type {
	case evEnqueue:
		q := p.queue(h.dest.Name)
		if r.Moved != 0 {
			// A compaction copy: the message, if still pending, now lives here.
			old, ok := q.pending[h.seq]
			if !ok || old.index != r.Moved && old.index != r.Index {
				return nil
			}
			p.live.remove(old.index, int(old.size()))
		}
		if r.Moved == 0 && h.dest.Kind == Queue && h.dedupID != "" {
			p.dedup.add(h.dest.Name + "\x00" + h.dedupID)
		}
		pr := h.pref(r.Index)
		q.pending[h.seq] = pr
		p.live.add(r.Index, int(pr.size()))
		p.seq = max(p.seq, h.seq)
	case evAck, evExpired, evPurged:
		dest, seqs, err := decodeAck(r.Data)
		if err != nil {
			return fmt.Errorf("journal record %d: %w", r.Index, err)
		}
		q := p.queue(dest.Name)
		for _, s := range seqs {
			if pr, ok := q.pending[s]; ok {
				p.live.remove(pr.index, int(pr.size()))
				delete(q.pending, s)
				delete(q.redeliveries, s)
			}
		}
	case evRedelivered:
		dest, seqs, err := decodeAck(r.Data)
		if err != nil {
			return fmt.Errorf("journal record %d: %w", r.Index, err)
		}
		q := p.queue(dest.Name)
		for _, s := range seqs {
			if _, ok := q.pending[s]; ok {
				if q.redeliveries == nil {
					q.redeliveries = map[uint64]uint32{}
				}
				q.redeliveries[s]++
			}
		}
	case evDispatched:
		dest, upTo, err := decodeDispatched(r.Data)
		if err != nil {
			return fmt.Errorf("journal record %d: %w", r.Index, err)
		}
		q := p.queue(dest.Name)
		q.bound = max(q.bound, upTo)
		p.seq = max(p.seq, upTo)
	case evDurable, evUndurable:
		client, name, spec, err := decodeDurable(r.Data)
		if err != nil {
			return fmt.Errorf("journal record %d: %w", r.Index, err)
		}
		if r.Type == evDurable {
			p.durable[durableKey{client, name}] = spec
		} else {
			delete(p.durable, durableKey{client, name})
		}
	case evDeleted:
		dest, _, err := decodeDispatched(r.Data)
		if err != nil {
			return fmt.Errorf("journal record %d: %w", r.Index, err)
		}
		if q := p.queues[dest.Name]; q != nil && len(q.pending) == 0 {
			delete(p.queues, dest.Name)
		}
	case journal.TypeClaim:
	default:
		return fmt.Errorf("journal record %d has unknown event type %d", r.Index, r.Type)
	}
	return nil
}

// pendingCount is the number of pending persistent messages.
func (p *projection) pendingCount() int { return p.live.len() }

// encode writes the projection as a snapshot blob.
func (p *projection) encode() []byte {
	e := encoder{b: make([]byte, 0, 32+12*p.live.len())}
	// Format version: 2 adds redelivery counts, 3 the dedup ids, 4 durable
	// subscriptions, 5 each pending message's priority, expiry and size, 6
	// each durable subscription's owner.
	e.uint(6)
	e.uint(p.applied)
	e.uint(p.seq)
	names := make([]string, 0, len(p.queues))
	for n, q := range p.queues {
		if len(q.pending) > 0 || q.bound > 0 {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	e.uint(uint64(len(names)))
	for _, n := range names {
		q := p.queues[n]
		e.str(n)
		e.uint(q.bound)
		seqs := make([]uint64, 0, len(q.pending))
		for s := range q.pending {
			seqs = append(seqs, s)
		}
		slices.Sort(seqs)
		e.uint(uint64(len(seqs)))
		var prev uint64
		for _, s := range seqs {
			pr := q.pending[s]
			e.uint(s - prev)
			e.uint(pr.index)
			e.uint(uint64(q.redeliveries[s]))
			e.uint(uint64(pr.prio()))
			e.uint(uint64(pr.expires))
			e.uint(uint64(pr.size()))
			prev = s
		}
	}
	e.uint(uint64(len(p.dedup.order)))
	p.dedup.each(func(id string) { e.str(id) })
	keys := make([]durableKey, 0, len(p.durable))
	for k := range p.durable {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b durableKey) int { return strings.Compare(a.client+"\x00"+a.name, b.client+"\x00"+b.name) })
	e.uint(uint64(len(keys)))
	for _, k := range keys {
		e.str(k.client)
		e.str(k.name)
		e.str(p.durable[k].topic)
		e.str(p.durable[k].selector)
		e.str(p.durable[k].owner)
	}
	return e.b
}

func decodeProjection(b []byte) (*projection, error) {
	d := decoder{b: b}
	p := newProjection()
	version := d.uint()
	if d.err == nil && (version < 1 || version > 6) {
		return nil, fmt.Errorf("snapshot format %d is not one this broker reads", version)
	}
	p.applied = d.uint()
	p.seq = d.uint()
	nq := d.uint()
	for i := uint64(0); i < nq && d.err == nil; i++ {
		q := p.queue(d.str())
		q.bound = d.uint()
		n := d.uint()
		if d.err == nil && n > uint64(len(d.b)) {
			d.err = errShort
		}
		if d.err == nil && len(q.pending) == 0 {
			// Sized once: grown entry by entry, a million-entry map
			// rehashes its way up for a tenth of a second of start-up.
			// (An entry takes two bytes at least, which bounds n.)
			size := int(min(n, uint64(len(d.b))/2))
			q.pending = make(map[uint64]pref, size)
		}
		var prev uint64
		for j := uint64(0); j < n && d.err == nil; j++ {
			s := prev + d.uint()
			pr := pref{index: d.uint()}
			if version >= 2 {
				if n := uint32(d.uint()); n > 0 {
					if q.redeliveries == nil {
						q.redeliveries = map[uint64]uint32{}
					}
					q.redeliveries[s] = n
				}
			}
			if version >= 5 {
				prio := uint8(min(d.uint(), 9))
				pr.expires = secs(min(d.uint(), math.MaxUint32))
				if size := min(d.uint(), 1<<28); size > 0 {
					pr.meta = packMeta(int(size), prio)
				} // else not known (encoded so): replay reads the record
			}
			q.pending[s] = pr
			if pr.known() { // else replay fills it in, and adds it then
				p.live.add(pr.index, int(pr.size()))
			}
			prev = s
		}
	}
	if version >= 3 {
		n := d.uint()
		if d.err == nil && n > uint64(len(d.b)) {
			d.err = errShort
		}
		for j := uint64(0); j < n && d.err == nil; j++ {
			p.dedup.add(d.str())
		}
	}
	if version >= 4 {
		n := d.uint()
		if d.err == nil && n > uint64(len(d.b)) {
			d.err = errShort
		}
		for j := uint64(0); j < n && d.err == nil; j++ {
			client, name := d.str(), d.str()
			spec := durableSpec{topic: d.str(), selector: d.str()}
			if version >= 6 {
				spec.owner = d.str()
			}
			p.durable[durableKey{client, name}] = spec
		}
	}
	if err := d.check("snapshot"); err != nil {
		return nil, err
	}
	return p, nil
}
