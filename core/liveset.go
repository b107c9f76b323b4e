// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import "math/bits"

// liveSet is the journal indexes of the pending messages' enqueue records,
// what compaction asks the projection about: whether it still needs record
// i, and about how many bytes of a segment it still needs. It is a bitmap
// in chunks of liveChunkLen indexes, each chunk with the bytes of its live
// records: about a bit per journal index where a map took an entry of 35
// bytes per pending message. The bytes are the messages' Size, which is
// near the records' (compaction only compares shares of a segment).
type liveSet struct {
	chunks map[uint64]*liveChunk // by index / liveChunkLen
	n      int
}

const liveChunkLen = 4096

type liveChunk struct {
	bits  [liveChunkLen / 64]uint64
	n     int   // live indexes in it
	bytes int64 // their sizes
}

func newLiveSet() *liveSet { return &liveSet{chunks: map[uint64]*liveChunk{}} }

// add marks index live, with size bytes; it reports false if it was.
func (s *liveSet) add(index uint64, size int) bool {
	c := s.chunks[index/liveChunkLen]
	if c == nil {
		c = &liveChunk{}
		s.chunks[index/liveChunkLen] = c
	}
	w, b := index%liveChunkLen/64, uint64(1)<<(index%64)
	if c.bits[w]&b != 0 {
		return false
	}
	c.bits[w] |= b
	c.n++
	c.bytes += int64(size)
	s.n++
	return true
}

// remove unmarks index, which had size bytes; it reports false if it was
// not live.
func (s *liveSet) remove(index uint64, size int) bool {
	c := s.chunks[index/liveChunkLen]
	if c == nil {
		return false
	}
	w, b := index%liveChunkLen/64, uint64(1)<<(index%64)
	if c.bits[w]&b == 0 {
		return false
	}
	c.bits[w] &^= b
	c.n--
	c.bytes -= int64(size)
	s.n--
	if c.n == 0 {
		delete(s.chunks, index/liveChunkLen)
	}
	return true
}

func (s *liveSet) has(index uint64) bool {
	c := s.chunks[index/liveChunkLen]
	return c != nil && c.bits[index%liveChunkLen/64]&(1<<(index%64)) != 0
}

func (s *liveSet) len() int { return s.n }

// count is how many indexes in [first, last] are live, and about how many
// bytes they hold: exact for whole chunks, a chunk's mean size for the
// live indexes of a chunk the range only partly covers.
func (s *liveSet) count(first, last uint64) (n int, size int64) {
	if last < first {
		return 0, 0
	}
	for k := first / liveChunkLen; k <= last/liveChunkLen; k++ {
		c := s.chunks[k]
		if c == nil {
			continue
		}
		lo, hi := max(first, k*liveChunkLen), min(last, k*liveChunkLen+liveChunkLen-1)
		if lo == k*liveChunkLen && hi == k*liveChunkLen+liveChunkLen-1 {
			n, size = n+c.n, size+c.bytes
			continue
		}
		m := 0
		for i := lo; i <= hi; {
			w := i % liveChunkLen / 64
			word := c.bits[w] >> (i % 64)
			span := min(64-i%64, hi-i+1) // bits of this word in range
			if span < 64 {
				word &= 1<<span - 1
			}
			m += bits.OnesCount64(word)
			i += span
		}
		n += m
		size += c.bytes * int64(m) / int64(c.n)
	}
	return n, size
}
