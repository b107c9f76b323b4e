// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package journaltest holds the one conformance suite and the one benchmark
// suite that every journal.Log backend runs (as hashicorp/raft's bench/ does
// for every LogStore). A backend's test file calls Run and Bench with a
// function that opens its journal.
package journaltest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cairnmq/cairn/journal"
)

// Opener opens one journal, or reopens it after the previous handle was
// closed; a reopened journal holds everything the previous handle confirmed.
// Journals must accept 20 KiB records; compaction tests append 100-byte
// records until there are five segments, so segments should be at most a
// few hundred KiB.
type Opener func(t testing.TB) journal.Log

// Run runs the conformance suite. newJournal is called once per test and
// returns an Opener for a fresh, empty journal.
func Run(t *testing.T, newJournal func(t *testing.T) Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"Empty", testEmpty},
		{"AppendRead", testAppendRead},
		{"InvalidRecords", testInvalidRecords},
		{"ConcurrentAppend", testConcurrentAppend},
		{"ConcurrentReadWrite", testConcurrentReadWrite},
		{"Reopen", testReopen},
		{"TruncateFront", testTruncateFront},
		{"Replay", testReplay},
		{"Snapshot", testSnapshot},
		{"Compaction", testCompaction},
		{"Closed", testClosed},
		{"BatchLimit", testBatchLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newJournal(t)) })
	}
}

// rec builds a record whose payload names its origin, so reads can be checked.
func rec(typ journal.RecordType, tag string, size int) journal.Record {
	data := make([]byte, max(size, len(tag)))
	copy(data, tag)
	for i := len(tag); i < len(data); i++ {
		data[i] = byte(i)
	}
	return journal.Record{Type: typ, Data: data}
}

func mustAppend(t testing.TB, l journal.Log, recs ...journal.Record) (uint64, uint64) {
	t.Helper()
	first, last, err := l.Append(context.Background(), recs)
	if err != nil {
		t.Fatalf("Append(%d records): %v", len(recs), err)
	}
	if last-first+1 != uint64(len(recs)) {
		t.Fatalf("Append(%d records) = [%d, %d]", len(recs), first, last)
	}
	return first, last
}

func checkRead(t testing.TB, l journal.Log, index uint64, want journal.Record) {
	t.Helper()
	got, err := l.Read(index)
	if err != nil {
		t.Fatalf("Read(%d): %v", index, err)
	}
	if got.Index != index || got.Type != want.Type || !bytes.Equal(got.Data, want.Data) || got.Moved != want.Moved {
		t.Fatalf("Read(%d) = {index %d type %d moved %d %d bytes %.20q}, want {type %d moved %d %d bytes %.20q}",
			index, got.Index, got.Type, got.Moved, len(got.Data), got.Data, want.Type, want.Moved, len(want.Data), want.Data)
	}
}

func checkBounds(t testing.TB, l journal.Log, first, last uint64) {
	t.Helper()
	if f, la := l.FirstIndex(), l.LastIndex(); f != first || la != last {
		t.Fatalf("FirstIndex, LastIndex = %d, %d; want %d, %d", f, la, first, last)
	}
}

