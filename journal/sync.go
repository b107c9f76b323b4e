// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package journal

import "fmt"

// SyncPolicy says when a file-backed log forces written records to disk.
type SyncPolicy uint8

const (
	// SyncAlways fsyncs every group commit before any appender in it is told
	// its records are in. Nothing confirmed is lost by a crash or power loss.
	SyncAlways SyncPolicy = iota
	// SyncInterval tells appenders once their records are written to the
	// operating system and fsyncs at most every interval. A process crash
	// loses nothing; a power loss or kernel crash loses at most the records
	// confirmed in the last interval.
	SyncInterval
	// SyncNever leaves flushing to the operating system (and to segment
	// rolls and Close). A power loss can lose any confirmed record not yet
	// flushed.
	SyncNever
)

func (p SyncPolicy) String() string {
	switch p {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("SyncPolicy(%d)", uint8(p))
}

// ParseSyncPolicy parses "always", "interval" or "never".
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch s {
	case "always", "":
		return SyncAlways, nil
	case "interval":
		return SyncInterval, nil
	case "never":
		return SyncNever, nil
	}
	return 0, fmt.Errorf("unknown sync policy %q (want always, interval or never)", s)
}
