// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package wal_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/dirlock"
	"github.com/cairnmq/cairn/journal/journaltest"
	"github.com/cairnmq/cairn/journal/wal"
)

var quiet = slog.New(slog.DiscardHandler)

func payload(i uint64, size int) []byte {
	b := bytes.Repeat([]byte{byte(i*7 + 1)}, size)
	copy(b, fmt.Sprintf("rec-%d;", i))
	return b
}

// fixture is a closed journal of batches of three records over several
// segments, with the tail file's size before and after its last batch.
type fixture struct {
	dir                string
	last               uint64 // last index
	lastBatchFirst     uint64
	tail               string // tail segment file
	tailBefore, tailAt int64  // tail size before and after the last batch
	segments           []string
}

func makeFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	l, err := wal.Open(dir, fixtureOptions())
	if err != nil {
		t.Fatal(err)
	}
	var fx fixture
	fx.dir = dir
	for b := 0; b < 100; b++ {
		if b == 99 {
			fx.tail, fx.tailBefore = tailFile(t, dir)
		}
		recs := make([]journal.Record, 3)
		for j := range recs {
			i := uint64(b*3 + j + 1)
			recs[j] = journal.Record{Type: journal.RecordType(1 + j), Data: payload(i, 90)}
		}
		first, last, err := l.Append(context.Background(), recs)
		if err != nil {
			t.Fatal(err)
		}
		fx.lastBatchFirst, fx.last = first, last
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	tail, size := tailFile(t, dir)
	if tail != fx.tail {
		t.Fatalf("the last batch rolled a segment; adjust the fixture")
	}
	fx.tailAt = size
	fx.segments = segmentFiles(t, dir)
	if len(fx.segments) < 4 {
		t.Fatalf("fixture has %d segments, want at least 4", len(fx.segments))
	}
	return fx
}

func fixtureOptions() wal.Options {
	return wal.Options{SegmentBytes: 8 << 10, MaxRecordBytes: 1 << 10, MaxBatchBytes: 4 << 10, Logger: quiet}
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "wal"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if len(e.Name()) == 20 {
			out = append(out, filepath.Join(dir, "wal", e.Name()))
		}
	}
	sort.Strings(out)
	return out
}

func tailFile(t *testing.T, dir string) (string, int64) {
	t.Helper()
	segs := segmentFiles(t, dir)
	fi, err := os.Stat(segs[len(segs)-1])
	if err != nil {
		t.Fatal(err)
	}
	return segs[len(segs)-1], fi.Size()
}

func clone(t *testing.T, src string) string { return journaltest.CloneDir(t, src) }

func rebase(fx fixture, dir, path string) string {
	rel, _ := filepath.Rel(fx.dir, path)
	return filepath.Join(dir, rel)
}

