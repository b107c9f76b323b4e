// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package wal is Cairn's embedded journal backend: segment files written
// by github.com/tidwall/wal, each entry one Cairn frame (journal/doc.go),
// with what tidwall/wal lacks added around it: CRC32C per record, atomic
// batches, group commit, a directory lock, a manifest of sealed segments,
// torn-tail repair with a .broken copy, refusal of mid-log corruption,
// sticky I/O errors and directory fsyncs.
//
// Directory layout:
//
//	DIR/LOCK            flock, and the holder's pid, host and start time
//	DIR/MANIFEST        logical first index and the sealed segments (atomic replace)
//	DIR/wal/<index>     tidwall/wal segment files, named by their first index
//	DIR/snapshots/<index>.snap
//	DIR/<segment>.<time>.broken  bytes cut off by a repair
package wal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	twal "github.com/tidwall/wal"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/dirlock"
)

// Options configure a journal. The zero value is the default.
type Options struct {
	// Sync is when written records are forced to disk (default SyncAlways).
	Sync journal.SyncPolicy
	// SyncInterval is the most time between fsyncs under SyncInterval
	// (default 50ms): the most confirmed data a power loss can take.
	SyncInterval time.Duration
	// SegmentBytes is the size at which a segment is sealed and a new one
	// begun (default 16 MiB). Compaction frees whole segments.
	SegmentBytes int
	// MaxBatchBytes bounds one group-commit write (default 4 MiB). A single
	// Append larger than this is written on its own.
	MaxBatchBytes int
	// MaxRecordBytes bounds one record's payload (default
	// journal.DefaultMaxRecordBytes); one Append may not exceed SegmentBytes.
	MaxRecordBytes int
	// VerifyAll makes Open read and check every record, not only the tail,
	// so that corruption anywhere refuses the open (or, with Repair, is cut).
	// Without it, damage in older sealed segments is found when a record is
	// read or replayed (every read checks its CRC) or by `cairn journal
	// verify`; Open always checks the manifest, so a missing or resized
	// segment is refused either way.
	VerifyAll bool
	// Repair lets Open cut mid-log corruption, and every record after it,
	// instead of refusing to open. A torn tail is always cut.
	Repair bool
	// Logger receives recovery and failure events (default slog.Default()).
	Logger *slog.Logger
	// Locked says the caller already decides who writes this directory (a
	// replication lease): Open does not take the directory lock itself.
	Locked bool
	// PreviousGone, with Locked, says the previous writer's process is gone
	// (the caller holds the directory's flock): the sync ring Open makes
	// afresh for a previous writer that may still be alive may then be the
	// old one when the disk has no room for a new one.
	PreviousGone bool
	// RingBytes is the size of the sync ring, DIR/RING (default 8 MiB),
	// which makes group commits durable under SyncAlways (ring.go); a
	// negative value fsyncs the tail segment for every group instead.
	RingBytes int64
	// ReserveBytes is the size of DIR/RESERVE (default 4 MiB, at most
	// SegmentBytes: some 100,000 acknowledgements; a
	// negative value: none), written when there is room and deleted when
	// the device is full, so that acknowledgements can still be written
	// (see space.go).
	ReserveBytes int64
	// Gate, if set, is called before every write to the directory (a batch,
	// a segment seal, a snapshot, a truncation) and again before a batch is
	// confirmed. An error from it fences the log: that write is not made or
	// not confirmed, and every later append fails with an error wrapping
	// journal.ErrFenced. replication.Lease.Valid is meant to be the Gate.
	Gate func() error
}