func closeLog(t testing.TB, l journal.Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func testEmpty(t *testing.T, open Opener) {
	l := open(t)
	defer closeLog(t, l)
	checkBounds(t, l, 1, 0)
	if _, err := l.Read(1); !errors.Is(err, journal.ErrNotFound) {
		t.Fatalf("Read(1) on empty log: %v, want ErrNotFound", err)
	}
	if _, err := l.Read(0); !errors.Is(err, journal.ErrNotFound) {
		t.Fatalf("Read(0): %v, want ErrNotFound", err)
	}
}

func testAppendRead(t *testing.T, open Opener) {
	l := open(t)
	defer closeLog(t, l)
	a := rec(1, "single", 10)
	if f, la := mustAppend(t, l, a); f != 1 || la != 1 {
		t.Fatalf("first append = [%d, %d], want [1, 1]", f, la)
	}
	batch := []journal.Record{rec(2, "b0", 0), rec(3, "b1", 1000), rec(journal.MaxOwnerType, "b2", 20000)}
	batch[0].Data = nil // an empty payload is a valid record
	if f, la := mustAppend(t, l, batch...); f != 2 || la != 4 {
		t.Fatalf("batch append = [%d, %d], want [2, 4]", f, la)
	}
	checkBounds(t, l, 1, 4)
	checkRead(t, l, 1, a)
	for i, r := range batch {
		checkRead(t, l, uint64(2+i), r)
	}
	if _, err := l.Read(5); !errors.Is(err, journal.ErrNotFound) {
		t.Fatalf("Read past the end: %v, want ErrNotFound", err)
	}
	// The caller may reuse its buffers once Append returns.
	buf := []byte("mutable")
	mustAppend(t, l, journal.Record{Type: 1, Data: buf})
	copy(buf, "XXXXXXX")
	checkRead(t, l, 5, journal.Record{Type: 1, Data: []byte("mutable")})
}

func testInvalidRecords(t *testing.T, open Opener) {
	l := open(t)
	defer closeLog(t, l)
	mustAppend(t, l, rec(1, "ok", 8))
	bad := [][]journal.Record{
		nil,
		{{Type: 0, Data: []byte("zero type")}},
		{{Type: journal.MaxOwnerType + 1, Data: []byte("reserved type")}},
		{rec(1, "fine", 4), {Type: 0}},
		{{Type: 1, Data: make([]byte, journal.DefaultMaxRecordBytes+1)}},
	}
	for i, recs := range bad {
		if _, _, err := l.Append(context.Background(), recs); !errors.Is(err, journal.ErrInvalidRecord) {
			t.Fatalf("bad batch %d: Append err = %v, want ErrInvalidRecord", i, err)
		}
	}
	checkBounds(t, l, 1, 1) // nothing of a rejected batch went in
	mustAppend(t, l, rec(1, "after", 8))
	checkBounds(t, l, 1, 2)
}

func testConcurrentAppend(t *testing.T, open Opener) {
	l := open(t)
	defer closeLog(t, l)
	const writers, each = 32, 40
	type span struct{ first, last uint64 }
	spans := make([][]span, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				n := 1 + (w+i)%3
				recs := make([]journal.Record, n)
				for j := range recs {
					recs[j] = rec(journal.RecordType(1+w), fmt.Sprintf("w%d-i%d-j%d", w, i, j), 32)
				}
				f, la, err := l.Append(context.Background(), recs)
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				if la-f+1 != uint64(n) {
					t.Errorf("writer %d: span [%d, %d] for %d records", w, f, la, n)
				}
				spans[w] = append(spans[w], span{f, la})
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	seen := make(map[uint64]bool)
	for w, ss := range spans {
		for i, s := range ss {
			if i > 0 && s.first <= ss[i-1].last {
				t.Fatalf("writer %d: append %d at %d not after the previous one at %d", w, i, s.first, ss[i-1].last)
			}
			for j := s.first; j <= s.last; j++ {
				if seen[j] {
					t.Fatalf("index %d given twice", j)
				}
				seen[j] = true
				checkRead(t, l, j, rec(journal.RecordType(1+w), fmt.Sprintf("w%d-i%d-j%d", w, i, j-s.first), 32))
			}
		}
	}
	total := uint64(len(seen))
	checkBounds(t, l, 1, total)
}

func testConcurrentReadWrite(t *testing.T, open Opener) {
	l := open(t)
	defer closeLog(t, l)
	for i := range 200 {
		mustAppend(t, l, rec(1, fmt.Sprintf("pre-%d", i), 200))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				if _, _, err := l.Append(ctx, []journal.Record{rec(2, fmt.Sprintf("live-%d-%d", w, i), 200)}); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		})
	}
	var readers sync.WaitGroup
	for r := range 8 {
		readers.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			for ctx.Err() == nil {
				i := 1 + rng.Uint64N(200)
				checkRead(t, l, i, rec(1, fmt.Sprintf("pre-%d", i-1), 200))
				if t.Failed() {
					return
				}
			}
		})
	}
	wg.Wait()
	cancel()
	readers.Wait()
	checkBounds(t, l, 1, 600)
}

func testReopen(t *testing.T, open Opener) {
	l := open(t)
	var want []journal.Record
	for i := range 50 {
		r := rec(journal.RecordType(1+i%5), fmt.Sprintf("r%d", i), i*37)
		want = append(want, r)
		mustAppend(t, l, r)
	}
	closeLog(t, l)
	l = open(t)
	defer closeLog(t, l)
	checkBounds(t, l, 1, 50)
	for i, r := range want {
		checkRead(t, l, uint64(i+1), r)
	}
	if f, _ := mustAppend(t, l, rec(1, "after reopen", 5)); f != 51 {
		t.Fatalf("append after reopen at %d, want 51", f)
	}
}

