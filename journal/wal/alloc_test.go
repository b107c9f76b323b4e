// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package wal_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/wal"
)

// Filling a segment allocates about the segment once, not once per growth
// step: tidwall/wal keeps the tail segment in memory, and upstream grows
// that buffer with append (1.25x a step, about five times the segment in
// all). go.mod's replace points tidwall/wal at third_party/tidwall-wal,
// whose patch reserves the buffer at once; this test fails without it.
func TestTailSegmentBufferGrowsOnce(t *testing.T) {
	const segment = 8 << 20
	l, err := wal.Open(t.TempDir(), wal.Options{Sync: journal.SyncNever, SegmentBytes: segment, MaxRecordBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	recs := make([]journal.Record, 64)
	for i := range recs {
		recs[i] = journal.Record{Type: 1, Data: make([]byte, 1024)}
	}
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	written := 0
	for written < segment*7/8 {
		if _, _, err := l.Append(ctx, recs); err != nil {
			t.Fatal(err)
		}
		written += len(recs) * 1024
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("wrote %d KiB of records into one %d KiB segment; allocated %d KiB", written>>10, segment>>10, alloc>>10)
	if alloc > 2*segment {
		t.Fatalf("allocated %d KiB to fill %d KiB of a segment: the tail segment's buffer is grown step by step (is third_party/tidwall-wal's patch, and go.mod's replace, in place?)", alloc>>10, written>>10)
	}
}
