// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package wal_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/wal"
)

func rec(s string) []journal.Record { return []journal.Record{{Type: 7, Data: []byte(s)}} }

// TestGateFences: once the Gate refuses, nothing more is written or
// confirmed, for good, including a batch that the Gate refuses only after
// it was written (before its confirmation).
func TestGateFences(t *testing.T) {
	for _, failAt := range []int{1, 2} { // 1: refuse before the write; 2: after the fsync
		t.Run(fmt.Sprintf("refusal=%d", failAt), func(t *testing.T) {
			dir := t.TempDir()
			var calls, refuseFrom atomic.Int64
			refuseFrom.Store(1 << 40)
			gate := func() error {
				if calls.Add(1) >= refuseFrom.Load() {
					return errors.New("lease lost")
				}
				return nil
			}
			l, err := wal.Open(dir, wal.Options{Gate: gate})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for i := range 5 {
				if _, _, err := l.Append(ctx, rec(fmt.Sprint("ok", i))); err != nil {
					t.Fatal(err)
				}
			}
			refuseFrom.Store(calls.Load() + int64(failAt))
			if _, _, err := l.Append(ctx, rec("refused")); !errors.Is(err, journal.ErrFenced) {
				t.Fatalf("append after the gate refused: %v, want ErrFenced", err)
			}
			refuseFrom.Store(1 << 40) // the gate relents: the log must not
			if _, _, err := l.Append(ctx, rec("later")); !errors.Is(err, journal.ErrFenced) {
				t.Fatalf("append after fencing: %v, want ErrFenced (sticky)", err)
			}
			if err := l.SaveSnapshot(l.LastIndex(), []byte("s")); !errors.Is(err, journal.ErrFenced) {
				t.Fatalf("snapshot after fencing: %v", err)
			}
			l.Close()
			l, err = wal.Open(dir, wal.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			want := uint64(5)
			if failAt == 2 {
				want = 6 // written before the refusal, never confirmed
			}
			if l.LastIndex() != want {
				t.Fatalf("reopened log ends at %d, want %d", l.LastIndex(), want)
			}
		})
	}
}

// TestGateRefusesTruncate: a fenced master's compaction removes nothing.
func TestGateRefusesTruncate(t *testing.T) {
	dir := t.TempDir()
	var refuse atomic.Bool
	l, err := wal.Open(dir, wal.Options{SegmentBytes: 4 << 10, MaxRecordBytes: 1 << 10, Gate: func() error {
		if refuse.Load() {
			return errors.New("lease lost")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 50 {
		if _, _, err := l.Append(context.Background(), rec(fmt.Sprintf("%0200d", i))); err != nil {
			t.Fatal(err)
		}
	}
	refuse.Store(true)
	if err := l.TruncateFront(40); !errors.Is(err, journal.ErrFenced) {
		t.Fatalf("truncate after fencing: %v", err)
	}
	if l.FirstIndex() != 1 {
		t.Fatalf("first index %d after a refused truncation", l.FirstIndex())
	}
}

// TestDetachTail: an old master that still has the journal open and writes
// after a new master took over (the race a lease check cannot close) writes
// into a detached file; the new master's records are intact.
func TestDetachTail(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	old, err := wal.Open(dir, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	for i := range 10 {
		if _, _, err := old.Append(ctx, rec(fmt.Sprint("old", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := wal.DetachTail(dir); err != nil {
		t.Fatal(err)
	}
	nu, err := wal.Open(dir, wal.Options{Locked: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, _, err := nu.Append(ctx, rec(fmt.Sprint("new", i))); err != nil {
			t.Fatal(err)
		}
	}
	// The old master wakes and writes where it thinks the log ends.
	for i := range 10 {
		if _, _, err := old.Append(ctx, rec(fmt.Sprint("stale", i))); err != nil {
			t.Fatal(err)
		}
	}
	nu.Close()
	old.Close()
	l, err := wal.Open(dir, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.LastIndex() != 20 {
		t.Fatalf("last index %d, want 20", l.LastIndex())
	}
	for i := uint64(11); i <= 20; i++ {
		r, err := l.Read(i)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprint("new", i-11); string(r.Data) != want {
			t.Fatalf("record %d is %q, want %q", i, r.Data, want)
		}
	}
}