func testTruncateFront(t *testing.T, open Opener) {
	l := open(t)
	for i := range 100 {
		mustAppend(t, l, rec(1, fmt.Sprintf("t%d", i), 100))
	}
	if err := l.TruncateFront(0); err == nil {
		t.Fatal("TruncateFront(0) succeeded")
	}
	if err := l.TruncateFront(102); err == nil {
		t.Fatal("TruncateFront(last+2) succeeded")
	}
	if err := l.TruncateFront(40); err != nil {
		t.Fatalf("TruncateFront(40): %v", err)
	}
	checkBounds(t, l, 40, 100)
	if _, err := l.Read(39); !errors.Is(err, journal.ErrNotFound) {
		t.Fatalf("Read(39) after truncate: %v, want ErrNotFound", err)
	}
	checkRead(t, l, 40, rec(1, "t39", 100))
	if err := l.TruncateFront(40); err != nil { // no-op
		t.Fatalf("TruncateFront(first): %v", err)
	}
	if err := l.TruncateFront(39); err == nil {
		t.Fatal("TruncateFront below first succeeded")
	}
	closeLog(t, l)
	l = open(t)
	checkBounds(t, l, 40, 100)
	checkRead(t, l, 100, rec(1, "t99", 100))
	if err := l.TruncateFront(101); err != nil {
		t.Fatalf("TruncateFront(last+1): %v", err)
	}
	checkBounds(t, l, 101, 100)
	closeLog(t, l)
	l = open(t)
	defer closeLog(t, l)
	checkBounds(t, l, 101, 100)
	if f, _ := mustAppend(t, l, rec(1, "fresh", 10)); f != 101 {
		t.Fatalf("append after emptying at %d, want 101", f)
	}
	checkRead(t, l, 101, rec(1, "fresh", 10))
}