func (o *Options) fill() error {
	if o.SyncInterval <= 0 {
		o.SyncInterval = 50 * time.Millisecond
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 16 << 20
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = 4 << 20
	}
	if o.MaxRecordBytes <= 0 {
		o.MaxRecordBytes = journal.DefaultMaxRecordBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.RingBytes == 0 {
		o.RingBytes = defaultRingSize
	}
	if o.ReserveBytes == 0 {
		o.ReserveBytes = min(int64(o.SegmentBytes), 4<<20)
	}
	if o.RingBytes > 0 && (o.RingBytes < ringMinBytes || o.RingBytes%ringBlock != 0) {
		return fmt.Errorf("wal: RingBytes %d is not a multiple of %d of at least %d", o.RingBytes, ringBlock, ringMinBytes)
	}
	if o.Sync > journal.SyncNever {
		return fmt.Errorf("wal: unknown sync policy %d", o.Sync)
	}
	return nil
}

// Recovery reports what Open found and did.
type Recovery struct {
	First, Last uint64 // the log's range after recovery
	Cut         *Cut   // non-nil if a torn tail (or, with Repair, corruption) was cut
	// Restored counts the records the segments lacked (a power loss took
	// them before they were fsynced there) and the sync ring gave back.
	Restored uint64
	Walked   int64 // bytes read to check the tail
	Took     time.Duration
}

// Log is a journal.Log on a directory. See the package comment.
type Log struct {
	dir, walDir string
	opts        Options
	lock        *dirlock.Lock
	recovery    Recovery
	stats       struct{ append, sync, group *journal.Histogram }

	tw     *twal.Log
	readMu sync.Mutex // serializes tidwall/wal reads: concurrent Reads race inside it (its issue #34)

	// The writer role. Whoever holds wtok (capacity 1) writes: an Append
	// queues its request, then either finds it committed or takes the role
	// and commits the oldest queued group itself, then gives the role back.
	// On an idle journal the appending goroutine writes and fsyncs its own
	// record: no hand-off to a writer goroutine and back, two wake-ups that
	// on a small VM cost as much as a third of the fsync. Under load the
	// requests queued during an fsync go out together with the next one.
	wtok  chan struct{}
	qmu   sync.Mutex
	queue []*request

	closeMu   sync.RWMutex // held shared while enqueueing or reading; exclusively to close
	closed    bool
	twClosed  bool // tidwall/wal is closed; owned by the writer role
	syncTimer *time.Timer
	// lazyTimer writes lazy records that no Append has taken along within
	// SyncInterval; lazyArmed says it is set.
	lazyTimer *time.Timer
	lazyArmed atomic.Bool

	first, last, durable atomic.Uint64
	ringTail             ringTail                      // what the ring held at Open; dropped once restored
	failure              atomic.Pointer[error]         // sticky: the first write or sync error
	lowSpace             atomic.Bool                   // the device ran out of space; the reserve is not back (space.go)
	reopened             atomic.Pointer[chan struct{}] // closed when the journal reopens after a full disk, or gives up
	parked               []*request                    // lazy requests refused for want of space, queued again on reopen (under qmu)
	spaceWG              sync.WaitGroup                // recoverSpace, which Close waits for
	closing              chan struct{}                 // closed by Close

	segMu sync.Mutex // guards man, tail and tailDurable, and orders manifest writes
	man   manifest
	tail  segInfo // the segment being written
	// tailDurable is how many of the tail segment's bytes are known to be
	// fsynced to it; what lies beyond is durable only in the sync ring.
	tailDurable int64

	// Owned by the writer role.
	next    uint64
	tb      twal.Batch
	buf     []byte
	offs    []int
	group   []*request
	pending []segInfo // segments sealed by the batch being written
	armed   bool      // syncTimer will fsync what is written
	// The sync ring (nil unless SyncAlways), and the frames written since
	// everything was last durable (lazy groups), which the next ring record
	// carries; pendOver says they outgrew a ring record, so the next sync
	// fsyncs the segment instead.
	ring     *ring
	pend     []byte
	pendOver bool
}

var (
	_ journal.Log            = (*Log)(nil)
	_ journal.Scanner        = (*Log)(nil)
	_ journal.Snapshotter    = (*Log)(nil)
	_ journal.SnapshotKeeper = (*Log)(nil)
	_ journal.Segmenter      = (*Log)(nil)
	_ journal.Syncer         = (*Log)(nil)
	_ journal.LazyAppender   = (*Log)(nil)
	_ journal.BatchLimiter   = (*Log)(nil)
	_ journal.SpaceGuard     = (*Log)(nil)
)

// request is one Append waiting for the writer. Requests are pooled, so an
// Append allocates nothing of its own.
type request struct {
	recs        []journal.Record
	lazy        bool // AppendLazy: no write or fsync of its own; nobody waits (the committer recycles it)
	bytes       int
	first, last uint64
	err         error
	done        chan struct{}
}

var requests = sync.Pool{New: func() any { return &request{done: make(chan struct{}, 1)} }}

// Open opens the journal in dir, creating it if needed. It takes the
// directory lock (failing with a *dirlock.LockedError naming the holder),
// checks the manifest's sealed segments are all there, reads the tail,
// cuts a torn last batch (keeping the bytes in a .broken file), and refuses
// corruption with a *journal.CorruptionError unless opts.Repair is set.
func Open(dir string, opts Options) (*Log, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	if opts.MaxRecordBytes+journal.HeaderSize+8+10 > opts.SegmentBytes {
		return nil, fmt.Errorf("wal: MaxRecordBytes %d does not fit in SegmentBytes %d", opts.MaxRecordBytes, opts.SegmentBytes)
	}
	start := time.Now()
	walDir := filepath.Join(dir, segmentDir)
	if err := mkdirDurable(walDir); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	var lock *dirlock.Lock
	if !opts.Locked {
		var err error
		if lock, err = dirlock.TryLock(dir); err != nil {
			return nil, err
		}
	}
	l := &Log{dir: dir, walDir: walDir, opts: opts, lock: lock, closing: make(chan struct{})}
	l.stats.append, l.stats.sync, l.stats.group = journal.NewHistogram(false), journal.NewHistogram(false), journal.NewHistogram(true)
	if opts.VerifyAll {
		if err := l.verifyAll(); err != nil {
			lock.Release()
			return nil, err
		}
	}
	// A disk that filled while no broker ran: the reserve makes room for
	// what opening writes (the manifest, a ring).
	if free, err := l.freeBytes(); err == nil && free < 1<<20 && l.releaseReserve() {
		l.lowSpace.Store(true)
		opts.Logger.Warn("journal: the disk is full at open; released the reserve", "dir", dir, "free_bytes", free)
	}
	// Under a replication lease the old master may still hold the ring
	// open: give this one a new file (as DetachTail does the tail).
	if err := l.openFiles(opts.Locked); err != nil {
		lock.Release()
		return nil, err
	}
	l.recovery.First, l.recovery.Last = l.first.Load(), l.last.Load()
	l.recovery.Took = time.Since(start)
	l.wtok = make(chan struct{}, 1)
	l.syncTimer = time.AfterFunc(time.Hour, l.timedSync)
	l.syncTimer.Stop()
	l.lazyTimer = time.AfterFunc(time.Hour, l.timedLazy)
	l.lazyTimer.Stop()
	if err := l.writeReserve(); err != nil || l.lowSpace.Load() {
		if err != nil && !isNoSpace(err) {
			l.Close()
			return nil, fmt.Errorf("wal: %w", err)
		}
		l.lowSpace.Store(true)
		l.opts.Logger.Warn("journal: no room for the reserve: the disk is full; persistent messages are refused until there is", "dir", dir, "err", err)
		l.spaceWG.Add(1)
		go func() { defer l.spaceWG.Done(); l.awaitReserve() }()
	}
	return l, nil
}

func (l *Log) twalOptions() *twal.Options {
	return &twal.Options{
		NoSync: true, SegmentSize: l.opts.SegmentBytes, LogFormat: twal.Binary,
		SegmentCacheSize: 2, AllowEmpty: true, DirPerms: journal.DirMode, FilePerms: journal.FileMode,
	}
}

// openFiles reads the ring, recovers the segments (crash rules), opens
// tidwall/wal on them, appends what the ring holds beyond them, and opens
// the ring again (a new file if freshRing). Open and reopen call it.
func (l *Log) openFiles(freshRing bool) error {
	var err error
	if l.ringTail, err = readRing(l.dir, l.opts.MaxRecordBytes); err != nil {
		return err
	}
	if err := l.recover(); err != nil {
		return err
	}
	l.tw, err = twal.Open(l.walDir, l.twalOptions())
	if err != nil {
		return fmt.Errorf("wal: open segments in %s: %w", l.walDir, err)
	}
	l.twClosed = false
	if twLast, _ := l.tw.LastIndex(); twLast != l.next-1 {
		l.tw.Close()
		l.twClosed = true
		return fmt.Errorf("wal: %s: tidwall/wal sees last index %d, the scan saw %d", l.walDir, twLast, l.next-1)
	}
	// After a kill -9 the tail's last records may be only in the page cache,
	// durable through the old ring alone: fsync them before it is cleared.
	err = l.restoreRing()
	if err == nil {
		if err = l.tw.Sync(); err != nil {
			err = fmt.Errorf("wal: fsync the tail segment at open: %w", err)
		}
	}
	if err == nil && l.opts.Sync == journal.SyncAlways && l.opts.RingBytes > 0 {
		l.ring, err = openRing(l.dir, l.opts.RingBytes, freshRing, !l.opts.Locked || l.opts.PreviousGone)
	}
	if err != nil {
		l.tw.Close()
		l.twClosed = true
		return err
	}
	l.tailDurable = l.tail.bytes
	l.durable.Store(l.next - 1)
	l.last.Store(l.next - 1)
	return nil
}

// Recovery reports what Open found and did.
func (l *Log) Recovery() Recovery { return l.recovery }

// Dir is the journal's directory.
func (l *Log) Dir() string { return l.dir }

func mkdirDurable(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, journal.DirMode); err != nil {
		return err
	}
	// Make the new entries durable up the tree as far as we created them.
	for d := dir; ; d = filepath.Dir(d) {
		parent := filepath.Dir(d)
		if parent == d {
			return nil
		}
		if err := syncDir(parent); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(parent, manifestName)); err == nil || filepath.Base(d) != segmentDir {
			return nil
		}
	}
}

