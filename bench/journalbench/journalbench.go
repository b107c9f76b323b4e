// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package journalbench measures journal append and replay throughput on a
// chosen directory, each result next to this disk's limit measured in the
// same run: a bare group-commit loop (one write plus one fdatasync of
// whatever is queued, no framing) with the same record size and appender
// count, and sequential write bandwidth with a final fsync.
package journalbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/wal"
)

// Options choose the grid and where it runs.
type Options struct {
	Dir       string // directory to write in (created if missing)
	Keep      bool   // leave the replay journal as a journal directory at Dir
	Quick     bool   // a reduced grid that runs in well under a minute
	Cell      time.Duration
	Sizes     []int
	Appenders []int
	Syncs     []journal.SyncPolicy
	// ReplayBytes is the size of the journal written for the replay cell.
	ReplayBytes int64
	// CompactBytes is how much the compaction cell writes.
	CompactBytes int64
	// Progress, if set, receives a progress bar (a terminal's stderr).
	Progress io.Writer
}

func (o *Options) fill() {
	if o.Quick {
		o.Cell = cmp(o.Cell, 400*time.Millisecond)
		o.Sizes = cmpS(o.Sizes, []int{128, 1024, 16384})
		o.Appenders = cmpS(o.Appenders, []int{1, 64, 512})
		o.Syncs = cmpS(o.Syncs, []journal.SyncPolicy{journal.SyncAlways})
		o.ReplayBytes = cmp(o.ReplayBytes, 128<<20)
		o.CompactBytes = cmp(o.CompactBytes, 256<<20)
	}
	o.Cell = cmp(o.Cell, 2*time.Second)
	o.Sizes = cmpS(o.Sizes, []int{128, 1024, 16384})
	o.Appenders = cmpS(o.Appenders, []int{1, 8, 64, 512})
	o.Syncs = cmpS(o.Syncs, []journal.SyncPolicy{journal.SyncAlways, journal.SyncInterval, journal.SyncNever})
	o.ReplayBytes = cmp(o.ReplayBytes, 1<<30)
	o.CompactBytes = cmp(o.CompactBytes, 2<<30)
}

