// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cairnmq/cairn/journal"
)

// Paging. A persistent message is in the journal anyway, so a queue need
// not keep it in memory: past the broker's MemoryLimit (or the queue's
// QueueMemoryLimit) a queue keeps, for each persistent message it takes
// in, only a pageRef (its sequence, where its enqueue record is, and what
// dispatch order needs), and reads the message back from the journal when
// it comes near the head. A queue much larger than memory works, at the
// cost of one journal read per paged message. Non-persistent messages are
// never paged (they are nowhere else).
//
// Order is kept: once a queue pages, every persistent message after it is
// paged too, until the paged ones are read back; the queue reads back
// first the paged messages of the highest priority, and as soon as one
// outranks the head of what it holds in memory.

// pageRef is a paged message: 24 bytes. What few paged messages have
// besides (a redelivery count) is in the queue's pageExtra map.
type pageRef struct {
	seq, index uint64 // index: the journal record of its enqueue
	size       int32
	expires    secs
}

// secs is an expiry (Message.Expires) in whole seconds, rounded up (0:
// none): what paging keeps of it, for the expiry sweep, which runs about
// once a second; a message read back has its own, to the millisecond.
type secs uint32

func toSecs(ms int64) secs {
	if ms <= 0 {
		return 0
	}
	return secs(min((ms+999)/1000, math.MaxUint32))
}

// ms is the expiry in Unix milliseconds (0: none).
func (s secs) ms() int64 { return int64(s) * 1000 }

// pageExtra is what an entry carries that a pageRef has no room for.
type pageExtra struct {
	redeliveries uint32
	redelivered  bool
	// due: a message given back before a restart waits its redelivery
	// delay again, from the restart (its due time was not journaled).
	due time.Time
}

// refFIFO is a queue of pageRefs in blocks of refBlock, so that a long one
// neither doubles its array as it grows nor keeps what was read.
type refFIFO struct {
	blocks [][]pageRef
	head   int // read position in blocks[0]
	n      int
}

const refBlock = 4096

func (f *refFIFO) push(r pageRef) {
	if len(f.blocks) == 0 || len(f.blocks[len(f.blocks)-1]) == refBlock {
		f.blocks = append(f.blocks, make([]pageRef, 0, refBlock))
	}
	last := &f.blocks[len(f.blocks)-1]
	*last = append(*last, r)
	f.n++
}

func (f *refFIFO) peek() pageRef { return f.blocks[0][f.head] }

func (f *refFIFO) pop() {
	f.head++
	f.n--
	if f.head == len(f.blocks[0]) {
		f.blocks[0] = nil
		f.blocks = f.blocks[1:]
		f.head = 0
	}
}

// filter keeps, in order, the refs keep returns true for.
func (f *refFIFO) filter(keep func(pageRef) bool) {
	var kept refFIFO
	f.each(func(r pageRef) {
		if keep(r) {
			kept.push(r)
		}
	})
	*f = kept
}

// front returns up to n refs from the oldest (a copy).
func (f *refFIFO) front(n int) []pageRef {
	out := make([]pageRef, 0, min(n, f.n))
	for i, b := range f.blocks {
		from := 0
		if i == 0 {
			from = f.head
		}
		for _, r := range b[from:] {
			if len(out) == n {
				return out
			}
			out = append(out, r)
		}
	}
	return out
}

// each calls fn for every ref, oldest first.
func (f *refFIFO) each(fn func(pageRef)) {
	for i, b := range f.blocks {
		from := 0
		if i == 0 {
			from = f.head
		}
		for _, r := range b[from:] {
			fn(r)
		}
	}
}

// Paging tunables.
const (
	refillLow   = 256 // read back when fewer than this are in memory...
	refillBatch = 512 // ...this many at a time
)

// overBudget reports whether taking size more bytes into q's memory would
// pass a memory limit.
func (q *queue) overBudget(size int) bool {
	if lim := q.b.opts.QueueMemoryLimit; lim > 0 && q.bytes+int64(size) > lim {
		return true
	}
	lim := q.b.opts.MemoryLimit
	return lim > 0 && q.b.memUsed.Load()+int64(size) > lim
}

// readBackFloor is what a queue with nothing waiting in memory may read
// back even while memory is full: enough that its consumers never starve
// behind another queue's, and little enough that a consumer that stopped
// reading (with credit left) cannot take memory past the limit.
const readBackFloor = 1 << 20

// underFloor reports whether q may read back the first i+1 paged messages
// (size bytes) while memory is full: with nothing waiting in memory, up to
// readBackFloor in all, or one message if it holds nothing at all.
func (q *queue) underFloor(i int, size int64) bool {
	if q.pending.len() > 0 {
		return false
	}
	return q.bytes+size <= readBackFloor || i == 0 && q.bytes == 0
}