func testReplay(t *testing.T, open Opener) {
	l := open(t)
	defer closeLog(t, l)
	for i := range 300 {
		mustAppend(t, l, rec(journal.RecordType(1+i%7), fmt.Sprintf("s%d", i), i%50))
	}
	next := uint64(120)
	var calls int
	p, err := journal.Replay(l, 120, func(r journal.Record) error {
		want := rec(journal.RecordType(1+(r.Index-1)%7), fmt.Sprintf("s%d", r.Index-1), int(r.Index-1)%50)
		if r.Index != next || r.Type != want.Type || !bytes.Equal(r.Data, want.Data) {
			return fmt.Errorf("replay gave index %d type %d, want index %d type %d", r.Index, r.Type, next, want.Type)
		}
		next++
		return nil
	}, journal.ReplayOptions{Progress: func(journal.Progress) { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	if p.Records != 181 || p.Total != 181 || !p.Done || calls == 0 {
		t.Fatalf("replay progress = %+v after %d calls, want 181 of 181, done", p, calls)
	}
	stop := errors.New("stop")
	n := 0
	_, err = journal.Replay(l, 1, func(journal.Record) error {
		if n++; n == 10 {
			return stop
		}
		return nil
	}, journal.ReplayOptions{})
	if !errors.Is(err, stop) || n != 10 {
		t.Fatalf("replay stopped with %v after %d records, want stop after 10", err, n)
	}
	if _, err := journal.Replay(l, 0, func(journal.Record) error { return nil }, journal.ReplayOptions{}); !errors.Is(err, journal.ErrNotFound) {
		t.Fatalf("replay from before the first index: %v", err)
	}
}

func testSnapshot(t *testing.T, open Opener) {
	l := open(t)
	s, ok := l.(journal.Snapshotter)
	if !ok {
		closeLog(t, l)
		t.Skip("backend has no snapshots")
	}
	if _, _, err := s.LoadSnapshot(); !errors.Is(err, journal.ErrNoSnapshot) {
		t.Fatalf("LoadSnapshot on a new log: %v, want ErrNoSnapshot", err)
	}
	for i := range 10 {
		mustAppend(t, l, rec(1, fmt.Sprintf("x%d", i), 10))
	}
	if err := s.SaveSnapshot(4, []byte("state at 4")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(9, bytes.Repeat([]byte("state at 9;"), 1000)); err != nil {
		t.Fatal(err)
	}
	closeLog(t, l)
	l = open(t)
	defer closeLog(t, l)
	idx, data, err := l.(journal.Snapshotter).LoadSnapshot()
	if err != nil || idx != 9 || !bytes.Equal(data, bytes.Repeat([]byte("state at 9;"), 1000)) {
		t.Fatalf("LoadSnapshot after reopen = %d, %d bytes, %v; want 9 and the second blob", idx, len(data), err)
	}
}

func testCompaction(t *testing.T, open Opener) {
	l := open(t)
	defer closeLog(t, l)
	if _, ok := l.(journal.Segmenter); !ok {
		t.Skip("backend has no segments")
	}
	live := make(map[uint64][]byte) // index -> payload, the owner's view
	for i := 0; len(l.(journal.Segmenter).Segments()) < 5; i++ {
		if i == 100000 {
			t.Fatalf("100000 records of 100 bytes gave %d segments; the harness must use smaller segments", len(l.(journal.Segmenter).Segments()))
		}
		r := rec(1, fmt.Sprintf("c%d", i), 100)
		f, _ := mustAppend(t, l, r)
		if i%10 == 0 {
			live[f] = r.Data
		}
	}
	before := l.LastIndex() + 1
	res, err := journal.Compact(l, journal.CompactOptions{
		Live:   func(i uint64) bool { _, ok := live[i]; return ok },
		Before: before,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) == 0 || len(res.Moves) == 0 {
		t.Fatalf("compaction of a 10%%-live log removed %d segments and moved %d records", len(res.Removed), len(res.Moves))
	}
	if want := res.Removed[len(res.Removed)-1].Last + 1; l.FirstIndex() != want {
		t.Fatalf("FirstIndex after compaction = %d, want %d", l.FirstIndex(), want)
	}
	for _, m := range res.Moves {
		data, ok := live[m.From]
		if !ok {
			t.Fatalf("compaction moved dead record %d", m.From)
		}
		checkRead(t, l, m.To, journal.Record{Type: 1, Data: data, Moved: m.From})
		delete(live, m.From)
		live[m.To] = data
	}
	for i, data := range live {
		checkRead(t, l, i, journal.Record{Type: 1, Data: data, Moved: readMoved(t, l, i)})
	}
	for _, s := range res.Segments {
		if s.Kept == "" {
			t.Fatalf("segment %s kept without a reason", s.Name)
		}
	}
	// Replay shows the copies with their origin.
	moved := 0
	if _, err := journal.Replay(l, l.FirstIndex(), func(r journal.Record) error {
		if r.Moved != 0 {
			moved++
		}
		return nil
	}, journal.ReplayOptions{}); err != nil {
		t.Fatal(err)
	}
	if moved != len(res.Moves) {
		t.Fatalf("replay saw %d moved records, compaction made %d", moved, len(res.Moves))
	}
	// Nothing live below the threshold remains in the head run: a second
	// pass with the same Before removes nothing it already could have.
	res2, err := journal.Compact(l, journal.CompactOptions{Live: func(i uint64) bool { _, ok := live[i]; return ok }, Before: before})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range res2.Moves {
		if m.From < res.Removed[len(res.Removed)-1].Last {
			t.Fatalf("second compaction moved %d, which the first had freed", m.From)
		}
	}
}

func readMoved(t testing.TB, l journal.Log, i uint64) uint64 {
	r, err := l.Read(i)
	if err != nil {
		t.Fatalf("Read(%d): %v", i, err)
	}
	return r.Moved
}

func testClosed(t *testing.T, open Opener) {
	l := open(t)
	mustAppend(t, l, rec(1, "x", 1))
	closeLog(t, l)
	if _, _, err := l.Append(context.Background(), []journal.Record{rec(1, "y", 1)}); !errors.Is(err, journal.ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	if _, err := l.Read(1); !errors.Is(err, journal.ErrClosed) {
		t.Fatalf("Read after Close: %v, want ErrClosed", err)
	}
	if err := l.Close(); !errors.Is(err, journal.ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
}

// testBatchLimit: an Append as large as the log's BatchLimit says lands
// whole; one record or one byte more is refused with ErrBatchTooLarge and
// stores nothing; AppendInBatches carries any number in appends that fit,
// in order; and compaction, whose copies may be many small records, stays
// within the limit. A log with no limit takes a batch of 2,000 records.
func testBatchLimit(t *testing.T, open Opener) {
	l := open(t)
	defer closeLog(t, l)
	lim := journal.LimitOf(l)
	const size = 20
	frame := journal.FrameSize(&journal.Record{Type: 1, Data: make([]byte, size)})
	n := 2000
	if lim.Records > 0 {
		n = lim.Records
	}
	if lim.Bytes > 0 {
		n = min(n, lim.Bytes/frame)
	}
	batch := func(tag string, k int) []journal.Record {
		recs := make([]journal.Record, k)
		for i := range recs {
			recs[i] = rec(1, fmt.Sprintf("%s%d", tag, i), size)
		}
		return recs
	}
	full := batch("full", n)
	first, last := mustAppend(t, l, full...)
	if last-first+1 != uint64(n) {
		t.Fatalf("a batch of %d records got indexes %d-%d", n, first, last)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		checkRead(t, l, first+uint64(i), full[i])
	}
	over := map[string][]journal.Record{}
	if lim.Records > 0 {
		over["records"] = batch("over", lim.Records+1)
	}
	if lim.Bytes > 0 {
		big := make([]journal.Record, 0)
		for bytes := 0; bytes <= lim.Bytes; bytes += journal.FrameSize(&big[len(big)-1]) {
			big = append(big, rec(1, "big", min(16<<10, lim.Bytes)))
		}
		over["bytes"] = big
	}
	for what, recs := range over {
		if _, _, err := l.Append(context.Background(), recs); !errors.Is(err, journal.ErrBatchTooLarge) {
			t.Fatalf("a batch one over the limit's %s (%+v): Append err = %v, want ErrBatchTooLarge", what, lim, err)
		}
		checkBounds(t, l, first, last) // nothing of it went in
	}

	// AppendInBatches: 3n+1 records, in order, no append over the limit.
	many := batch("many", 3*n+1)
	next := last + 1
	appends := 0
	stored, err := journal.AppendInBatches(context.Background(), l, many, func(f uint64, k int) {
		if f != next {
			t.Errorf("AppendInBatches: an append starting at %d, want %d", f, next)
		}
		if lim.Check(many[f-last-1:f-last-1+uint64(k)]) != nil {
			t.Errorf("AppendInBatches: an append of %d records is over the limit %+v", k, lim)
		}
		next += uint64(k)
		appends++
	})
	if err != nil || stored != len(many) {
		t.Fatalf("AppendInBatches stored %d of %d: %v", stored, len(many), err)
	}
	if lim != (journal.BatchLimit{}) && appends < 2 {
		t.Fatalf("AppendInBatches made %d appends of %d records under the limit %+v", appends, len(many), lim)
	}
	for i := range many {
		checkRead(t, l, last+1+uint64(i), many[i])
	}

	// Compaction of a head run holding more live records than one append
	// may take.
	if lim == (journal.BatchLimit{}) {
		return
	}
	if _, ok := l.(journal.Segmenter); !ok {
		return
	}
	needLive := lim.Records + 1
	if lim.Bytes > 0 {
		needLive = max(needLive, lim.Bytes/frame+1)
	}
	live := map[uint64][]byte{}
	for len(live) < needLive || len(l.(journal.Segmenter).Segments()) < 3 {
		recs := batch("c", 100)
		if _, err := journal.AppendInBatches(context.Background(), l, recs, func(f uint64, k int) {
			for i := range k {
				if (f+uint64(i))%10 == 0 {
					live[f+uint64(i)] = recs[i].Data
				}
			}
			recs = recs[k:]
		}); err != nil {
			t.Fatal(err)
		}
	}
	isLive := func(i uint64) bool { _, ok := live[i]; return ok }
	res, err := journal.Compact(l, journal.CompactOptions{Live: isLive, Before: l.LastIndex() + 1})
	if err != nil {
		t.Fatalf("compaction of %d live records with the limit %+v: %v", len(live), lim, err)
	}
	if len(res.Moves) <= lim.Records {
		t.Fatalf("compaction moved %d records; the test needs more than the limit's %d", len(res.Moves), lim.Records)
	}
	for _, m := range res.Moves {
		checkRead(t, l, m.To, journal.Record{Type: 1, Data: live[m.From], Moved: m.From})
	}
}