// verifyAll checks every record before recover looks at the tail. Damage
// before the tail is refused, or with Repair cut.
func (l *Log) verifyAll() error {
	r, w, err := plan(l.dir, l.opts.MaxRecordBytes)
	if err != nil {
		return err
	}
	if r.Damage != nil {
		return r.Damage
	}
	if w == nil {
		return nil
	}
	if err := w.walk(w.files[0].first); err != nil {
		return err
	}
	l.recovery.Walked = r.Bytes
	if w.damage == nil || w.damage.torn {
		return nil // recover cuts a torn tail
	}
	if !l.opts.Repair {
		return fmt.Errorf("%w; run `cairn journal repair %s` to cut the log there (every record from index %d on is dropped)",
			w.corruption(), l.dir, w.good.last+1)
	}
	if l.opts.Locked {
		r, err = repairLocked(l.dir, l.opts.MaxRecordBytes)
	} else {
		l.lock.Release()
		r, err = Repair(l.dir, l.opts.MaxRecordBytes)
		if lock, lerr := dirlock.TryLock(l.dir); lerr == nil {
			l.lock = lock
		} else if err == nil {
			err = lerr
		}
	}
	if err == nil {
		l.recovery.Cut = r.Cut
	}
	return err
}

// recover reconciles the manifest with the segment files and checks the
// tail. It sets l.man, l.tail, l.first, l.last and l.next.
func (l *Log) recover() error {
	man, err := readManifest(l.dir)
	if err != nil {
		return err
	}
	files, err := listSegments(l.walDir)
	if err != nil {
		return err
	}
	changed := false
	if man == nil {
		man = &manifest{first: 1}
		if len(files) > 0 {
			man.first = files[0].first
		}
		changed = true
	}
	if man.first == 0 {
		return &journal.CorruptionError{Path: filepath.Join(l.dir, manifestName), Reason: "manifest says the log starts at index 0"}
	}
	// Sealed segments wholly before the first index are left over from an
	// interrupted truncation.
	byFirst := make(map[uint64]segFile, len(files))
	for _, f := range files {
		byFirst[f.first] = f
	}
	live := man.sealed[:0:0]
	for _, s := range man.sealed {
		if s.last < man.first {
			if f, ok := byFirst[s.first]; ok {
				if err := os.Remove(f.path); err != nil {
					return fmt.Errorf("wal: remove truncated segment: %w", err)
				}
				delete(byFirst, s.first)
			}
			changed = true
			continue
		}
		live = append(live, s)
	}
	man.sealed = live
	var walk []segFile
	for i, s := range man.sealed {
		f, ok := byFirst[s.first]
		path := filepath.Join(l.walDir, s.name())
		switch {
		case !ok:
			return &journal.CorruptionError{Path: path, Index: s.first,
				Reason: fmt.Sprintf("sealed segment holding records %d-%d is missing", s.first, s.last)}
		case f.size != s.bytes:
			return &journal.CorruptionError{Path: path, Offset: min(f.size, s.bytes), Index: s.first,
				Reason: fmt.Sprintf("sealed segment is %d bytes, the manifest says %d", f.size, s.bytes)}
		case i > 0 && s.first != man.sealed[i-1].last+1:
			return &journal.CorruptionError{Path: path, Index: man.sealed[i-1].last + 1,
				Reason: fmt.Sprintf("manifest jumps from record %d to segment starting at %d", man.sealed[i-1].last, s.first)}
		}
		delete(byFirst, s.first)
	}
	// What is left is the unsealed tail: normally one file, two after a
	// crash between a segment roll and the manifest update. A segment is
	// sealed only after its successor was created and the directory synced,
	// so the file after the last sealed one must be there.
	var lastSealed uint64
	if n := len(man.sealed); n > 0 {
		lastSealed = man.sealed[n-1].last
		if _, ok := byFirst[lastSealed+1]; !ok {
			return &journal.CorruptionError{Path: filepath.Join(l.walDir, segmentName(lastSealed+1)), Index: lastSealed + 1,
				Reason: "the segment after the last sealed one is missing"}
		}
		s := man.sealed[n-1]
		walk = append(walk, segFile{first: s.first, path: filepath.Join(l.walDir, s.name()), size: s.bytes})
	}
	for _, f := range files {
		if _, ok := byFirst[f.first]; !ok {
			continue
		}
		if len(man.sealed) > 0 && f.first <= lastSealed {
			return &journal.CorruptionError{Path: f.path, Index: f.first,
				Reason: fmt.Sprintf("segment file inside the sealed range (which ends at %d) but not in the manifest", lastSealed)}
		}
		walk = append(walk, f)
	}
	if len(walk) == 0 {
		if man.first != 1 || len(man.sealed) > 0 {
			return &journal.CorruptionError{Path: l.walDir, Index: man.first, Reason: "no segment files, but the manifest says the log starts at " + fmt.Sprint(man.first)}
		}
		// A new journal: tidwall/wal creates the first segment.
		l.segMu.Lock() // Segments reads them while a reopen runs
		l.man, l.tail = *man, segInfo{first: 1}
		l.segMu.Unlock()
		l.first.Store(1)
		l.next = 1
		return writeManifest(l.dir, &l.man)
	}

	w := &walker{files: walk, maxRecord: l.opts.MaxRecordBytes}
	fileLast := make([]uint64, len(walk))
	w.visit = func(f *journal.Frame, file int, _ int64) error {
		fileLast[file] = f.Index
		return nil
	}
	if err := w.walk(walk[0].first); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	for _, f := range walk {
		l.recovery.Walked += f.size
	}
	if w.damage != nil {
		if !w.damage.torn && !l.opts.Repair {
			return fmt.Errorf("%w; run `cairn journal repair %s` to cut the log there (every record from index %d on is dropped)",
				w.corruption(), l.dir, w.good.last+1)
		}
		cut := w.planCut()
		if cut == nil {
			return fmt.Errorf("%w; no batch boundary before it in the checked segments, so it cannot be cut safely", w.corruption())
		}
		if err := w.applyCut(l.dir, cut); err != nil {
			return fmt.Errorf("wal: cutting %s: %w", cut, err)
		}
		l.recovery.Cut = cut
		l.opts.Logger.Warn("journal: cut a damaged tail", "dir", l.dir, "file", cut.Path, "offset", cut.Offset,
			"first_dropped", cut.FirstDropped, "last_dropped", cut.LastDropped, "bytes", cut.Bytes,
			"reason", cut.Reason, "kept_in", cut.Broken)
		// Files after the cut are gone; the cut file is the new tail.
		walk = walk[:w.good.file+1]
		walk[w.good.file].size = w.good.off
		fileLast[w.good.file] = w.good.last
		changed = true
	}
	last := w.good.last
	if w.damage == nil {
		last = w.parsed
	}
	// Every walked file but the last is sealed.
	sealed := man.sealed
	if len(sealed) > 0 {
		sealed = sealed[:len(sealed)-1]
	}
	for i, f := range walk[:len(walk)-1] {
		sealed = append(sealed, segInfo{first: f.first, last: fileLast[i], bytes: f.size})
	}
	if len(sealed) != len(man.sealed) {
		changed = true
	}
	man.sealed = sealed
	tf := walk[len(walk)-1]
	l.segMu.Lock() // Segments reads them while a reopen runs
	l.man = *man
	l.tail = segInfo{first: tf.first, last: max(last, tf.first-1), bytes: tf.size}
	l.segMu.Unlock()
	if t := l.ringTail; last+1 < man.first && (t.empty() || t.first > last+1 || t.last+1 < man.first) {
		return &journal.CorruptionError{Path: tf.path, Index: last + 1,
			Reason: fmt.Sprintf("the log ends at %d, before its first index %d", last, man.first)}
	}
	l.first.Store(man.first)
	l.last.Store(last)
	l.next = last + 1
	if changed {
		return writeManifest(l.dir, &l.man)
	}
	return nil
}

