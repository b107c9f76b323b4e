// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package journal_test

import (
	"testing"
	"time"

	"github.com/cairnmq/cairn/journal"
)

// TestHistogram: observations land in the first bucket whose bound holds
// them, buckets are cumulative, and the sum is in the bounds' unit.
func TestHistogram(t *testing.T) {
	h := journal.NewHistogram(false)
	for _, d := range []time.Duration{10 * time.Microsecond, 50 * time.Microsecond, 3 * time.Millisecond, 10 * time.Second} {
		h.ObserveDuration(d)
	}
	s := h.Snapshot()
	if s.Count != 4 || s.Buckets[0] != 2 || s.Buckets[len(s.Buckets)-1] != 3 || s.Sum < 10.003 || s.Sum > 10.004 {
		t.Fatalf("durations: %+v", s)
	}
	for i := 1; i < len(s.Buckets); i++ {
		if s.Buckets[i] < s.Buckets[i-1] {
			t.Fatalf("not cumulative: %v", s.Buckets)
		}
	}
	c := journal.NewHistogram(true)
	c.ObserveCount(1)
	c.ObserveCount(3)
	if s := c.Snapshot(); s.Count != 2 || s.Buckets[0] != 1 || s.Buckets[2] != 2 || s.Sum != 4 {
		t.Fatalf("counts: %+v", s)
	}
}
