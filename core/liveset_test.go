// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"math/rand/v2"
	"testing"
)

// TestLiveSet: random adds and removes against a map, with counts over
// random ranges: exact in number, and in bytes when every record has the
// same size (partly covered chunks are estimated by their mean).
func TestLiveSet(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	s, model := newLiveSet(), map[uint64]int{}
	const span = 5 * liveChunkLen
	for range 200000 {
		i := uint64(r.IntN(span)) + 1
		if r.IntN(3) > 0 {
			_, had := model[i]
			if s.add(i, 100) == had {
				t.Fatalf("add(%d) said new=%v, model had it: %v", i, !had, had)
			}
			model[i] = 100
		} else {
			_, had := model[i]
			if s.remove(i, 100) != had {
				t.Fatalf("remove(%d) said %v, model had it: %v", i, !had, had)
			}
			delete(model, i)
		}
		if s.len() != len(model) {
			t.Fatalf("len %d, model %d", s.len(), len(model))
		}
	}
	for i := uint64(0); i <= span+1; i++ {
		if _, ok := model[i]; ok != s.has(i) {
			t.Fatalf("has(%d) = %v, model %v", i, s.has(i), ok)
		}
	}
	for range 2000 {
		a, b := uint64(r.IntN(span+2)), uint64(r.IntN(span+2))
		if a > b {
			a, b = b, a
		}
		want := 0
		for i := a; i <= b; i++ {
			if _, ok := model[i]; ok {
				want++
			}
		}
		n, size := s.count(a, b)
		if n != want || size != int64(100*want) {
			t.Fatalf("count(%d, %d) = %d, %d bytes; want %d, %d", a, b, n, size, want, 100*want)
		}
	}
	// Empty chunks go.
	for i := range model {
		s.remove(i, 100)
	}
	if s.len() != 0 || len(s.chunks) != 0 {
		t.Fatalf("after removing everything: len %d, %d chunks", s.len(), len(s.chunks))
	}
}
