// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"
)

// pending against a sorted list, under random pushes (mostly in sequence
// order, some given back out of order), pops and filters.
func TestPendingOrder(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 1))
		var p pending
		var model []*entry
		var seq uint64 = 1000
		// The model is kept sorted: priority (over 9 counts as 9) down,
		// then sequence up.
		cmp := func(a, b *entry) int {
			pa, pb := min(a.msg.Priority, maxPriority), min(b.msg.Priority, maxPriority)
			if pa != pb {
				return int(pb) - int(pa)
			}
			return int(a.msg.Seq) - int(b.msg.Seq)
		}
		insert := func(e *entry) {
			i, _ := slices.BinarySearchFunc(model, e, cmp)
			model = slices.Insert(model, i, e)
		}
		var out []*entry // popped, some pushed back later
		for step := range 20000 {
			switch k := r.IntN(100); {
			case k < 45:
				seq++
				e := &entry{msg: &Message{Seq: seq, Priority: uint8(r.IntN(3) * 4)}} // 0, 4, 8
				if r.IntN(50) == 0 {
					e.msg.Priority = uint8(r.IntN(12)) // over 9 goes to the top lane
				}
				p.push(e)
				insert(e)
			case k < 55 && len(out) > 0:
				i := r.IntN(len(out))
				e := out[i]
				out = slices.Delete(out, i, i+1)
				p.push(e)
				insert(e)
			case k < 99 && len(model) > 0:
				want := model[0]
				model = model[1:]
				if got := p.pop(); got != want {
					t.Fatalf("seed %d step %d: pop gave seq %d prio %d, want seq %d prio %d", seed, step, got.msg.Seq, got.msg.Priority, want.msg.Seq, want.msg.Priority)
				}
				out = append(out, want)
			case k == 99:
				keep := func(e *entry) bool { return e.msg.Seq%7 != 0 }
				p.filter(keep)
				model = slices.DeleteFunc(model, func(e *entry) bool { return !keep(e) })
			}
			if p.len() != len(model) {
				t.Fatalf("seed %d step %d: len %d, want %d", seed, step, p.len(), len(model))
			}
			if (p.top() >= 0) != (len(model) > 0) {
				t.Fatalf("seed %d step %d: top %d with %d entries", seed, step, p.top(), len(model))
			}
		}
		n := 0
		p.each(func(*entry) { n++ })
		if n != len(model) {
			t.Fatalf("seed %d: each saw %d, want %d", seed, n, len(model))
		}
		p.reset()
		if p.len() != 0 || p.top() != -1 {
			t.Fatalf("seed %d: after reset len %d top %d", seed, p.len(), p.top())
		}
	}
}

// A long FIFO run keeps the lane's slice bounded.
func TestPendingFIFOStaysBounded(t *testing.T) {
	var p pending
	for i := range uint64(100000) {
		p.push(&entry{msg: &Message{Seq: i, Priority: 4}})
		if i >= 10 {
			p.pop()
		}
	}
	if c := cap(p.lanes[4].fifo); c > 4096 {
		t.Fatalf("a lane holding 10 entries has a slice of %d", c)
	}
}

// A queue that never held a message (10,000 idle subscribers on queues of
// their own, in scenario (d)) keeps pending small.
func TestPendingEmptyIsSmall(t *testing.T) {
	if n := unsafe.Sizeof(pending{}); n > 24 {
		t.Fatalf("an empty pending takes %d bytes", n)
	}
	var p pending
	p.each(func(*entry) { t.Fatal("each on an empty pending") })
	p.filter(func(*entry) bool { return true })
	p.reset()
	if p.len() != 0 || p.top() != -1 || p.lanes != nil {
		t.Fatalf("empty pending: len %d top %d lanes made %t", p.len(), p.top(), p.lanes != nil)
	}
}