// Stats implements journal.StatsReporter: Appends (the call to its
// confirmation), the syncs of group commits under SyncAlways, and the
// records each group commit wrote.
func (l *Log) Stats() journal.Stats {
	return journal.Stats{Append: l.stats.append.Snapshot(), Sync: l.stats.sync.Snapshot(), GroupRecords: l.stats.group.Snapshot()}
}

// Append implements journal.Log. An append refused because the device is
// full is tried once more when the journal has reopened (space.go), within
// spaceWait: what it refused is never kept, so the second try is the only.
func (l *Log) Append(ctx context.Context, recs []journal.Record) (uint64, uint64, error) {
	first, last, err := l.append(ctx, recs)
	if errors.Is(err, journal.ErrNoSpace) && l.awaitReopen(ctx) {
		first, last, err = l.append(ctx, recs)
	}
	return first, last, err
}

func (l *Log) append(ctx context.Context, recs []journal.Record) (uint64, uint64, error) {
	start := time.Now()
	req, err := l.enqueue(ctx, recs, false)
	if err != nil {
		return 0, 0, err
	}
	defer func() { l.stats.append.ObserveDuration(time.Since(start)) }()
	for waiting := true; waiting; {
		select {
		case <-req.done:
			waiting = false
		default:
			select {
			case <-req.done:
				waiting = false
			case l.wtok <- struct{}{}:
				l.commitQueued()
				<-l.wtok
			}
		}
	}
	first, last, err := req.first, req.last, req.err
	req.recs, req.err = nil, nil
	requests.Put(req)
	return first, last, err
}

