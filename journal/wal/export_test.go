// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package wal

import "path/filepath"

// DurableTail is the tail segment's path and how many of its bytes are known
// to be fsynced to it: a power loss may take what lies beyond (the sync
// ring holds it).
func (l *Log) DurableTail() (string, int64) {
	l.segMu.Lock()
	defer l.segMu.Unlock()
	return filepath.Join(l.walDir, l.tail.name()), l.tailDurable
}
