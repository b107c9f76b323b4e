// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package wal_test

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnmq/cairn/internal/logtest"
	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/wal"
)

// breakFile points every descriptor this process has open on path at
// /dev/full, so the next write to it fails with ENOSPC, as a full disk would.
func breakFile(t *testing.T, path string) {
	t.Helper()
	redirect(t, path, "/dev/full", os.O_WRONLY)
}

// failFile points every descriptor this process has open on path at a
// descriptor open only for reading, so the next write to it fails (EBADF)
// as a failing disk's does: an I/O error that is not a full disk.
func failFile(t *testing.T, path string) {
	t.Helper()
	redirect(t, path, "/dev/null", os.O_RDONLY)
}

func redirect(t *testing.T, path, to string, flag int) {
	t.Helper()
	full, err := os.OpenFile(to, flag, 0)
	if err != nil {
		t.Skipf("no %s: %v", to, err)
	}
	defer full.Close()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range ents {
		fd := 0
		for _, c := range e.Name() {
			fd = fd*10 + int(c-'0')
		}
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == path {
			if err := syscall.Dup3(int(full.Fd()), fd, 0); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatalf("no descriptor open on %s", path)
	}
}

// An I/O error that is not a full disk is fail-stop: every later append
// fails, reads still work, and a reopen recovers.
func TestWriteErrorIsSticky(t *testing.T) {
	dir := t.TempDir()
	l, err := wal.Open(dir, fixtureOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := uint64(1); i <= 10; i++ {
		if _, _, err := l.Append(ctx, []journal.Record{{Type: 1, Data: payload(i, 90)}}); err != nil {
			t.Fatal(err)
		}
	}
	tail, _ := tailFile(t, dir)
	failFile(t, tail)
	_, _, err = l.Append(ctx, []journal.Record{{Type: 1, Data: payload(11, 90)}})
	if !errors.Is(err, journal.ErrFailed) || !errors.Is(err, syscall.EBADF) {
		t.Fatalf("append on a failing disk: %v, want ErrFailed wrapping the write's error", err)
	}
	// Sticky: later appends fail without touching the disk, reads still work.
	for range 3 {
		if _, _, err := l.Append(ctx, []journal.Record{{Type: 1, Data: payload(11, 90)}}); !errors.Is(err, journal.ErrFailed) {
			t.Fatalf("append after a failure: %v, want ErrFailed", err)
		}
	}
	if l.LastIndex() != 10 {
		t.Fatalf("LastIndex after the failure = %d, want 10", l.LastIndex())
	}
	if _, err := l.Read(10); err != nil {
		t.Fatalf("read after the failure: %v", err)
	}
	l.Close()
	// Reopening recovers: what was confirmed is there, and appends work.
	l, err = wal.Open(dir, fixtureOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	checkContent(t, l, 10)
	if f, _, err := l.Append(ctx, []journal.Record{{Type: 1, Data: payload(11, 90)}}); err != nil || f != 11 {
		t.Fatalf("append after reopen at %d: %v", f, err)
	}
}

// A full disk is not fail-stop: the journal releases its reserve, reports
// LowOnSpace, and reopens itself (cutting what the failed write left, crash
// rules and all), without a restart. An append that met the full disk is
// tried once more after the reopen; lazy records refused with it are kept
// and written after the reopen, in order. Once there is room the reserve is
// written again and LowOnSpace ends. (Here only the journal's descriptors
// were full, so the second try succeeds; TestServeFullDisk fills a disk.)
func TestFullDiskRecovers(t *testing.T) {
	dir := t.TempDir()
	opts := fixtureOptions()
	opts.ReserveBytes = 64 << 10
	var logs logtest.Buffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	l, err := wal.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if fi, err := os.Stat(filepath.Join(dir, "RESERVE")); err != nil || fi.Size() != 64<<10 {
		t.Fatalf("the reserve at open: %v %v", fi, err)
	}
	ctx := context.Background()
	for i := uint64(1); i <= 10; i++ {
		if _, _, err := l.Append(ctx, []journal.Record{{Type: 1, Data: payload(i, 90)}}); err != nil {
			t.Fatal(err)
		}
	}
	tail, _ := tailFile(t, dir)
	breakFile(t, tail)
	if err := l.AppendLazy(ctx, []journal.Record{{Type: 1, Data: payload(11, 90)}}); err != nil {
		t.Fatal(err)
	}
	f, last, err := l.Append(ctx, []journal.Record{{Type: 1, Data: payload(12, 90)}, {Type: 1, Data: payload(13, 90)}})
	if err != nil || f != 12 || last != 13 {
		t.Fatalf("an append that met the full disk, tried again after the reopen: [%d, %d] %v, want [12, 13]", f, last, err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	checkContent(t, l, 13) // the lazy record 11 was kept, and written first
	// The disk has room: the reserve comes back and LowOnSpace ends (it
	// was set meanwhile, between the two log lines).
	for deadline := time.Now().Add(10 * time.Second); l.LowOnSpace() || !logs.Has("space is back"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("LowOnSpace still true 10s after space came back:\n%s", logs.String())
		}
	}
	for _, want := range []string{"the disk is full", "released the reserve", "reopened after the disk was full"} {
		if !logs.Has(want) {
			t.Fatalf("the log lacks %q:\n%s", want, logs.String())
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "RESERVE")); err != nil || fi.Size() != 64<<10 {
		t.Fatalf("the reserve after space came back: %v %v", fi, err)
	}
	l.Close()
	l2, err := wal.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	checkContent(t, l2, 13)
}

// tidwall/wal alone races and can panic when Reads run concurrently with a
// segment cache smaller than the segment count (its issue #34). Run with -race.
func TestConcurrentReadsAcrossSegments(t *testing.T) {
	l, err := wal.Open(t.TempDir(), fixtureOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	for i := uint64(1); i <= 1000; i++ {
		if _, _, err := l.Append(ctx, []journal.Record{{Type: 1, Data: payload(i, 90)}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(l.Segments()); n < 10 {
		t.Fatalf("%d segments, want at least 10", n)
	}
	var wg sync.WaitGroup
	for r := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			for range 2000 {
				i := 1 + rng.Uint64N(1000)
				rec, err := l.Read(i)
				if err != nil || string(rec.Data[:8]) != string(payload(i, 90)[:8]) {
					t.Errorf("Read(%d): %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