// AppendLazy implements journal.LazyAppender: the records wait in the queue
// for the next group (or lazyTimer), so they cost no write of their own,
// and no fsync: under SyncAlways the next group with an ordinary Append
// makes them durable, or syncTimer does, SyncInterval after they are
// written.
func (l *Log) AppendLazy(ctx context.Context, recs []journal.Record) error {
	if _, err := l.enqueue(ctx, recs, true); err != nil {
		return err
	}
	if l.lazyArmed.CompareAndSwap(false, true) {
		l.lazyTimer.Reset(l.opts.SyncInterval)
	}
	return nil
}

// BatchLimit implements journal.BatchLimiter: one Append holds at most a
// segment's bytes.
func (l *Log) BatchLimit() journal.BatchLimit {
	return journal.BatchLimit{Bytes: l.opts.SegmentBytes}
}

// enqueue checks recs and queues them for the writer role.
func (l *Log) enqueue(ctx context.Context, recs []journal.Record, lazy bool) (*request, error) {
	if err := journal.ValidateBatch(recs, l.opts.MaxRecordBytes); err != nil {
		return nil, err
	}
	frames, size := 0, 0
	for i := range recs {
		n := journal.FrameSize(&recs[i])
		frames += n
		size += n + uvarintLen(n)
	}
	if frames > l.opts.SegmentBytes {
		return nil, fmt.Errorf("%w: %d bytes, over the %d of a segment, the most one append may hold", journal.ErrBatchTooLarge, frames, l.opts.SegmentBytes)
	}
	if err := l.failure.Load(); err != nil {
		return nil, *err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req := requests.Get().(*request)
	req.recs, req.bytes, req.lazy = recs, size, lazy
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if l.closed {
		req.recs = nil
		requests.Put(req)
		return nil, journal.ErrClosed
	}
	l.qmu.Lock()
	l.queue = append(l.queue, req)
	l.qmu.Unlock()
	return req, nil
}

func uvarintLen(n int) int {
	k := 1
	for n >= 0x80 {
		n >>= 7
		k++
	}
	return k
}

// commitQueued commits the oldest queued requests, up to MaxBatchBytes
// (at least one), with one write and (under SyncAlways) one sync. The
// caller holds the writer role. It returns how many it committed.
func (l *Log) commitQueued() int {
	l.qmu.Lock()
	n, size := 0, 0
	for n < len(l.queue) && (n == 0 || size+l.queue[n].bytes <= l.opts.MaxBatchBytes) {
		size += l.queue[n].bytes
		n++
	}
	group := append(l.group[:0], l.queue[:n]...)
	rest := copy(l.queue, l.queue[n:])
	clear(l.queue[rest:])
	l.queue = l.queue[:rest]
	l.qmu.Unlock()
	if len(group) > 0 {
		l.commit(group)
	}
	return len(group)
}

// timedLazy is lazyTimer's: it writes the lazy records queued before it,
// with whatever is queued among them.
func (l *Log) timedLazy() {
	l.lazyArmed.Store(false)
	l.wtok <- struct{}{}
	defer func() { <-l.wtok }()
	if !l.twClosed {
		l.commitQueuedNow()
	}
}

// commitQueuedNow commits every request queued before the call (and what
// shares a group with them). The caller holds the writer role.
func (l *Log) commitQueuedNow() {
	l.qmu.Lock()
	n := len(l.queue)
	l.qmu.Unlock()
	for n > 0 {
		k := l.commitQueued()
		if k == 0 {
			return
		}
		n -= k
	}
}

// timedSync is syncTimer's fsync, under SyncInterval or of lazy records.
func (l *Log) timedSync() {
	l.wtok <- struct{}{}
	defer func() { <-l.wtok }()
	if l.twClosed {
		return
	}
	l.armed = false
	l.syncNow()
}

// commit writes one group: frames, one tidwall/wal WriteBatch, segment-roll
// bookkeeping, the sync the policy asks for, then wakes every appender.
func (l *Log) commit(group []*request) {
	defer func() {
		for _, r := range group {
			if r.lazy {
				if errors.Is(r.err, journal.ErrNoSpace) {
					l.park(r) // written once the journal reopens
					continue
				}
				r.recs, r.err = nil, nil // nobody waits: an error is sticky and logged
				requests.Put(r)
			} else {
				r.done <- struct{}{}
			}
		}
		clear(group)
		l.group = group[:0]
	}()
	if err := l.failure.Load(); err != nil {
		for _, r := range group {
			r.err = *err
		}
		return
	}
	l.buf, l.offs = l.buf[:0], l.offs[:0]
	from, idx := l.next, l.next
	for _, r := range group {
		if err := checkMoved(r.recs, idx); err != nil {
			r.err = err
			continue
		}
		r.first = idx
		for i := range r.recs {
			l.offs = append(l.offs, len(l.buf))
			l.buf = journal.AppendFrame(l.buf, idx, journal.BatchFlags(i, len(r.recs)), &r.recs[i])
			idx++
		}
		r.last = idx - 1
	}
	if idx == from {
		return // every request was refused
	}
	l.offs = append(l.offs, len(l.buf))
	l.stats.group.ObserveCount(int(idx - from))
	if err := l.writeBuf(idx); err != nil {
		var ge *gateError
		switch {
		case errors.As(err, &ge):
			l.fence(group, ge.cause)
		case isNoSpace(err):
			l.noSpace(group, fmt.Errorf("write records %d-%d: %w", from, idx-1, err))
		default:
			l.fail(group, fmt.Errorf("write records %d-%d: %w", from, idx-1, err))
		}
		return
	}
	eager := false
	for _, r := range group {
		eager = eager || !r.lazy && r.err == nil
	}
	switch {
	case l.opts.Sync == journal.SyncAlways && eager:
		t0 := time.Now()
		err := l.syncWritten()
		l.stats.sync.ObserveDuration(time.Since(t0))
		if err != nil {
			l.fail(group, fmt.Errorf("fsync records %d-%d: %w", from, idx-1, err))
			return
		}
		if err := l.gate(); err != nil {
			// Written, perhaps durable, but not confirmed: the writer that
			// took over may not have replayed it.
			l.fence(group, err)
			return
		}
		l.durable.Store(idx - 1)
	case l.opts.Sync != journal.SyncNever:
		// SyncInterval, or only lazy records under SyncAlways: fsync soon.
		l.keepPending()
		if !l.armed {
			l.syncTimer.Reset(l.opts.SyncInterval)
			l.armed = true
		}
	}
	l.last.Store(idx - 1)
}

// gateError is a Gate refusal met while writing: it fences the log rather
// than failing it.
type gateError struct{ cause error }

func (e *gateError) Error() string { return "gate: " + e.cause.Error() }

// writeBuf writes the frames in l.buf (l.offs holds their boundaries),
// records l.next to end-1, through tidwall/wal, keeps the segment
// bookkeeping (sealing segments in the manifest) and advances l.next. It
// does not fsync the tail segment. The caller holds the writer role.
func (l *Log) writeBuf(end uint64) error {
	if err := l.gate(); err != nil {
		return &gateError{err}
	}
	// Mirror tidwall/wal's segment rolls (its writeBatch): a new segment
	// before the batch if the tail is over size, and after any entry that
	// brings it to size.
	tail := l.tail
	l.tb.Clear()
	l.pending = l.pending[:0]
	if tail.bytes > int64(l.opts.SegmentBytes) {
		l.pending = append(l.pending, tail)
		tail = segInfo{first: l.next, last: l.next - 1}
	}
	for j := 0; j+1 < len(l.offs); j++ {
		frame := l.buf[l.offs[j]:l.offs[j+1]]
		i := l.next + uint64(j)
		l.tb.Write(i, frame)
		tail.bytes += int64(uvarintLen(len(frame)) + len(frame))
		tail.last = i
		if tail.bytes >= int64(l.opts.SegmentBytes) {
			l.pending = append(l.pending, tail)
			tail = segInfo{first: i + 1, last: i}
		}
	}
	if err := l.tw.WriteBatch(&l.tb); err != nil {
		return err
	}
	if len(l.pending) > 0 {
		// New segment files exist (tidwall/wal fsynced each one it sealed):
		// make their directory entries durable, then record the sealed ones.
		if err := l.gate(); err != nil {
			return &gateError{err}
		}
		err := syncDir(l.walDir)
		if err == nil {
			l.segMu.Lock()
			l.man.sealed = append(l.man.sealed, l.pending...)
			err = writeManifest(l.dir, &l.man)
			l.segMu.Unlock()
		}
		if err != nil {
			return fmt.Errorf("seal segment: %w", err)
		}
	}
	l.segMu.Lock()
	if tail.first != l.tail.first {
		l.tailDurable = 0 // a new file; tidwall/wal fsynced the ones it sealed
	}
	l.tail = tail
	l.segMu.Unlock()
	l.next = end
	return nil
}

// syncWritten makes every record written so far durable, after a group
// whose frames are in l.buf: with one sync ring record (those frames, after
// any lazy ones before them) when it fits, otherwise by fsyncing the tail
// segment, after which the ring starts over.
func (l *Log) syncWritten() error {
	if r := l.ring; r != nil && !l.pendOver && r.fits(len(l.pend)+len(l.buf)) {
		first := l.durable.Load() + 1
		err := r.write(first, int(l.next-first), l.pend, l.buf)
		l.pend = l.pend[:0]
		return err
	}
	return l.syncSegments()
}

// syncSegments fsyncs the tail segment: everything written is durable in
// the segments, and the ring, if any, starts over.
func (l *Log) syncSegments() error {
	if err := l.tw.Sync(); err != nil {
		return err
	}
	l.segMu.Lock()
	l.tailDurable = l.tail.bytes
	l.segMu.Unlock()
	l.pend, l.pendOver = l.pend[:0], false
	if l.ring != nil {
		l.ring.restart()
	}
	return nil
}

// keepPending keeps a lazy group's frames (l.buf) for the next ring record,
// or notes that they are too many for one.
func (l *Log) keepPending() {
	if l.ring == nil || l.pendOver {
		return
	}
	if len(l.pend)+len(l.buf) > l.ring.maxPayload() {
		l.pend, l.pendOver = l.pend[:0], true
		return
	}
	l.pend = append(l.pend, l.buf...)
}

// restoreRing appends to the segments the records the sync ring holds
// beyond them, and fsyncs them, before the ring is used again. Open calls
// it once tidwall/wal is open.
func (l *Log) restoreRing() error {
	t := l.ringTail
	l.ringTail = ringTail{}
	last := l.next - 1
	if t.empty() || t.last <= last {
		return nil
	}
	if t.first > last+1 {
		if !l.opts.Repair {
			return fmt.Errorf("%w; `cairn journal repair %s` sets the ring aside (dropping records %d-%d)",
				t.gapError(last), l.dir, t.first, t.last)
		}
		broken, err := setAsideRing(l.dir)
		if err != nil {
			return fmt.Errorf("wal: set the sync ring aside: %w", err)
		}
		l.opts.Logger.Warn("journal: set aside a sync ring that does not follow on from the segments",
			"dir", l.dir, "last", last, "ring_first", t.first, "ring_last", t.last, "kept_in", broken)
		return nil
	}
	frames := t.frames[last+1-t.first:]
	// Segments that hold records end after a whole batch. (An empty log may
	// start inside one: TruncateFront can move the first index there.)
	f, _ := journal.DecodeFrame(frames[0], l.opts.MaxRecordBytes)
	if last >= l.first.Load() && f.Flags&journal.FlagBatchStart == 0 {
		return &journal.CorruptionError{Path: t.path, Index: last + 1,
			Reason: fmt.Sprintf("the segments end at record %d, inside a batch the sync ring holds", last)}
	}
	l.buf, l.offs = l.buf[:0], l.offs[:0]
	for _, f := range frames {
		l.offs = append(l.offs, len(l.buf))
		l.buf = append(l.buf, f...)
	}
	l.offs = append(l.offs, len(l.buf))
	if err := l.writeBuf(t.last + 1); err != nil {
		return fmt.Errorf("wal: restore records %d-%d from the sync ring: %w", last+1, t.last, err)
	}
	l.last.Store(t.last)
	l.recovery.Restored = t.last - last
	l.opts.Logger.Warn("journal: restored records the segments lacked from the sync ring",
		"dir", l.dir, "first", last+1, "last", t.last)
	return nil
}

func checkMoved(recs []journal.Record, first uint64) error {
	for i := range recs {
		if m := recs[i].Moved; m >= first+uint64(i) {
			return fmt.Errorf("%w: record %d of batch is a moved copy of %d, which is not before it", journal.ErrInvalidRecord, i, m)
		}
	}
	return nil
}

// syncNow fsyncs under SyncInterval and SyncNever.
func (l *Log) syncNow() error {
	if err := l.failure.Load(); err != nil {
		return *err
	}
	if err := l.syncSegments(); err != nil {
		l.fail(nil, fmt.Errorf("fsync: %w", err))
		return *l.failure.Load()
	}
	l.durable.Store(l.next - 1)
	return nil
}

// gate asks Options.Gate whether this log may still write.
func (l *Log) gate() error {
	if l.opts.Gate == nil {
		return nil
	}
	return l.opts.Gate()
}

// fence makes a Gate refusal sticky, as fail does for an I/O error.
func (l *Log) fence(group []*request, cause error) {
	err := fmt.Errorf("%w: %s: %w", journal.ErrFenced, l.dir, cause)
	if l.failure.CompareAndSwap(nil, &err) {
		l.opts.Logger.Error("journal: fenced; refusing appends", "dir", l.dir, "err", err)
	}
	err = *l.failure.Load()
	for _, r := range group {
		r.err = err
	}
}

// fail makes err sticky: from now on every Append fails with it, until the
// journal is closed and reopened (which re-checks the tail).
func (l *Log) fail(group []*request, err error) {
	err = fmt.Errorf("%w: %s: %w", journal.ErrFailed, l.dir, err)
	l.failure.CompareAndSwap(nil, &err)
	err = *l.failure.Load()
	l.opts.Logger.Error("journal: write failed; refusing appends until reopened", "dir", l.dir, "err", err)
	for _, r := range group {
		r.err = err
	}
}

// Sync implements journal.Syncer: it writes the lazy records still queued
// and makes every record appended before the call durable.
func (l *Log) Sync() error {
	l.closeMu.RLock()
	if l.closed {
		l.closeMu.RUnlock()
		return journal.ErrClosed
	}
	defer l.closeMu.RUnlock()
	l.wtok <- struct{}{}
	defer func() { <-l.wtok }()
	l.commitQueuedNow()
	return l.syncNow()
}

// DurableIndex implements journal.Syncer.
func (l *Log) DurableIndex() uint64 { return l.durable.Load() }

// Read implements journal.Log. It checks the record's CRC and index.
func (l *Log) Read(index uint64) (journal.Record, error) {
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if l.closed {
		return journal.Record{}, journal.ErrClosed
	}
	if first, last := l.first.Load(), l.last.Load(); index < first || index > last {
		return journal.Record{}, fmt.Errorf("%w: index %d outside [%d, %d]", journal.ErrNotFound, index, first, last)
	}
	data, err := l.readEntry(index)
	if err != nil {
		return journal.Record{}, l.readError(index, err.Error())
	}
	f, err := journal.DecodeFrame(data, l.opts.MaxRecordBytes)
	if err == nil && f.Index != index {
		err = fmt.Errorf("frame says index %d", f.Index)
	}
	if err != nil {
		return journal.Record{}, l.readError(index, err.Error())
	}
	return f.Record, nil
}

func (l *Log) readEntry(index uint64) (data []byte, err error) {
	l.readMu.Lock()
	defer l.readMu.Unlock()
	defer func() {
		// tidwall/wal panics on some damage (a segment shorter than its
		// neighbours imply); report it as corruption instead.
		if p := recover(); p != nil {
			err = fmt.Errorf("tidwall/wal: %v", p)
		}
	}()
	return l.tw.Read(index)
}

func (l *Log) readError(index uint64, reason string) error {
	path := l.walDir
	off := int64(-1)
	l.segMu.Lock()
	for _, s := range append(l.man.sealed, l.tail) {
		if index >= s.first && index <= max(s.last, s.first) {
			path = filepath.Join(l.walDir, s.name())
		}
	}
	l.segMu.Unlock()
	return &journal.CorruptionError{Path: path, Offset: off, Index: index, Reason: "reading record: " + reason}
}

// TruncateFront implements journal.Log. It records the new first index in
// the manifest, then deletes segment files that lie wholly before it; it
// never rewrites a segment.
func (l *Log) TruncateFront(index uint64) error {
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if l.closed {
		return journal.ErrClosed
	}
	l.segMu.Lock()
	first, last := l.first.Load(), l.last.Load()
	if index < first || index > last+1 {
		l.segMu.Unlock()
		return fmt.Errorf("%w: truncate to %d outside [%d, %d]", journal.ErrNotFound, index, first, last+1)
	}
	if index == first {
		l.segMu.Unlock()
		return nil
	}
	var drop []segInfo
	keep := l.man.sealed
	for len(keep) > 0 && keep[0].last < index {
		drop = append(drop, keep[0])
		keep = keep[1:]
	}
	next := manifest{first: index, sealed: keep}
	if err := l.failure.Load(); err != nil {
		l.segMu.Unlock()
		return *err
	}
	if err := l.gate(); err != nil {
		l.segMu.Unlock()
		l.fence(nil, err)
		return *l.failure.Load()
	}
	if err := writeManifest(l.dir, &next); err != nil {
		l.segMu.Unlock()
		err = fmt.Errorf("%w: truncate: %w", journal.ErrFailed, err)
		l.failure.CompareAndSwap(nil, &err)
		return err
	}
	l.man = next
	l.first.Store(index)
	l.segMu.Unlock()
	if len(drop) == 0 {
		return nil
	}
	l.readMu.Lock()
	defer l.readMu.Unlock()
	for _, s := range drop {
		if err := os.Remove(filepath.Join(l.walDir, s.name())); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("wal: truncate: %w (the next open removes it)", err)
		}
	}
	l.tw.ClearCache()
	return syncDir(l.walDir)
}