// mayPage reports whether m goes to the page store rather than memory.
func (q *queue) mayPage(m *Message) bool {
	if !m.Persistent || m.index == 0 {
		return false
	}
	return q.paged > 0 || q.overBudget(m.Size())
}

// page keeps e's message as a reference only.
func (q *queue) page(e *entry) {
	m := e.msg
	q.addPaged(pageRef{seq: m.Seq, index: m.index, expires: toSecs(m.Expires), size: int32(m.Size())}, m.Priority,
		pageExtra{redeliveries: e.redeliveries, redelivered: e.redelivered})
}

// addPaged adds a paged message of priority prio, after those paged before.
func (q *queue) addPaged(r pageRef, prio uint8, x pageExtra) {
	if q.pages == nil {
		q.pages = new([10]refFIFO)
	}
	q.pages[prio].push(r)
	if x != (pageExtra{}) {
		if q.pageExtras == nil {
			q.pageExtras = map[uint64]pageExtra{}
		}
		q.pageExtras[r.seq] = x
	}
	q.paged++
	q.pagedBytes += int64(r.size)
	q.b.storeUsed(int64(r.size))
	if e := r.expires.ms(); e > 0 && (q.pagedExpiry == 0 || e < q.pagedExpiry) {
		q.pagedExpiry = e
		q.mayExpire = true
	}
}

// unpage takes r's accounting off the paged counts.
func (q *queue) unpage(r pageRef) {
	q.paged--
	q.pagedBytes -= int64(r.size)
	q.b.storeUsed(-int64(r.size))
}

// topPaged is the highest priority with paged messages (-1: none).
func (q *queue) topPaged() int {
	if q.paged == 0 {
		return -1
	}
	for p := len(q.pages) - 1; p >= 0; p-- {
		if q.pages[p].n > 0 {
			return p
		}
	}
	return -1
}

// refill starts reading paged messages back into memory, while few are
// in memory or a paged one outranks the head of those in memory: one batch
// at a time, on a goroutine of its own, so that the queue's loop does not
// wait on the journal for them (on JetStream a read is a round trip);
// fetched takes the batch in, on the loop, and asks for the next. (The
// expiry sweep alone reads on the loop, a bounded number of expired
// messages.)
func (q *queue) refill() {
	if q.fetching || q.paged == 0 || time.Now().Before(q.fetchRetry) {
		return
	}
	p := q.topPaged()
	low := q.pending.len() < refillLow
	outranks := q.pending.len() > 0 && p > q.pending.top()
	if !low && !outranks {
		return
	}
	want := q.pages[p].front(refillBatch)
	var size int64
	for i, r := range want {
		size += int64(r.size)
		if q.overBudget(int(size)) && !outranks && !q.underFloor(i, size) {
			want = want[:i] // memory is full: read back more as these go out
			break
		}
	}
	if len(want) == 0 {
		return
	}
	q.fetching = true
	q.b.fetches.Add(1)
	go func() {
		defer q.b.fetches.Done()
		res := q.readBackMany(want)
		q.post(func() { q.fetched(p, want, res) })
	}()
}

// fetchRetryAfter is how long a queue waits before it tries again to read
// back a paged message it could not read.
const fetchRetryAfter = time.Second

// fetched takes in the messages refill read back (res[i] for want[i], of
// priority p), as long as they are still at the head of the page store (a
// purge or an expiry sweep may have taken some meanwhile): each one read,
// or set aside if lost (Stats.Unreadable), up to one that could not be
// read now. Then it reads on if the queue is still short, and dispatches.
func (q *queue) fetched(p int, want []pageRef, res []readResult) {
	q.fetching = false
	all := true
	for i, rr := range res {
		if q.pages == nil || q.pages[p].n == 0 || q.pages[p].peek().seq != want[i].seq {
			all = false
			break
		}
		r := want[i]
		if rr.m == nil {
			if rr.err != nil {
				q.readFailed(r, rr.err)
			}
			if rr.err == nil || !lost(rr.err) {
				q.fetchRetry = time.Now().Add(fetchRetryAfter)
				all = false
				break
			}
			q.pages[p].pop()
			q.setAside(r)
			continue
		}
		q.pages[p].pop()
		q.unpage(r)
		q.account(rr.m, 1)
		q.mayExpire = q.mayExpire || rr.m.Expires > 0
		e, due := q.unpaged(r, rr.m)
		if !due.IsZero() && due.After(time.Now()) {
			q.hold(e, due)
			continue
		}
		q.pending.push(e)
	}
	if all {
		q.refill()
	}
	q.dispatch()
}

