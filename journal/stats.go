// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"sync/atomic"
	"time"
)

// A StatsReporter is a Log that counts its work, for the node's metrics.
type StatsReporter interface {
	Stats() Stats
}

// Stats is what a journal has done since it opened: how long Appends took
// (from the call to the confirmation), how long its syncs took, and how many
// records each group commit wrote.
type Stats struct {
	Append, Sync HistogramSnapshot
	GroupRecords HistogramSnapshot
}

// DurationBounds are the upper bounds of the duration histograms, in
// seconds: from 50 µs (an O_DSYNC write on a fast disk) to 2.5 s.
var DurationBounds = []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5}

// CountBounds are the upper bounds of the group-size histogram, in
// records.
var CountBounds = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096}

// Histogram counts observations into fixed buckets without a lock; the
// zero value is not ready: use NewHistogram.
type Histogram struct {
	bounds []float64
	counts []atomic.Uint64 // one per bound, and one above the last
	sum    atomic.Uint64   // of the observations, in nanoseconds or records (a float64's bits would need a CAS loop)
	scale  float64         // what sum's unit is in the bounds' unit
}

// NewHistogram makes a histogram of durations (DurationBounds) or, with
// counts, of counts (CountBounds).
func NewHistogram(counts bool) *Histogram {
	h := &Histogram{bounds: DurationBounds, scale: 1e-9}
	if counts {
		h.bounds, h.scale = CountBounds, 1
	}
	h.counts = make([]atomic.Uint64, len(h.bounds)+1)
	return h
}

// ObserveDuration counts d.
func (h *Histogram) ObserveDuration(d time.Duration) { h.observe(float64(d)*1e-9, uint64(d)) }

// ObserveCount counts n.
func (h *Histogram) ObserveCount(n int) { h.observe(float64(n), uint64(n)) }

func (h *Histogram) observe(v float64, raw uint64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(raw)
}

// HistogramSnapshot is a histogram at one moment: Buckets[i] observations
// at most Bounds[i] (cumulative, as Prometheus wants them), Count in all,
// Sum of them.
type HistogramSnapshot struct {
	Bounds  []float64
	Buckets []uint64
	Count   uint64
	Sum     float64
}

// Snapshot reads h.
func (h *Histogram) Snapshot() HistogramSnapshot {
	if h == nil {
		return HistogramSnapshot{}
	}
	s := HistogramSnapshot{Bounds: h.bounds, Buckets: make([]uint64, len(h.bounds))}
	var cum uint64
	for i := range h.bounds {
		cum += h.counts[i].Load()
		s.Buckets[i] = cum
	}
	s.Count = cum + h.counts[len(h.bounds)].Load()
	s.Sum = float64(h.sum.Load()) * h.scale
	return s
}