// FirstIndex implements journal.Log.
func (l *Log) FirstIndex() uint64 { return l.first.Load() }

// LastIndex implements journal.Log.
func (l *Log) LastIndex() uint64 { return l.last.Load() }

// Segments implements journal.Segmenter.
func (l *Log) Segments() []journal.Segment {
	l.segMu.Lock()
	defer l.segMu.Unlock()
	first := l.first.Load()
	out := make([]journal.Segment, 0, len(l.man.sealed)+1)
	for _, s := range append(l.man.sealed, l.tail) {
		out = append(out, journal.Segment{First: max(s.first, first), Last: s.last, Bytes: s.bytes,
			Name: filepath.Join(segmentDir, s.name())})
	}
	return out
}

// Scan implements journal.Scanner by reading the segment files directly,
// checking every CRC, index and batch on the way.
func (l *Log) Scan(from uint64, fn func(journal.Record) error) error {
	l.closeMu.RLock()
	if l.closed {
		l.closeMu.RUnlock()
		return journal.ErrClosed
	}
	l.segMu.Lock()
	first, last := l.first.Load(), l.last.Load()
	var files []segFile
	for _, s := range append(l.man.sealed, l.tail) {
		if s.last >= from || s == l.tail {
			files = append(files, segFile{first: s.first, path: filepath.Join(l.walDir, s.name()), size: s.bytes})
		}
	}
	l.segMu.Unlock()
	l.closeMu.RUnlock()
	if from < first {
		return fmt.Errorf("%w: scan from %d, the log starts at %d", journal.ErrNotFound, from, first)
	}
	if from > last {
		return nil
	}
	return scanFiles(files, l.opts.MaxRecordBytes, from, last, fn)
}

