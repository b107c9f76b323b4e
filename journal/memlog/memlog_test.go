// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package memlog_test

import (
	"testing"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/journaltest"
	"github.com/cairnmq/cairn/journal/memlog"
)

func opener(store *memlog.Store) journaltest.Opener {
	return func(t testing.TB) journal.Log {
		l, err := store.Open()
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
}

func TestConformance(t *testing.T) {
	journaltest.Run(t, func(t *testing.T) journaltest.Opener { return opener(memlog.NewStore(4 << 10)) })
}

// TestConformanceLimited runs the suite on logs that take at most 100
// records or 64 KiB in one Append: a backend with a batch limit.
func TestConformanceLimited(t *testing.T) {
	journaltest.Run(t, func(t *testing.T) journaltest.Opener {
		s := memlog.NewStore(4 << 10)
		s.LimitBatches(journal.BatchLimit{Records: 100, Bytes: 64 << 10})
		return opener(s)
	})
}

func BenchmarkLog(b *testing.B) {
	journaltest.Bench(b, func(b *testing.B, _ journal.SyncPolicy) journal.Log {
		l, err := memlog.NewStore(0).Open()
		if err != nil {
			b.Fatal(err)
		}
		return l
	}, journal.SyncNever)
}
