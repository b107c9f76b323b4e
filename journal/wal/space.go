// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package wal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	twal "github.com/tidwall/wal"

	"github.com/cairnmq/cairn/journal"
)

// A full disk is not a failure of the disk. When a write of the segments
// (or of the manifest) fails with ENOSPC, the journal:
//
//  1. refuses that group's appends with an error wrapping journal.ErrNoSpace
//     (nothing of it is confirmed, and nothing of it will be read back);
//  2. deletes DIR/RESERVE, a file of Options.ReserveBytes it wrote when there
//     was room, so that what the owner still must write (acknowledgements of
//     stored messages) has space, and reports LowOnSpace until the reserve
//     can be written again;
//  3. reopens itself: cuts the files back to what was confirmed (the failed
//     group's bytes, torn or whole, go) and opens them again as Open does,
//     crash rules and all, without a restart. If the reopen itself finds no
//     room, it is tried again every second.
//
// Once the device has room for the reserve four times over, the reserve is
// written again and LowOnSpace is false. Other write errors (EIO) and every
// failed fsync stay fail-stop: after a failed fsync the page cache is not
// to be trusted.

const reserveName = "RESERVE"

// spaceRetry is how often a journal short of space looks again.
const spaceRetry = time.Second

// spaceWait is how long an append refused for want of space waits for the
// journal to reopen before it gives up.
const spaceWait = 5 * time.Second

// minReopenFree is the room a reopen after a full disk waits for.
const minReopenFree = 256 << 10

// isNoSpace reports whether err is the device being full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// LowOnSpace implements journal.SpaceGuard: the journal's device ran out of
// space and its reserve is not back yet. The owner should refuse new data
// (persistent messages) and write only what frees or settles space (acks).
func (l *Log) LowOnSpace() bool { return l.lowSpace.Load() }