// scanFiles calls fn for records from..last of files, which begin at a
// segment boundary.
func scanFiles(files []segFile, maxRecord int, from, last uint64, fn func(journal.Record) error) error {
	w := &walker{files: files, maxRecord: maxRecord}
	w.visit = func(f *journal.Frame, _ int, _ int64) error {
		if f.Index > last {
			return errStop
		}
		if f.Index < from {
			return nil
		}
		return fn(f.Record)
	}
	err := w.walk(files[0].first)
	if err == errStop {
		return nil
	}
	if err != nil {
		return err
	}
	if w.damage != nil && w.damage.index <= last {
		return w.corruption()
	}
	return nil
}

// Close implements journal.Log: it writes what is queued, fsyncs, closes the
// segment files and releases the directory lock.
func (l *Log) Close() error {
	l.closeMu.Lock()
	if l.closed {
		l.closeMu.Unlock()
		return journal.ErrClosed
	}
	l.closed = true
	close(l.closing)
	l.closeMu.Unlock()
	// Nothing more is queued: take the writer role from whoever holds it,
	// commit what is left, fsync and close.
	l.lazyTimer.Stop()
	l.wtok <- struct{}{}
	for l.commitQueued() > 0 {
	}
	var err error
	if l.failure.Load() == nil {
		err = l.tw.Sync()
		if err == nil && l.ring != nil {
			// Everything is in the segments: the ring holds nothing more.
			err = l.ring.clear()
		}
	}
	if l.ring != nil {
		if cerr := l.ring.close(); err == nil {
			err = cerr
		}
	}
	if cerr := l.tw.Close(); err == nil && !errors.Is(cerr, twal.ErrClosed) {
		err = cerr
	}
	l.twClosed = true
	<-l.wtok
	l.syncTimer.Stop()
	l.spaceWG.Wait()
	if rerr := l.lock.Release(); err == nil {
		err = rerr
	}
	return err
}
