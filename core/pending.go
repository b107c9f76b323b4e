// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"container/heap"
	"math/bits"
)

// pending is the messages of a queue waiting for a consumer: highest
// priority first, and oldest sequence first within a priority. Strictly: a
// priority 5 message always goes before a priority 4 one (ActiveMQ groups
// 0-4 and 5-9 into two buckets, and by default dispatches pages of
// messages in store order).
//
// It keeps one lane per priority. Messages arrive in sequence order, so a
// lane is mostly a FIFO, and push and pop cost O(1) however deep the queue
// (a binary heap over all of it took a fifth of the queue loop's time in
// scenario (b), its compares missing the cache on every level). A message
// that comes back older than the lane's newest (given back by a consumer,
// a NACK, a redelivery delay that ended, a dispatch that could not place
// it) waits in a small heap beside the FIFO; pop takes the older of the
// two heads.
type pending struct {
	lanes *[maxPriority + 1]lane // made by the first push: a queue that never held a message costs a pointer
	used  uint16                 // bit p set: lane p holds something
	n     int
}

const maxPriority = 9

type lane struct {
	fifo []*entry // ascending sequence from head
	head int
	back seqHeap // older than the FIFO's newest when they came
}

func (l *lane) size() int { return len(l.fifo) - l.head + len(l.back) }

func (p *pending) len() int { return p.n }

func lanePriority(e *entry) int { return int(min(e.msg.Priority, maxPriority)) }

// push adds e.
func (p *pending) push(e *entry) {
	if p.lanes == nil {
		p.lanes = new([maxPriority + 1]lane)
	}
	pr := lanePriority(e)
	l := &p.lanes[pr]
	if n := len(l.fifo); n == l.head || l.fifo[n-1].msg.Seq < e.msg.Seq {
		l.fifo = append(l.fifo, e)
	} else {
		heap.Push(&l.back, e)
	}
	p.used |= 1 << pr
	p.n++
}

// top is the priority of the entry pop would return, or -1 if empty.
func (p *pending) top() int { return bits.Len16(p.used) - 1 }

// pop removes and returns the first entry; p must not be empty.
func (p *pending) pop() *entry {
	pr := p.top()
	l := &p.lanes[pr]
	var e *entry
	if l.head < len(l.fifo) && (len(l.back) == 0 || l.fifo[l.head].msg.Seq < l.back[0].msg.Seq) {
		e = l.fifo[l.head]
		l.fifo[l.head] = nil
		l.head++
		switch {
		case l.head == len(l.fifo):
			l.fifo, l.head = l.fifo[:0], 0
		case l.head >= 1024 && 2*l.head >= len(l.fifo):
			// Slide the live half down, so the slice does not grow
			// without bound under steady traffic.
			k := copy(l.fifo, l.fifo[l.head:])
			clear(l.fifo[k:])
			l.fifo, l.head = l.fifo[:k], 0
		}
	} else {
		e = heap.Pop(&l.back).(*entry)
	}
	if l.size() == 0 {
		p.used &^= 1 << pr
	}
	p.n--
	return e
}

// each calls f for every entry, in no particular order.
func (p *pending) each(f func(*entry)) {
	if p.lanes == nil {
		return
	}
	for i := range p.lanes {
		l := &p.lanes[i]
		for _, e := range l.fifo[l.head:] {
			f(e)
		}
		for _, e := range l.back {
			f(e)
		}
	}
}

// filter keeps the entries for which keep is true and drops the others.
func (p *pending) filter(keep func(*entry) bool) {
	p.n, p.used = 0, 0
	if p.lanes == nil {
		return
	}
	for i := range p.lanes {
		l := &p.lanes[i]
		fifo := l.fifo[:0]
		for _, e := range l.fifo[l.head:] {
			if keep(e) {
				fifo = append(fifo, e)
			}
		}
		clear(l.fifo[len(fifo):])
		l.fifo, l.head = fifo, 0
		back := l.back[:0]
		for _, e := range l.back {
			if keep(e) {
				back = append(back, e)
			}
		}
		clear(l.back[len(back):])
		l.back = back
		heap.Init(&l.back)
		if n := l.size(); n > 0 {
			p.n += n
			p.used |= 1 << i
		}
	}
}

// reset drops every entry.
func (p *pending) reset() { p.filter(func(*entry) bool { return false }) }

// seqHeap is entries, oldest sequence first.
type seqHeap []*entry

func (h seqHeap) Len() int           { return len(h) }
func (h seqHeap) Less(i, j int) bool { return h[i].msg.Seq < h[j].msg.Seq }
func (h seqHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *seqHeap) Push(x any)        { *h = append(*h, x.(*entry)) }
func (h *seqHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