// freeBytes is what the device holding the journal has free for it.
func (l *Log) freeBytes() (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(l.dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// writeReserve writes DIR/RESERVE, ReserveBytes of zeros, if it is not
// there. It is called at Open and when space has come back.
func (l *Log) writeReserve() error {
	if l.opts.ReserveBytes <= 0 {
		return nil
	}
	path := filepath.Join(l.dir, reserveName)
	if fi, err := os.Stat(path); err == nil && fi.Size() == l.opts.ReserveBytes {
		return nil
	}
	if err := writeFileAtomic(path, make([]byte, l.opts.ReserveBytes)); err != nil {
		return err
	}
	return nil
}

// releaseReserve deletes DIR/RESERVE; it reports whether there was one.
func (l *Log) releaseReserve() bool {
	err := os.Remove(filepath.Join(l.dir, reserveName))
	return err == nil
}

// noSpace makes the write error err, which is the device being full,
// sticky for group and starts the recovery (recoverSpace), once.
func (l *Log) noSpace(group []*request, err error) {
	err = fmt.Errorf("%w: %s: %w", journal.ErrNoSpace, l.dir, err)
	// Every failure is set by the writer role's holder, the caller: no race.
	if l.failure.Load() == nil {
		reopened := make(chan struct{})
		l.reopened.Store(&reopened)
		l.failure.Store(&err)
		l.lowSpace.Store(true)
		l.opts.Logger.Error("journal: the disk is full; refusing appends until the journal is reopened", "dir", l.dir, "err", err)
		l.spaceWG.Add(1)
		go l.recoverSpace()
	}
	err = *l.failure.Load()
	for _, r := range group {
		r.err = err
	}
}

// awaitReopen waits, within spaceWait, for the journal to reopen after a
// full disk; it reports whether it did.
func (l *Log) awaitReopen(ctx context.Context) bool {
	ch := l.reopened.Load()
	if ch == nil {
		return false
	}
	t := time.NewTimer(spaceWait)
	defer t.Stop()
	select {
	case <-*ch:
		return l.failure.Load() == nil
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// park keeps a lazy request that was refused for want of space, to be
// queued again when the journal reopens. The caller holds the writer role.
func (l *Log) park(r *request) {
	r.err = nil
	l.qmu.Lock()
	l.parked = append(l.parked, r)
	l.qmu.Unlock()
}

// unpark queues the parked requests again, ahead of what came since.
func (l *Log) unpark() {
	l.qmu.Lock()
	n := len(l.parked)
	if n > 0 {
		l.queue = append(l.parked, l.queue...)
		l.parked = nil
	}
	l.qmu.Unlock()
	if n > 0 && l.lazyArmed.CompareAndSwap(false, true) {
		l.lazyTimer.Reset(l.opts.SyncInterval)
	}
}

// recoverSpace frees the reserve, reopens the journal once it can, and then
// waits for room to write the reserve again. Appends waiting for the reopen
// are woken however it ends.
func (l *Log) recoverSpace() {
	defer l.spaceWG.Done()
	reopened, woken := *l.reopened.Load(), false
	defer func() {
		if !woken {
			close(reopened)
		}
	}()
	if l.releaseReserve() {
		l.opts.Logger.Warn("journal: released the reserve so that acknowledgements can be written", "dir", l.dir,
			"bytes", l.opts.ReserveBytes)
	}
	for attempt := 0; ; attempt++ {
		// With no reserve left to free, a reopen waits for some room: one
		// now would only meet the full disk again.
		var err error
		if free, ferr := l.freeBytes(); ferr == nil && free < minReopenFree {
			err = fmt.Errorf("%w: %d bytes free", syscall.ENOSPC, free)
		} else {
			err = l.reopen()
		}
		switch {
		case err == nil:
			l.opts.Logger.Warn("journal: reopened after the disk was full; appending again", "dir", l.dir,
				"last", l.last.Load(), "attempts", attempt+1)
			close(reopened)
			woken = true
			l.awaitReserve()
			return
		case errors.Is(err, journal.ErrClosed):
			return
		case !isNoSpace(err):
			l.opts.Logger.Error("journal: could not reopen after the disk was full; refusing appends", "dir", l.dir, "err", err)
			return
		case attempt == 0:
			l.opts.Logger.Warn("journal: no room to reopen yet; trying every second", "dir", l.dir, "err", err)
		}
		if !l.sleep(spaceRetry) {
			return
		}
	}
}

// awaitReserve waits until the device has room for the reserve four times
// over, writes it, and ends LowOnSpace.
func (l *Log) awaitReserve() {
	for {
		free, err := l.freeBytes()
		if err == nil && free >= 4*l.opts.ReserveBytes {
			if err = l.writeReserve(); err == nil {
				l.lowSpace.Store(false)
				l.opts.Logger.Warn("journal: space is back; the reserve is written again", "dir", l.dir, "free_bytes", free)
				return
			}
		}
		if !l.sleep(spaceRetry) {
			return
		}
	}
}

// sleep waits d, or less if the journal closes; it reports whether the
// journal is still open.
func (l *Log) sleep(d time.Duration) bool {
	select {
	case <-l.closing:
		return false
	case <-time.After(d):
		return true
	}
}

// reopen cuts the segment files back to what was confirmed and opens them
// again, as Open does, crash rules and all. It holds closeMu, then the
// writer role (the order Sync takes them in): reads and appends wait for
// it. On success the log appends again; on failure it stays failed,
// readable where tidwall/wal could be opened again.
func (l *Log) reopen() error {
	l.closeMu.Lock()
	defer l.closeMu.Unlock()
	if l.closed {
		return journal.ErrClosed
	}
	l.wtok <- struct{}{}
	defer func() { <-l.wtok }()
	if !l.twClosed {
		l.tw.Close()
		l.twClosed = true
	}
	if l.ring != nil {
		l.ring.close()
		l.ring = nil
	}
	// What was confirmed ends at l.tail: the failed group's bytes lie past
	// it, in the tail file or in files tidwall/wal started for it.
	l.segMu.Lock()
	tail := l.tail
	l.segMu.Unlock()
	files, err := listSegments(l.walDir)
	if err != nil {
		return err
	}
	for _, f := range files {
		switch {
		case f.first == tail.first && f.size > tail.bytes:
			if err := os.Truncate(f.path, tail.bytes); err != nil {
				return fmt.Errorf("wal: cut %s back to %d bytes: %w", f.path, tail.bytes, err)
			}
		case f.first > tail.first:
			if err := os.Remove(f.path); err != nil {
				return fmt.Errorf("wal: remove %s, begun by a failed write: %w", f.path, err)
			}
		}
	}
	if err := syncDir(l.walDir); err != nil {
		return err
	}
	if err := l.openFiles(false); err != nil {
		// Readable again if tidwall/wal opens at all; still failed.
		if tw, terr := twal.Open(l.walDir, l.twalOptions()); terr == nil {
			l.tw, l.twClosed = tw, false
		}
		return err
	}
	l.pend, l.pendOver, l.armed = l.pend[:0], false, false
	// The parked lazy records go first, queued again before any append can
	// see the journal open (this holds the writer role).
	l.unpark()
	l.failure.Store(nil)
	return nil
}
