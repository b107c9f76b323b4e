// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package wal_test

import (
	"testing"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/journaltest"
	"github.com/cairnmq/cairn/journal/wal"
)

// testOptions keeps segments and the sync ring small so tests cross segment
// boundaries and the ring starts over often.
func testOptions() wal.Options {
	return wal.Options{SegmentBytes: 64 << 10, MaxRecordBytes: 32 << 10, MaxBatchBytes: 32 << 10, RingBytes: 64 << 10}
}

func opener(dir string, opts wal.Options) journaltest.Opener {
	return func(t testing.TB) journal.Log {
		t.Helper()
		l, err := wal.Open(dir, opts)
		if err != nil {
			t.Fatalf("Open(%s): %v", dir, err)
		}
		return l
	}
}

func TestConformance(t *testing.T) {
	for _, pol := range []journal.SyncPolicy{journal.SyncAlways, journal.SyncInterval, journal.SyncNever} {
		t.Run(pol.String(), func(t *testing.T) {
			journaltest.Run(t, func(t *testing.T) journaltest.Opener {
				opts := testOptions()
				opts.Sync = pol
				return opener(t.TempDir(), opts)
			})
		})
	}
}

func BenchmarkLog(b *testing.B) {
	journaltest.Bench(b, func(b *testing.B, pol journal.SyncPolicy) journal.Log {
		l, err := wal.Open(b.TempDir(), wal.Options{Sync: pol})
		if err != nil {
			b.Fatal(err)
		}
		return l
	}, journal.SyncAlways, journal.SyncInterval, journal.SyncNever)
}
