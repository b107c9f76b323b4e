// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package memlog is an in-memory journal.Log FOR TESTS ONLY. It keeps
// nothing across a process exit and must never back a broker that confirms
// messages to clients. It exists so that core and journal tests run without a
// disk, and as the reference model the conformance suite checks the real
// backends against.
package memlog

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/cairnmq/cairn/journal"
)

// Store is the state that survives Close, so that a test can reopen it as if
// it were a directory on disk.
type Store struct {
	mu           sync.Mutex
	segmentBytes int64
	first        uint64   // index of recs[0]
	recs         []record // first .. first+len-1
	segStarts    []uint64 // first index of each segment; segments only grow at the tail
	segBytes     []int64
	snapIndex    uint64
	snap         []byte
	open         bool
	limit        journal.BatchLimit
}

type record struct {
	typ   journal.RecordType
	data  []byte
	moved uint64
}

// NewStore returns an empty store whose synthetic segments hold about
// segmentBytes of framed records each (zero means 64 KiB).
func NewStore(segmentBytes int64) *Store {
	if segmentBytes <= 0 {
		segmentBytes = 64 << 10
	}
	return &Store{segmentBytes: segmentBytes, first: 1, segStarts: []uint64{1}, segBytes: []int64{0}}
}

// LimitBatches makes the store's logs take at most lim in one Append, as a
// backend with a batch limit does (journal.BatchLimiter), so that tests can
// check that callers honour one.
func (s *Store) LimitBatches(lim journal.BatchLimit) {
	s.mu.Lock()
	s.limit = lim
	s.mu.Unlock()
}

// Log is an open handle on a Store.
type Log struct {
	s      *Store
	closed bool // guarded by s.mu
}

var (
	_ journal.Log          = (*Log)(nil)
	_ journal.Scanner      = (*Log)(nil)
	_ journal.Snapshotter  = (*Log)(nil)
	_ journal.Segmenter    = (*Log)(nil)
	_ journal.BatchLimiter = (*Log)(nil)
)

// Open opens the store. Like a directory lock, only one handle may be open.
func (s *Store) Open() (*Log, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open {
		return nil, fmt.Errorf("%w: memlog store already open", journal.ErrLocked)
	}
	s.open = true
	return &Log{s: s}, nil
}

func (l *Log) checkLocked() error {
	if l.closed {
		return journal.ErrClosed
	}
	return nil
}

// Append implements journal.Log.
func (l *Log) Append(ctx context.Context, recs []journal.Record) (uint64, uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	if err := journal.ValidateBatch(recs, journal.DefaultMaxRecordBytes); err != nil {
		return 0, 0, err
	}
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := l.checkLocked(); err != nil {
		return 0, 0, err
	}
	if err := s.limit.Check(recs); err != nil {
		return 0, 0, err
	}
	first := s.first + uint64(len(s.recs))
	for i := range recs {
		r := &recs[i]
		if r.Moved >= first+uint64(i) {
			return 0, 0, fmt.Errorf("%w: moved record claims original index %d", journal.ErrInvalidRecord, r.Moved)
		}
	}
	for i := range recs {
		r := &recs[i]
		idx := first + uint64(i)
		if s.segBytes[len(s.segBytes)-1] >= s.segmentBytes {
			s.segStarts = append(s.segStarts, idx)
			s.segBytes = append(s.segBytes, 0)
		}
		s.segBytes[len(s.segBytes)-1] += int64(journal.FrameSize(r))
		s.recs = append(s.recs, record{typ: r.Type, data: slices.Clone(r.Data), moved: r.Moved})
	}
	return first, first + uint64(len(recs)) - 1, nil
}

// BatchLimit implements journal.BatchLimiter: the store's LimitBatches,
// none by default.
func (l *Log) BatchLimit() journal.BatchLimit {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	return l.s.limit
}

// Read implements journal.Log.
func (l *Log) Read(index uint64) (journal.Record, error) {
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := l.checkLocked(); err != nil {
		return journal.Record{}, err
	}
	if index < s.first || index >= s.first+uint64(len(s.recs)) {
		return journal.Record{}, fmt.Errorf("%w: index %d outside [%d, %d]", journal.ErrNotFound, index, s.first, s.first+uint64(len(s.recs))-1)
	}
	r := s.recs[index-s.first]
	return journal.Record{Index: index, Type: r.typ, Data: slices.Clone(r.data), Moved: r.moved}, nil
}

// FirstIndex implements journal.Log.
func (l *Log) FirstIndex() uint64 {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	return l.s.first
}

// LastIndex implements journal.Log.
func (l *Log) LastIndex() uint64 {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	return l.s.first + uint64(len(l.s.recs)) - 1
}

// TruncateFront implements journal.Log.
func (l *Log) TruncateFront(index uint64) error {
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := l.checkLocked(); err != nil {
		return err
	}
	last := s.first + uint64(len(s.recs)) - 1
	if index < s.first || index > last+1 {
		return fmt.Errorf("%w: truncate to %d outside [%d, %d]", journal.ErrNotFound, index, s.first, last+1)
	}
	s.recs = s.recs[index-s.first:]
	s.first = index
	// Drop whole segments before index; the one holding index stays.
	n := 0
	for n+1 < len(s.segStarts) && s.segStarts[n+1] <= index {
		n++
	}
	s.segStarts, s.segBytes = s.segStarts[n:], s.segBytes[n:]
	return nil
}

// Close implements journal.Log.
func (l *Log) Close() error {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.closed {
		return journal.ErrClosed
	}
	l.closed = true
	l.s.open = false
	return nil
}

// Scan implements journal.Scanner.
func (l *Log) Scan(from uint64, fn func(journal.Record) error) error {
	s := l.s
	s.mu.Lock()
	if err := l.checkLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	if from < s.first {
		s.mu.Unlock()
		return fmt.Errorf("%w: scan from %d, log starts at %d", journal.ErrNotFound, from, s.first)
	}
	base := s.first
	recs := s.recs[min(from-base, uint64(len(s.recs))):]
	s.mu.Unlock()
	// recs is append-only past this point, so reading it unlocked is safe.
	for i, r := range recs {
		if err := fn(journal.Record{Index: from + uint64(i), Type: r.typ, Data: r.data, Moved: r.moved}); err != nil {
			return err
		}
	}
	return nil
}

// SaveSnapshot implements journal.Snapshotter.
func (l *Log) SaveSnapshot(index uint64, data []byte) error {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if err := l.checkLocked(); err != nil {
		return err
	}
	l.s.snapIndex, l.s.snap = index, slices.Clone(data)
	return nil
}

// LoadSnapshot implements journal.Snapshotter.
func (l *Log) LoadSnapshot() (uint64, []byte, error) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.s.snap == nil {
		return 0, nil, journal.ErrNoSnapshot
	}
	return l.s.snapIndex, slices.Clone(l.s.snap), nil
}

// Segments implements journal.Segmenter.
func (l *Log) Segments() []journal.Segment {
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.first + uint64(len(s.recs)) - 1
	out := make([]journal.Segment, len(s.segStarts))
	for i, start := range s.segStarts {
		end := last
		if i+1 < len(s.segStarts) {
			end = s.segStarts[i+1] - 1
		}
		out[i] = journal.Segment{First: max(start, s.first), Last: end, Bytes: s.segBytes[i], Name: fmt.Sprintf("mem-%d", start)}
	}
	return out
}
