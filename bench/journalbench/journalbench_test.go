// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package journalbench

import "testing"

// TestCompactionBound runs the compaction cell small: one record in 1,000
// live forever must not pin the journal.
func TestCompactionBound(t *testing.T) {
	r, err := compactionCell(t.TempDir(), 96<<20)
	if err != nil {
		t.Fatal(err)
	}
	if r.Compactions == 0 || r.LiveBytes == 0 {
		t.Fatalf("no compaction ran: %+v", r)
	}
	if r.DiskBytes > r.BoundBytes {
		t.Fatalf("journal uses %d bytes on disk after writing %d with %d live; bound %d", r.DiskBytes, r.WrittenBytes, r.LiveBytes, r.BoundBytes)
	}
	t.Logf("wrote %d MiB, %d KiB live, %d compactions, %.1f MiB on disk (bound %.1f MiB)",
		r.WrittenBytes>>20, r.LiveBytes>>10, r.Compactions, float64(r.DiskBytes)/(1<<20), float64(r.BoundBytes)/(1<<20))
}