func flipBit(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x10
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkContent reopens dir and checks records 1..last hold what the fixture wrote.
func checkContent(t *testing.T, l *wal.Log, last uint64) {
	t.Helper()
	if l.FirstIndex() != 1 || l.LastIndex() != last {
		t.Fatalf("range [%d, %d], want [1, %d]", l.FirstIndex(), l.LastIndex(), last)
	}
	n := uint64(0)
	_, err := journal.Replay(l, 1, func(r journal.Record) error {
		n++
		if !bytes.Equal(r.Data, payload(r.Index, 90)) {
			return fmt.Errorf("record %d holds %.12q", r.Index, r.Data)
		}
		return nil
	}, journal.ReplayOptions{})
	if err != nil || n != last {
		t.Fatalf("replay: %d records, %v", n, err)
	}
}

func TestTornTailEveryOffset(t *testing.T) {
	fx := makeFixture(t)
	for off := fx.tailBefore; off < fx.tailAt; off++ {
		dir := clone(t, fx.dir)
		tail := rebase(fx, dir, fx.tail)
		if err := os.Truncate(tail, off); err != nil {
			t.Fatal(err)
		}
		l, err := wal.Open(dir, fixtureOptions())
		if err != nil {
			t.Fatalf("cut at %d: Open: %v", off, err)
		}
		rec := l.Recovery()
		want := fx.lastBatchFirst - 1
		if off == fx.tailBefore {
			if rec.Cut != nil {
				t.Fatalf("cut at a batch boundary: Open cut %v", rec.Cut)
			}
		} else {
			if rec.Cut == nil {
				t.Fatalf("cut at %d: Open reported no cut", off)
			}
			if rec.Cut.Bytes != off-fx.tailBefore || rec.Cut.Offset != fx.tailBefore || rec.Cut.FirstDropped != fx.lastBatchFirst {
				t.Fatalf("cut at %d: reported %v", off, rec.Cut)
			}
			kept, err := os.ReadFile(rec.Cut.Broken[0])
			orig, _ := os.ReadFile(fx.tail)
			if err != nil || !bytes.Equal(kept, orig[fx.tailBefore:off]) {
				t.Fatalf("cut at %d: .broken holds %d bytes (%v), want the %d cut", off, len(kept), err, off-fx.tailBefore)
			}
		}
		checkContent(t, l, want)
		// The log goes on from there.
		if f, _, err := l.Append(context.Background(), []journal.Record{{Type: 1, Data: payload(want+1, 90)}}); err != nil || f != want+1 {
			t.Fatalf("cut at %d: append after repair at %d: %v", off, f, err)
		}
		l.Close()
		l, err = wal.Open(dir, fixtureOptions())
		if err != nil || l.Recovery().Cut != nil {
			t.Fatalf("cut at %d: second open: %v, cut %v", off, err, l.Recovery().Cut)
		}
		checkContent(t, l, want+1)
		l.Close()
	}
}

func TestCorruptionTable(t *testing.T) {
	fx := makeFixture(t)
	mid := fx.segments[1]
	cases := []struct {
		name    string
		corrupt func(t *testing.T, dir string)
		opts    func(o *wal.Options)
		// outcome: either open succeeds with last and a cut (or not), or it
		// fails with an error naming wantFile and containing wantErr.
		last     uint64
		cut      bool
		wantErr  string
		wantFile string
	}{
		{name: "clean", corrupt: func(*testing.T, string) {}, last: fx.last},
		{name: "zero-filled tail", last: fx.last, cut: true, corrupt: func(t *testing.T, dir string) {
			appendBytes(t, rebase(fx, dir, fx.tail), make([]byte, 4096))
		}},
		{name: "last batch zeroed by a lost size-extending write", last: fx.lastBatchFirst - 1, cut: true, corrupt: func(t *testing.T, dir string) {
			tail := rebase(fx, dir, fx.tail)
			b, _ := os.ReadFile(tail)
			clear(b[fx.tailBefore:])
			os.WriteFile(tail, b, 0o644)
		}},
		{name: "last batch zeroed, verify all", last: fx.lastBatchFirst - 1, cut: true, opts: func(o *wal.Options) { o.VerifyAll = true }, corrupt: func(t *testing.T, dir string) {
			tail := rebase(fx, dir, fx.tail)
			b, _ := os.ReadFile(tail)
			clear(b[fx.tailBefore:])
			os.WriteFile(tail, b, 0o644)
		}},
		{name: "bit flip in the last batch", wantErr: "crc32c mismatch", wantFile: fx.tail, corrupt: func(t *testing.T, dir string) {
			flipBit(t, rebase(fx, dir, fx.tail), fx.tailAt-5)
		}},
		{name: "bit flip mid-log, verify all", wantErr: "crc32c mismatch", wantFile: mid, opts: func(o *wal.Options) { o.VerifyAll = true },
			corrupt: func(t *testing.T, dir string) { flipBit(t, rebase(fx, dir, mid), 500) }},
		{name: "bit flip mid-log, verify all, repair", cut: true, last: 0 /* set below */, opts: func(o *wal.Options) { o.VerifyAll, o.Repair = true, true },
			corrupt: func(t *testing.T, dir string) { flipBit(t, rebase(fx, dir, mid), 500) }},
		{name: "deleted middle segment", wantErr: "is missing", wantFile: mid, corrupt: func(t *testing.T, dir string) {
			os.Remove(rebase(fx, dir, mid))
		}},
		{name: "deleted tail segment", wantErr: "after the last sealed one is missing", wantFile: fx.tail, corrupt: func(t *testing.T, dir string) {
			os.Remove(rebase(fx, dir, fx.tail))
		}},
		{name: "sealed segment cut short", wantErr: "the manifest says", wantFile: mid, corrupt: func(t *testing.T, dir string) {
			os.Truncate(rebase(fx, dir, mid), 100)
		}},
		{name: "manifest lost", last: fx.last, corrupt: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "MANIFEST"))
		}},
		{name: "manifest damaged", wantErr: "manifest crc32c mismatch", wantFile: "MANIFEST", corrupt: func(t *testing.T, dir string) {
			flipBit(t, filepath.Join(dir, "MANIFEST"), 20)
		}},
		{name: "tidwall truncation leftover", wantErr: "Cairn never writes", wantFile: ".START", corrupt: func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "wal", "00000000000000000009.START"), nil, 0o644)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := clone(t, fx.dir)
			tc.corrupt(t, dir)
			opts := fixtureOptions()
			if tc.opts != nil {
				tc.opts(&opts)
			}
			l, err := wal.Open(dir, opts)
			if tc.wantErr != "" {
				var ce *journal.CorruptionError
				if err == nil {
					l.Close()
					t.Fatalf("Open succeeded, want an error containing %q", tc.wantErr)
				}
				if !errors.Is(err, journal.ErrCorrupt) || !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Open: %v; want a CorruptionError containing %q", err, tc.wantErr)
				}
				if !strings.Contains(ce.Path, filepath.Base(tc.wantFile)) {
					t.Fatalf("error names %s, want %s", ce.Path, filepath.Base(tc.wantFile))
				}
				// Check (cairn journal verify) says the same.
				rep, err := wal.Check(dir, 0, nil)
				if err != nil || rep.Damage == nil || rep.Torn {
					t.Fatalf("Check: %v, damage %v, torn %v; want corruption", err, rep.Damage, rep.Torn)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer l.Close()
			if (l.Recovery().Cut != nil) != tc.cut {
				t.Fatalf("cut = %v, want a cut: %v", l.Recovery().Cut, tc.cut)
			}
			want := tc.last
			if want == 0 {
				// Repaired mid-log: everything from the damaged record's batch is gone.
				want = l.Recovery().Cut.FirstDropped - 1
				if want >= fx.last || want < 3 {
					t.Fatalf("repair kept up to %d of %d", want, fx.last)
				}
			}
			checkContent(t, l, want)
		})
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// Without VerifyAll, damage in an old segment is found when it is read:
// precise, never silent.
func TestBitFlipFoundOnRead(t *testing.T) {
	fx := makeFixture(t)
	dir := clone(t, fx.dir)
	mid := rebase(fx, dir, fx.segments[1]) // not the last sealed segment, which Open reads
	flipBit(t, mid, 500)
	l, err := wal.Open(dir, fixtureOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var bad uint64
	for i := l.FirstIndex(); i <= l.LastIndex(); i++ {
		if _, err := l.Read(i); err != nil {
			var ce *journal.CorruptionError
			if !errors.As(err, &ce) || ce.Path != mid || ce.Index != i || !strings.Contains(err.Error(), "crc32c") {
				t.Fatalf("Read(%d): %v", i, err)
			}
			if bad != 0 {
				t.Fatalf("records %d and %d both damaged by one bit", bad, i)
			}
			bad = i
		}
	}
	if bad == 0 {
		t.Fatal("a flipped bit went unnoticed by Read")
	}
	_, err = journal.Replay(l, 1, func(journal.Record) error { return nil }, journal.ReplayOptions{})
	var ce *journal.CorruptionError
	if !errors.As(err, &ce) || ce.Index != bad || ce.Path != mid || ce.Offset <= 0 {
		t.Fatalf("Replay: %v, want corruption at index %d in %s", err, bad, mid)
	}
}

func TestSecondWriter(t *testing.T) {
	dir := t.TempDir()
	l, err := wal.Open(dir, fixtureOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = wal.Open(dir, fixtureOptions())
	var le *dirlock.LockedError
	if !errors.Is(err, journal.ErrLocked) || !errors.As(err, &le) {
		t.Fatalf("second Open: %v, want a LockedError", err)
	}
	host, _ := os.Hostname()
	if le.Holder.PID != os.Getpid() || le.Holder.Host != host || !strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) {
		t.Fatalf("lock error names %+v (%v), want pid %d on %s", le.Holder, err, os.Getpid(), host)
	}
	if _, err := wal.Repair(dir, 0); !errors.Is(err, journal.ErrLocked) {
		t.Fatalf("Repair of an open journal: %v, want ErrLocked", err)
	}
}

// TestDamagedSnapshot: the journal keeps the two newest snapshots. A newest
// one that fails its checksum is skipped, with a warning, for the one
// before it; when every kept snapshot is damaged, LoadSnapshot says which
// file and why rather than report none. OldestSnapshot names the oldest
// kept, the one a replay may have to start from.
func TestDamagedSnapshot(t *testing.T) {
	dir := t.TempDir()
	var logged bytes.Buffer
	l, err := wal.Open(dir, wal.Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.OldestSnapshot(); !errors.Is(err, journal.ErrNoSnapshot) {
		t.Fatalf("OldestSnapshot of a new journal: %v, want ErrNoSnapshot", err)
	}
	for i := range 12 {
		if _, _, err := l.Append(context.Background(), []journal.Record{{Type: 1, Data: payload(uint64(i+1), 50)}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, idx := range []uint64{3, 7, 11} {
		if err := l.SaveSnapshot(idx, []byte(fmt.Sprint("state at ", idx))); err != nil {
			t.Fatal(err)
		}
	}
	if oldest, err := l.OldestSnapshot(); oldest != 7 || err != nil {
		t.Fatalf("OldestSnapshot = %d, %v; want 7 (two kept)", oldest, err)
	}
	damage := func(idx uint64) string {
		path := filepath.Join(dir, "snapshots", fmt.Sprintf("%020d.snap", idx))
		journaltest.DamageFile(t, path)
		return path
	}
	newest := damage(11)
	idx, data, err := l.LoadSnapshot()
	if err != nil || idx != 7 || string(data) != "state at 7" {
		t.Fatalf("LoadSnapshot with the newest damaged = %d, %q, %v; want the one at 7", idx, data, err)
	}
	if !strings.Contains(logged.String(), "skipping damaged snapshot") || !strings.Contains(logged.String(), newest) {
		t.Fatalf("no warning naming %s:\n%s", newest, logged.String())
	}
	damage(7)
	_, _, err = l.LoadSnapshot()
	var ce *journal.CorruptionError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), newest) || !strings.Contains(err.Error(), "crc32c mismatch") {
		t.Fatalf("LoadSnapshot with both damaged: %v, want a CorruptionError naming %s", err, newest)
	}
}