func cmp[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func cmpS[T any](v, def []T) []T {
	if len(v) == 0 {
		return def
	}
	return v
}

// Result is one measurement. JSON field names are part of the CLI's output.
type Result struct {
	Kind          string  `json:"kind"` // append, replay or seqwrite
	Backend       string  `json:"backend"`
	RecordBytes   int     `json:"record_bytes"`
	Appenders     int     `json:"appenders"`
	Sync          string  `json:"sync"`
	Count         int64   `json:"count"`
	Seconds       float64 `json:"seconds"`
	AppendsPerSec float64 `json:"appends_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	// LimitAppendsPerSec is the bare group-commit loop's rate for this cell
	// (appends), and Ratio the result over it. For replay and seqwrite the
	// limit is the sequential write bandwidth and Ratio is MB/s over it.
	LimitAppendsPerSec float64 `json:"limit_appends_per_sec"`
	LimitMBPerSec      float64 `json:"limit_mb_per_sec"`
	Ratio              float64 `json:"ratio"`
	// SeqRatio is MB/s over the sequential write bandwidth of this run.
	SeqRatio float64 `json:"seq_ratio"`

	// The compaction cell: what was written, what stayed live, what the
	// journal occupied on disk at the end (allocated blocks), and the bound
	// it must stay within (2 × live + 2 segments).
	WrittenBytes int64 `json:"written_bytes,omitempty"`
	LiveBytes    int64 `json:"live_bytes,omitempty"`
	DiskBytes    int64 `json:"disk_bytes,omitempty"`
	BoundBytes   int64 `json:"bound_bytes,omitempty"`
	Compactions  int   `json:"compactions,omitempty"`
}

// Run measures the grid and calls emit with each result as it is made.
func Run(ctx context.Context, o Options, emit func(Result)) error {
	o.fill()
	if o.Dir == "" {
		return errors.New("bench: no directory")
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return err
	}
	if o.Keep {
		if ents, _ := os.ReadDir(o.Dir); len(ents) > 0 {
			return fmt.Errorf("bench: --keep needs an empty directory, and %s is not", o.Dir)
		}
	}
	total := 1 + 2*len(o.Syncs)*len(o.Sizes)*len(o.Appenders) + 2
	bar := progress{w: o.Progress, total: total}
	bar.step("sequential write")
	seq, err := seqWrite(filepath.Join(o.Dir, ".bench-seq"), min(o.ReplayBytes, 512<<20))
	if err != nil {
		return err
	}
	seq.SeqRatio, seq.Ratio = 1, 1
	emit(seq)
	for _, pol := range o.Syncs {
		for _, size := range o.Sizes {
			for _, n := range o.Appenders {
				if err := ctx.Err(); err != nil {
					return err
				}
				name := fmt.Sprintf("sync=%s rec=%dB appenders=%d", pol, size, n)
				bar.step("bare loop " + name)
				limit, err := bareLoop(ctx, filepath.Join(o.Dir, ".bench-bare"), pol, size, n, o.Cell)
				if err != nil {
					return err
				}
				bar.step("wal " + name)
				r, err := walCell(ctx, filepath.Join(o.Dir, ".bench-wal"), pol, size, n, o.Cell)
				if err != nil {
					return err
				}
				r.LimitAppendsPerSec = limit.AppendsPerSec
				r.LimitMBPerSec = limit.MBPerSec
				if limit.AppendsPerSec > 0 {
					r.Ratio = r.AppendsPerSec / limit.AppendsPerSec
				}
				r.SeqRatio = r.MBPerSec / seq.MBPerSec
				emit(r)
			}
		}
	}
	bar.step("replay")
	dir := filepath.Join(o.Dir, ".bench-replay")
	if o.Keep {
		dir = o.Dir
	}
	r, err := replayCell(dir, 1024, o.ReplayBytes, !o.Keep)
	if err != nil {
		return err
	}
	r.LimitMBPerSec = seq.MBPerSec
	r.SeqRatio = r.MBPerSec / seq.MBPerSec
	r.Ratio = r.SeqRatio
	emit(r)
	bar.step("compaction")
	c, err := compactionCell(filepath.Join(o.Dir, ".bench-compact"), o.CompactBytes)
	if err != nil {
		return err
	}
	emit(c)
	bar.done()
	return nil
}

// compactionCell writes total bytes of 1 KiB records, keeping one in 1,000
// live forever (the KahaDB case: a few unacked messages pin the journal),
// compacting after each sealed segment, and reports the journal's disk use
// at the end against the bound of 2 × live bytes + 2 segments.
func compactionCell(dir string, total int64) (Result, error) {
	const size, every, segBytes = 1024, 1000, 16 << 20
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	l, err := wal.Open(dir, wal.Options{Sync: journal.SyncNever, SegmentBytes: segBytes})
	if err != nil {
		return Result{}, err
	}
	defer l.Close()
	live := make(map[uint64]bool)
	recs := make([]journal.Record, 100)
	for i := range recs {
		recs[i] = journal.Record{Type: 1, Data: make([]byte, size)}
	}
	start := time.Now()
	var written, n int64
	compactions := 0
	segs := 1
	for written < total {
		first, _, err := l.Append(context.Background(), recs)
		if err != nil {
			return Result{}, err
		}
		for i := range int64(len(recs)) {
			if (n+i)%every == 0 {
				live[first+uint64(i)] = true
			}
		}
		n += int64(len(recs))
		written += int64(len(recs) * size)
		if s := len(l.Segments()); s > segs {
			res, err := journal.Compact(l, journal.CompactOptions{Live: func(i uint64) bool { return live[i] }})
			if err != nil {
				return Result{}, err
			}
			for _, m := range res.Moves {
				delete(live, m.From)
				live[m.To] = true
			}
			compactions++
			segs = len(l.Segments())
		}
	}
	secs := time.Since(start).Seconds()
	var liveBytes int64
	for i := range live {
		liveBytes += int64(journal.FrameSize(&journal.Record{Data: recs[0].Data, Moved: i}))
	}
	disk, err := diskUsage(dir)
	if err != nil {
		return Result{}, err
	}
	return Result{Kind: "compaction", Backend: "wal", RecordBytes: size, Appenders: 1, Sync: journal.SyncNever.String(),
		Count: n, Seconds: secs, AppendsPerSec: float64(n) / secs, MBPerSec: float64(written) / secs / 1e6,
		WrittenBytes: written, LiveBytes: liveBytes, DiskBytes: disk, BoundBytes: 2*liveBytes + 2*segBytes,
		Compactions: compactions, Ratio: float64(disk) / float64(2*liveBytes+2*segBytes)}, nil
}

// diskUsage is the space the files under dir occupy (allocated blocks).
func diskUsage(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		} else {
			total += fi.Size()
		}
		return nil
	})
	return total, err
}

// walCell appends size-byte records from n goroutines for d.
func walCell(ctx context.Context, dir string, pol journal.SyncPolicy, size, n int, d time.Duration) (Result, error) {
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	l, err := wal.Open(dir, wal.Options{Sync: pol})
	if err != nil {
		return Result{}, err
	}
	count, secs, err := drive(ctx, n, d, func(recs []journal.Record) error {
		_, _, err := l.Append(ctx, recs)
		return err
	}, size)
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	return result("append", "wal", pol, size, n, count, secs), err
}

// drive runs n appenders calling appendFn until d has passed.
func drive(ctx context.Context, n int, d time.Duration, appendFn func([]journal.Record) error, size int) (int64, float64, error) {
	var count atomic.Int64
	var stop atomic.Bool
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Go(func() {
			recs := []journal.Record{{Type: 1, Data: make([]byte, size)}}
			for !stop.Load() && ctx.Err() == nil {
				if err := appendFn(recs); err != nil {
					once.Do(func() { firstErr = err })
					stop.Store(true)
					return
				}
				count.Add(1)
			}
		})
	}
	timer := time.NewTimer(d)
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
	stop.Store(true)
	wg.Wait()
	return count.Load(), time.Since(start).Seconds(), firstErr
}

func result(kind, backend string, pol journal.SyncPolicy, size, n int, count int64, secs float64) Result {
	return Result{Kind: kind, Backend: backend, RecordBytes: size, Appenders: n, Sync: pol.String(),
		Count: count, Seconds: secs, AppendsPerSec: float64(count) / secs,
		MBPerSec: float64(count) * float64(size) / secs / 1e6}
}

// bareLoop is the limit a group-committing journal can approach on this
// disk: appenders hand raw records to one writer, which writes everything
// queued with one write(2) and, under SyncAlways, one fdatasync, then
// releases them. No framing, no checksums, no segments.
func bareLoop(ctx context.Context, path string, pol journal.SyncPolicy, size, n int, d time.Duration) (Result, error) {
	os.Remove(path)
	defer os.Remove(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	type req struct {
		data []byte
		done chan error
	}
	queue := make(chan *req, 4*n)
	quit := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		var buf []byte
		var group []*req
		lastSync := time.Now()
		for {
			var r *req
			select {
			case r = <-queue:
			case <-quit:
				return
			}
			group = append(group[:0], r)
			buf = append(buf[:0], r.data...)
		drain:
			for len(buf) < 4<<20 {
				select {
				case r := <-queue:
					group = append(group, r)
					buf = append(buf, r.data...)
				default:
					break drain
				}
			}
			_, err := f.Write(buf)
			if err == nil && (pol == journal.SyncAlways || (pol == journal.SyncInterval && time.Since(lastSync) >= 50*time.Millisecond)) {
				err = syscall.Fdatasync(int(f.Fd()))
				lastSync = time.Now()
			}
			for _, r := range group {
				r.done <- err
			}
		}
	}()
	var pool = sync.Pool{New: func() any { return &req{done: make(chan error, 1)} }}
	count, secs, err := drive(ctx, n, d, func(recs []journal.Record) error {
		r := pool.Get().(*req)
		r.data = recs[0].Data
		queue <- r
		err := <-r.done
		pool.Put(r)
		return err
	}, size)
	close(quit)
	<-writerDone
	return result("append", "bare", pol, size, n, count, secs), err
}

// seqWrite writes total bytes in 1 MiB buffered writes with one final fsync.
func seqWrite(path string, total int64) (Result, error) {
	os.Remove(path)
	defer os.Remove(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	start := time.Now()
	var n int64
	for n < total {
		w, err := f.Write(buf)
		if err != nil {
			return Result{}, err
		}
		n += int64(w)
	}
	if err := f.Sync(); err != nil {
		return Result{}, err
	}
	secs := time.Since(start).Seconds()
	return Result{Kind: "seqwrite", Backend: "disk", Count: n, Seconds: secs, MBPerSec: float64(n) / secs / 1e6}, nil
}

// replayCell writes a journal of about total bytes of size-byte records and
// times one full replay of it, CRCs checked, from the page cache.
func replayCell(dir string, size int, total int64, remove bool) (Result, error) {
	if remove {
		os.RemoveAll(dir)
		defer os.RemoveAll(dir)
	}
	l, err := wal.Open(dir, wal.Options{Sync: journal.SyncNever})
	if err != nil {
		return Result{}, err
	}
	recs := make([]journal.Record, 256)
	for i := range recs {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(i + j)
		}
		recs[i] = journal.Record{Type: journal.RecordType(1 + i%8), Data: data}
	}
	for written := int64(0); written < total; written += int64(len(recs) * size) {
		if _, _, err := l.Append(context.Background(), recs); err != nil {
			l.Close()
			return Result{}, err
		}
	}
	if err := l.Close(); err != nil {
		return Result{}, err
	}
	l, err = wal.Open(dir, wal.Options{})
	if err != nil {
		return Result{}, err
	}
	defer l.Close()
	var bytes int64
	p, err := journal.Replay(l, l.FirstIndex(), func(r journal.Record) error {
		bytes += int64(len(r.Data))
		return nil
	}, journal.ReplayOptions{})
	if err != nil {
		return Result{}, err
	}
	secs := p.Elapsed.Seconds()
	return Result{Kind: "replay", Backend: "wal", RecordBytes: size, Sync: "-", Count: int64(p.Records), Seconds: secs,
		AppendsPerSec: float64(p.Records) / secs, MBPerSec: float64(bytes) / secs / 1e6}, nil
}

type progress struct {
	w     io.Writer
	total int
	n     int
}

func (p *progress) step(what string) {
	if p.w == nil {
		return
	}
	p.n++
	const width = 30
	filled := width * (p.n - 1) / p.total
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d %-50.50s", strings.Repeat("#", filled), strings.Repeat(" ", width-filled), p.n, p.total, what)
}

func (p *progress) done() {
	if p.w != nil {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", 100))
	}
}
