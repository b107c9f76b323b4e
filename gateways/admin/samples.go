// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package admin

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/cairnmq/cairn/core"
)

// Sampler keeps the last hour of figures in memory for the console's
// charts: every interval, each queue's depth and its enqueue and dequeue
// counts, and the broker's totals. It keeps the deepest MaxQueues queues
// (1,000 by default) of each sample, so that a broker with tens of
// thousands of queues costs a bounded few megabytes: about 12 bytes a
// sample, 360 samples an hour at the default 10 s.
type Sampler struct {
	src       Source
	every     time.Duration
	n         int // samples kept
	maxQueues int

	mu     sync.Mutex
	times  []time.Time        // the samples' times, oldest first
	round  int                // samples taken
	total  *series            // the broker's totals
	queues map[string]*series // by queue name
	stop   chan struct{}
	done   chan struct{}
}

// series is one ring of samples: depth, and the enqueued and dequeued
// counts (rates are their differences).
type series struct {
	depth, enq, deq []int64
	seen            int // the round it was last updated in
}

// NewSampler samples src every every (10 s if 0) and keeps an hour; Stop
// ends it.
func NewSampler(src Source, every time.Duration, maxQueues int) *Sampler {
	if every <= 0 {
		every = 10 * time.Second
	}
	if maxQueues <= 0 {
		maxQueues = 1000
	}
	s := &Sampler{src: src, every: every, n: int(time.Hour / every), maxQueues: maxQueues, total: &series{},
		queues: map[string]*series{}, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

// Stop ends the sampling.
func (s *Sampler) Stop() {
	close(s.stop)
	<-s.done
}

func (s *Sampler) run() {
	defer close(s.done)
	t := time.NewTicker(s.every)
	defer t.Stop()
	s.sample()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sample()
		}
	}
}

// sample takes one sample.
func (s *Sampler) sample() {
	var b *core.Broker
	if s.src.Broker != nil {
		b = s.src.Broker()
	}
	if b == nil {
		return
	}
	qs := b.Queues()
	if len(qs) > s.maxQueues {
		sortByDepth(qs)
		qs = qs[:s.maxQueues]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.times = append(s.times, time.Now())
	if len(s.times) > s.n {
		s.times = s.times[1:]
	}
	k := len(s.times)
	s.round++
	var td, te, tq int64
	for _, st := range qs {
		sr := s.queues[st.Destination.Name]
		if sr == nil {
			sr = &series{}
			s.queues[st.Destination.Name] = sr
		}
		sr.push(k, int64(st.Depth()), int64(st.Enqueued), int64(st.Dequeued))
		sr.seen = s.round
		td, te, tq = td+int64(st.Depth()), te+int64(st.Enqueued), tq+int64(st.Dequeued)
	}
	s.total.push(k, td, te, tq)
	for name, sr := range s.queues {
		if sr.seen != s.round {
			// Not in this sample (gone, or no longer among the deepest): a gap.
			sr.push(k, -1, -1, -1)
			sr.seen = s.round
		}
		if allGone(sr.depth) {
			delete(s.queues, name)
		}
	}
}

// push adds one sample to a series that is to have k of them, the ring's
// length: one that missed samples is padded with gaps (-1), and the
// oldest go once it holds more.
func (sr *series) push(k int, depth, enq, deq int64) {
	for len(sr.depth) < k-1 {
		sr.depth, sr.enq, sr.deq = append(sr.depth, -1), append(sr.enq, -1), append(sr.deq, -1)
	}
	sr.depth, sr.enq, sr.deq = append(sr.depth, depth), append(sr.enq, enq), append(sr.deq, deq)
	if over := len(sr.depth) - k; over > 0 {
		sr.depth, sr.enq, sr.deq = sr.depth[over:], sr.enq[over:], sr.deq[over:]
	}
}

func allGone(v []int64) bool {
	for _, x := range v {
		if x >= 0 {
			return false
		}
	}
	return true
}

// Chart is what a queue's (or the broker's) charts draw.
type Chart struct {
	Depth, Rates template.HTML // inline SVG
	Samples      int
	Span         time.Duration
}

// chart draws the series of queue name ("" for the broker's totals), or
// returns false if there is none.
func (s *Sampler) chart(name string) (Chart, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sr := s.total
	if name != "" {
		sr = s.queues[name]
	}
	if sr == nil || len(s.times) < 2 {
		return Chart{}, false
	}
	span := s.times[len(s.times)-1].Sub(s.times[0])
	if span >= time.Second {
		span = span.Round(time.Second)
	} else {
		span = span.Round(time.Millisecond)
	}
	enqRate, deqRate := rates(sr.enq, s.every), rates(sr.deq, s.every)
	return Chart{
		Depth:   svgChart("messages held", "depth", span, []line{{"depth", "#2b6cb0", floats(sr.depth)}}),
		Rates:   svgChart("messages a second", "rates", span, []line{{"enqueued/s", "#2f855a", enqRate}, {"dequeued/s", "#c05621", deqRate}}),
		Samples: len(s.times), Span: span,
	}, true
}

func floats(v []int64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
		if x < 0 {
			out[i] = math.NaN()
		}
	}
	return out
}

// rates are the per-second differences of a counter's samples (NaN where
// either side is a gap, or the counter went back: a restart).
func rates(v []int64, every time.Duration) []float64 {
	out := make([]float64, len(v))
	out[0] = math.NaN()
	for i := 1; i < len(v); i++ {
		if v[i] < 0 || v[i-1] < 0 || v[i] < v[i-1] {
			out[i] = math.NaN()
			continue
		}
		out[i] = float64(v[i]-v[i-1]) / every.Seconds()
	}
	return out
}

type line struct {
	name, color string
	v           []float64
}

// svgChart draws lines over the span, with the largest value and the span
// written on its axes. The markup is built from numbers and fixed names
// only, so it is safe to insert as is.
func svgChart(title, id string, span time.Duration, lines []line) template.HTML {
	const w, h, left, bottom, top = 600.0, 160.0, 56.0, 22.0, 10.0
	maxV := 0.0
	n := 0
	for _, l := range lines {
		n = max(n, len(l.v))
		for _, x := range l.v {
			if !math.IsNaN(x) {
				maxV = math.Max(maxV, x)
			}
		}
	}
	if maxV == 0 {
		maxV = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="chart-%s" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s over the last %s">`,
		id, w, h, w, h, template.HTMLEscapeString(title), span.Round(time.Second))
	fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="#fff" stroke="#d5dae0"/>`, left, top, w-left-4, h-top-bottom)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="11" text-anchor="end">%s</text>`, left-4, top+10, axisValue(maxV))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="11" text-anchor="end">0</text>`, left-4, h-bottom)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="11">%s ago</text>`, left, h-6, span.Round(time.Second))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="11" text-anchor="end">now</text>`, w-4, h-6)
	legend := left + 8
	for _, l := range lines {
		var pts []string
		var paths []string
		for i, x := range l.v {
			if math.IsNaN(x) {
				if len(pts) > 1 {
					paths = append(paths, strings.Join(pts, " "))
				}
				pts = pts[:0]
				continue
			}
			px := left + (w-left-4)*float64(i)/float64(max(1, n-1))
			py := h - bottom - (h-top-bottom)*x/maxV
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px, py))
		}
		if len(pts) > 1 {
			paths = append(paths, strings.Join(pts, " "))
		}
		for _, p := range paths {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.6" points="%s"/>`, l.color, p)
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="11" fill="%s">%s</text>`, legend, top+12, l.color, template.HTMLEscapeString(l.name))
		legend += 90
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func axisValue(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}
