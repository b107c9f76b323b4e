// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package journaltest

import (
	"sync/atomic"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/memlog"
)

// CountingLog is a memlog journal that counts the records read from it one
// at a time (Read), for tests of what reads a journal.
type CountingLog struct {
	*memlog.Log
	Reads atomic.Int64
}

// Read implements journal.Log.
func (l *CountingLog) Read(i uint64) (journal.Record, error) {
	l.Reads.Add(1)
	return l.Log.Read(i)
}