// setAside takes a paged message whose record will never read back out of
// the page store. It stays pending in the journal (nothing acknowledges it
// but a purge), so a restart finds it, and logs it, again.
func (q *queue) setAside(r pageRef) {
	q.unpage(r)
	delete(q.pageExtras, r.seq)
	q.aside = append(q.aside, r.seq)
}

// unpaged makes the entry of m, read back for r (due: when it may be
// redelivered, if it was given back before a restart).
func (q *queue) unpaged(r pageRef, m *Message) (e *entry, due time.Time) {
	e = &entry{msg: m}
	if x, ok := q.pageExtras[r.seq]; ok {
		e.redelivered, e.redeliveries, due = x.redelivered, x.redeliveries, x.due
		delete(q.pageExtras, r.seq)
	}
	return e, due
}

// readResult is a paged message read back (m), or why it was not (err);
// neither if it was not tried.
type readResult struct {
	m   *Message
	err error
}

// readBackMany reads the paged messages refs back from the journal, as
// readBack does, in batches where the journal reads several records in few
// requests (journal.BatchReader: a round trip per Read costs more than the
// record). It goes past a record that will never read back (lost), and
// stops at one that could not be read now.
func (q *queue) readBackMany(refs []pageRef) []readResult {
	res := make([]readResult, len(refs))
	br, ok := q.b.log.(journal.BatchReader)
	if !ok || len(refs) < 2 {
		for i, r := range refs {
			m, err := q.b.readBack(q, r)
			res[i] = readResult{m, err}
			if err != nil && !lost(err) {
				break
			}
		}
		return res
	}
	idx := make([]uint64, len(refs))
	for i, r := range refs {
		idx[i] = r.index
	}
	i := 0
	err := br.ReadBatch(idx, func(_ uint64, rec journal.Record, err error) error {
		r := refs[i]
		var m *Message
		if err == nil {
			m, err = enqueueOf(rec, r.seq)
		}
		if err != nil {
			m, err = q.b.readBack(q, r) // compaction may have moved it
		}
		res[i] = readResult{m, err}
		i++
		if err != nil && !lost(err) {
			return errStopBatch
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopBatch) && i < len(refs) {
		res[i].err = err
	}
	return res
}

// lost reports whether err, from reading a paged message back, means that
// its record will never read back: damaged, or not the message's.
func lost(err error) bool {
	return errors.Is(err, journal.ErrCorrupt) || errors.Is(err, errNotTheMessage)
}

// readFailed logs a paged message that could not be read back: lost, it
// is set aside (the caller takes it out of the page store); otherwise it
// stays paged, to be tried again.
func (q *queue) readFailed(r pageRef, err error) {
	switch {
	case q.b.isClosed():
	case lost(err):
		q.b.opts.Logger.Error("paging: a pending message's journal record cannot be read back; the message is set aside, not delivered (it stays pending in the journal)",
			"queue", q.name, "seq", r.seq, "index", r.index, "err", err)
	default:
		q.b.opts.Logger.Error("paging: cannot read a paged message back from the journal now; it stays paged, tried again in a second",
			"queue", q.name, "seq", r.seq, "index", r.index, "err", err)
	}
}

var errStopBatch = errors.New("stop")

// readBack reads a paged message from the journal: at the index it was
// enqueued at, or, if compaction moved it since, where the projection says
// it is now (maintenance updates it before it frees the old place).
func (b *Broker) readBack(q *queue, r pageRef) (*Message, error) {
	m, err := b.readEnqueue(r.index, r.seq)
	if err == nil {
		return m, nil
	}
	b.maintMu.Lock()
	var (
		pr pref
		ok bool
	)
	if pq := b.proj.queues[q.name]; pq != nil {
		pr, ok = pq.pending[r.seq]
	}
	idx := pr.index
	b.maintMu.Unlock()
	if !ok || idx == r.index {
		return nil, err
	}
	return b.readEnqueue(idx, r.seq)
}

var errNotTheMessage = errors.New("record holds another message")

func (b *Broker) readEnqueue(index, seq uint64) (*Message, error) {
	rec, err := b.log.Read(index)
	if err != nil {
		return nil, err
	}
	return enqueueOf(rec, seq)
}

// enqueueOf is the message of seq in enqueue record rec.
func enqueueOf(rec journal.Record, seq uint64) (*Message, error) {
	index := rec.Index
	if rec.Type != evEnqueue {
		return nil, fmt.Errorf("record %d is not an enqueue: %w", index, errNotTheMessage)
	}
	m, err := decodeEnqueue(rec.Data)
	if err != nil {
		return nil, fmt.Errorf("record %d: %w: %w", index, errNotTheMessage, err)
	}
	if m.Seq != seq {
		return nil, fmt.Errorf("record %d holds message %d, not %d: %w", index, m.Seq, seq, errNotTheMessage)
	}
	m.index = rec.Index
	return m, nil
}
