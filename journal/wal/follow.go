// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/cairnmq/cairn/journal"
)

// ErrBehind says a Follower's next record is no longer in the journal: the
// writer compacted past it. Start again from the newest snapshot.
var ErrBehind = errors.New("wal: follower is behind the journal's first record")

// ReadSnapshot returns the newest valid snapshot in the journal directory
// dir without opening the journal (no lock): for a standby that follows a
// journal another process writes. Like Log.LoadSnapshot it returns
// journal.ErrNoSnapshot when there is none.
func ReadSnapshot(dir string) (uint64, []byte, error) {
	return loadSnapshot(dir, math.MaxUint64, func(string, ...any) {})
}

// Follower reads a journal that another process is writing, without the
// lock and without writing anything: a warm standby uses it to keep its
// state current, so that at takeover only the last records are left to
// replay. It hands out complete batches only, in order, each record once;
// a batch whose end record is not written yet is left for a later Poll.
//
// It reads segment files by path every Poll, so it follows a tail replaced
// by DetachTail and segments sealed after it started. Segments removed by
// compaction are no loss as long as the follower has read past them;
// if it has not, Poll fails with ErrBehind. A Follower is not safe for
// concurrent use.
type Follower struct {
	walDir    string
	maxRecord int
	next      uint64 // the index of the next record to hand out
	seg       uint64 // the first index of the segment being read, 0 before the first Poll
	off       int64  // where, in it, the next batch starts
	batch     []journal.Record
}

// NewFollower returns a Follower of the journal in dir that starts at
// record from (or at the journal's first record, if from is before it).
// maxRecord is the writer's MaxRecordBytes (0: the default).
func NewFollower(dir string, from uint64, maxRecord int) *Follower {
	if maxRecord <= 0 {
		maxRecord = journal.DefaultMaxRecordBytes
	}
	return &Follower{walDir: filepath.Join(dir, segmentDir), maxRecord: maxRecord, next: max(from, 1)}
}

// Next is the index of the next record the follower will hand out.
func (f *Follower) Next() uint64 { return f.next }

// Poll calls fn for every record of every complete batch written since the
// last Poll, in order, and returns how many there were. An error from fn
// stops it, part way through a batch: discard the Follower and what it fed.
func (f *Follower) Poll(fn func(journal.Record) error) (int, error) {
	segs, err := listSegments(f.walDir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("wal: follow %s: %w", f.walDir, err)
	}
	if len(segs) == 0 {
		return 0, nil
	}
	expect := f.next
	if f.seg == 0 {
		// The first Poll: start at the beginning of the segment holding
		// next, skipping what comes before it.
		if f.next < segs[0].first {
			f.next = segs[0].first
		}
		for _, s := range segs {
			if s.first <= f.next {
				f.seg = s.first
			}
		}
		expect = f.seg
	}
	start := -1
	for i, s := range segs {
		if s.first == f.seg {
			start = i
		}
	}
	if start < 0 {
		if f.seg < segs[0].first {
			return 0, fmt.Errorf("%w: it reads segment %d; the journal now starts at segment %d", ErrBehind, f.seg, segs[0].first)
		}
		return 0, fmt.Errorf("wal: follow: segment %s is gone", segmentName(f.seg))
	}
	f.batch = f.batch[:0]
	total := 0
	for i := start; i < len(segs); i++ {
		s := segs[i]
		from := int64(0)
		if i == start {
			from = f.off
		}
		data, err := readFrom(s.path, from)
		if err != nil {
			return total, fmt.Errorf("wal: follow: %w", err)
		}
		last := i == len(segs)-1
		off := 0
		for off < len(data) {
			rest := data[off:]
			n, k := binary.Uvarint(rest)
			if k <= 0 || n > uint64(len(rest)-k) {
				break // the entry is still being written (or torn)
			}
			fr, err := journal.DecodeFrame(rest[k:k+int(n)], f.maxRecord)
			if err == nil && fr.Index != expect {
				err = fmt.Errorf("frame says index %d where %d was expected", fr.Index, expect)
			}
			if err != nil {
				if last {
					break // perhaps not fully written yet: look again next Poll
				}
				return total, &journal.CorruptionError{Path: s.path, Index: expect, Offset: from + int64(off), Reason: err.Error()}
			}
			off += k + int(n)
			expect++
			if fr.Index >= f.next {
				r := fr.Record
				r.Data = append([]byte(nil), r.Data...)
				f.batch = append(f.batch, r)
			}
			if fr.Flags&journal.FlagBatchEnd == 0 {
				continue
			}
			for _, r := range f.batch {
				if err := fn(r); err != nil {
					return total, err
				}
				total++
			}
			f.next = max(f.next, fr.Index+1)
			f.seg, f.off = s.first, from+int64(off)
			f.batch = f.batch[:0]
		}
		if off < len(data) {
			break // an incomplete entry: wait for the rest
		}
	}
	return total, nil
}

// readFrom reads path from offset off to its end.
func readFrom(path string, off int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	if _, err := fh.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(fh)
}
