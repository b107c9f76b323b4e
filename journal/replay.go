// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"fmt"
	"time"
)

// Progress reports how far a replay has come.
type Progress struct {
	Records uint64        // records delivered so far
	Total   uint64        // records the replay will deliver in all
	Bytes   int64         // payload bytes delivered so far
	Elapsed time.Duration // since the replay started
	Rate    float64       // records per second so far
	ETA     time.Duration // estimated time left at the current rate
	Done    bool          // true on the last call
}

// ReplayOptions tune Replay.
type ReplayOptions struct {
	// Progress, if set, is called about every Every interval and once at the end.
	Progress func(Progress)
	// Every is the progress interval; zero means 250ms.
	Every time.Duration
}

// Replay calls fn for every record from index from through the LastIndex seen
// when it starts, in order, using the log's Scanner where it has one; records
// of the journal's reserved types are counted but not passed to fn. It is
// the one replay path: start-up, standby takeover and inspection all use it.
func Replay(l Log, from uint64, fn func(Record) error, opts ReplayOptions) (Progress, error) {
	first, last := l.FirstIndex(), l.LastIndex()
	if from < first {
		return Progress{}, fmt.Errorf("%w: replay from %d, but the log starts at %d", ErrNotFound, from, first)
	}
	var p Progress
	if last >= from {
		p.Total = last - from + 1
	}
	every := opts.Every
	if every <= 0 {
		every = 250 * time.Millisecond
	}
	start := time.Now()
	next := start.Add(every)
	report := func(done bool) {
		p.Elapsed = time.Since(start)
		if s := p.Elapsed.Seconds(); s > 0 {
			p.Rate = float64(p.Records) / s
		}
		if p.Rate > 0 && p.Total > p.Records {
			p.ETA = time.Duration(float64(p.Total-p.Records) / p.Rate * float64(time.Second))
		} else {
			p.ETA = 0
		}
		p.Done = done
		if opts.Progress != nil {
			opts.Progress(p)
		}
	}
	visit := func(r Record) error {
		if r.Index > last {
			return errStopScan
		}
		if r.Type <= MaxOwnerType { // the journal's own records (TypeClaim) are not the owner's events
			if err := fn(r); err != nil {
				return err
			}
		}
		p.Records++
		p.Bytes += int64(len(r.Data))
		// Checking the clock every 1024 records keeps it off the hot path.
		if opts.Progress != nil && p.Records&1023 == 0 && time.Now().After(next) {
			report(false)
			next = time.Now().Add(every)
		}
		return nil
	}
	var err error
	if p.Total == 0 {
		// nothing to do
	} else if s, ok := l.(Scanner); ok {
		err = s.Scan(from, visit)
	} else {
		for i := from; i <= last && err == nil; i++ {
			var r Record
			if r, err = l.Read(i); err == nil {
				err = visit(r)
			}
		}
	}
	if err == errStopScan {
		err = nil
	}
	if err == nil && p.Records != p.Total {
		err = fmt.Errorf("%w: replay delivered %d records of %d expected (from %d to %d)", ErrCorrupt, p.Records, p.Total, from, last)
	}
	report(true)
	return p, err
}

type stopScan struct{}

func (stopScan) Error() string { return "stop scan" }

var errStopScan error = stopScan{}
