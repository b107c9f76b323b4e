// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package journal_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/journaltest"
	"github.com/cairnmq/cairn/journal/memlog"
)

// With CompactOptions.LiveBytes, compaction measures the live share of
// segments without reading their records, and, given the same measure,
// decides exactly as it does by reading them: it reads only the records it
// moves.
func TestCompactWithSizes(t *testing.T) {
	build := func() (*journaltest.CountingLog, map[uint64]int) {
		l, err := memlog.NewStore(8 << 10).Open()
		if err != nil {
			t.Fatal(err)
		}
		live := map[uint64]int{}
		for i := range 2000 {
			data := make([]byte, 50+i%200)
			f, _, err := l.Append(context.Background(), []journal.Record{{Type: 1, Data: data}})
			if err != nil {
				t.Fatal(err)
			}
			if i%7 == 0 || i > 1700 {
				live[f] = len(data)
			}
		}
		return &journaltest.CountingLog{Log: l}, live
	}
	compact := func(withSize bool) (journal.CompactResult, int64) {
		l, live := build()
		defer l.Close()
		opts := journal.CompactOptions{Live: func(i uint64) bool { _, ok := live[i]; return ok }, Before: 1800}
		if withSize {
			// The owner's reckoning, here exact: each live record framed
			// as a moved copy, as Compact measures them when it reads.
			opts.LiveBytes = func(first, last uint64) int64 {
				var n int64
				for i := first; i <= last; i++ {
					if size, ok := live[i]; ok {
						n += int64(journal.FrameSize(&journal.Record{Data: make([]byte, size), Moved: i}))
					}
				}
				return n
			}
		}
		res, err := journal.Compact(l, opts)
		if err != nil {
			t.Fatal(err)
		}
		return res, l.Reads.Load()
	}
	read, readReads := compact(false)
	sized, sizedReads := compact(true)
	if len(read.Moves) == 0 {
		t.Fatal("nothing moved: the test does not compact")
	}
	if !reflect.DeepEqual(read, sized) {
		t.Fatalf("with sizes:\n%+v\nreading records:\n%+v", sized, read)
	}
	if sizedReads != int64(len(sized.Moves)) || readReads <= sizedReads {
		t.Fatalf("reads: %d with sizes (%d moves), %d without", sizedReads, len(sized.Moves), readReads)
	}
	t.Logf("reads: %d with sizes, %d without", sizedReads, readReads)
}
