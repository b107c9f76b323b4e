// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package jetstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"

	"github.com/cairnmq/cairn/internal/natstest"
	"github.com/cairnmq/cairn/journal"
)

// A batch whose commit reaches the stream without an earlier message (lost
// in a leader change) is refused as incomplete and stores nothing; the
// writer publishes it again under a new batch id instead of failing the
// log. This was a TestLeaderLossR3 failure under -race in CI.
func TestIncompleteBatchIsRetried(t *testing.T) {
	s := natstest.StartServer(t)
	nc := natstest.Connect(t, s)
	l, err := Open(context.Background(), nc, Options{Stream: "INCOMPLETE", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var lost atomic.Int64
	l.lose = func(batchID string, seq int) bool {
		// The second message of every batch's first attempt.
		if seq == 2 && strings.HasSuffix(batchID, "-0") {
			lost.Add(1)
			return true
		}
		return false
	}
	for round := range 3 {
		recs := make([]journal.Record, 4)
		for i := range recs {
			recs[i] = journal.Record{Type: 1, Data: fmt.Appendf(nil, "r%d-%d", round, i)}
		}
		first, last, err := l.Append(context.Background(), recs)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if want := uint64(round*4 + 1); first != want || last != want+3 {
			t.Fatalf("round %d stored at [%d, %d], want [%d, %d]", round, first, last, want, want+3)
		}
	}
	if lost.Load() != 3 {
		t.Fatalf("%d batch messages lost, want 3: the test did not exercise the retry", lost.Load())
	}
	var got []string
	if err := l.Scan(l.FirstIndex(), func(r journal.Record) error {
		got = append(got, string(r.Data))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := "[r0-0 r0-1 r0-2 r0-3 r1-0 r1-1 r1-2 r1-3 r2-0 r2-1 r2-2 r2-3]"; fmt.Sprint(got) != want {
		t.Fatalf("the stream holds %v, want %s", got, want)
	}
}

// ReadBatch reads runs of ascending indexes in one batched direct get each,
// and gives every index what Read gives it: the record, or Read's error
// (outside the stream); the order the indexes come in is kept.
func TestReadBatch(t *testing.T) {
	t.Run("R1", func(t *testing.T) {
		testReadBatch(t, natstest.Connect(t, natstest.StartServer(t)), 1)
	})
	t.Run("R3", func(t *testing.T) { // direct gets may be served by any replica
		testReadBatch(t, natstest.Connect(t, natstest.StartCluster(t)...), 3)
	})
}

func testReadBatch(t *testing.T, nc *nats.Conn, replicas int) {
	opts := Options{Stream: "BATCHREAD", Replicas: replicas, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	l, err := Open(context.Background(), nc, opts)
	for try := 0; err != nil && try < 100; try++ {
		// A new cluster may still be electing a leader for the stream's
		// group (as jetstream_test.go's open waits out).
		time.Sleep(100 * time.Millisecond)
		l, err = Open(context.Background(), nc, opts)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const n = 3000
	for i := 0; i < n; i += 100 {
		recs := make([]journal.Record, 100)
		for j := range recs {
			recs[j] = journal.Record{Type: 1, Data: fmt.Appendf(nil, "r%d", i+j+1)}
		}
		if _, _, err := l.Append(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
	requests := natstest.CountRequests(t, nc, "$JS.API.DIRECT.GET.BATCHREAD")
	var idx []uint64
	for i := uint64(1); i <= 2000; i += 2 { // 1,000 indexes over 2,000 records: two runs
		idx = append(idx, i)
	}
	idx = append(idx, 2500, 2400, n+1, 0) // a descent, then two outside the stream
	var got []string
	if err := l.ReadBatch(idx, func(i uint64, r journal.Record, err error) error {
		if want, werr := l.Read(i); err != nil || werr != nil {
			if (err == nil) != (werr == nil) {
				t.Fatalf("index %d: ReadBatch error %v, Read error %v", i, err, werr)
			}
			got = append(got, "err")
			return nil
		} else if r.Index != i || string(r.Data) != string(want.Data) {
			t.Fatalf("index %d: ReadBatch gave %d %q, Read %q", i, r.Index, r.Data, want.Data)
		}
		got = append(got, string(r.Data))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(idx) || got[0] != "r1" || got[999] != "r1999" || fmt.Sprint(got[1000:]) != "[r2500 r2400 err err]" {
		t.Fatalf("got %d results, first %v, last %v", len(got), got[0], got[len(got)-4:])
	}
	// The 1,000 odd indexes: two runs (each spans at most readBatchSpan
	// records), one request each; 2500 and 2400 one Read each (a run of
	// one), and so are the checks' Reads; the two outside the stream none.
	if r, want := requests.Count(t), 2+2+len(idx)-2; r != want {
		t.Fatalf("%d direct get requests, want %d", r, want)
	}
	// A stop from fn ends it.
	calls := 0
	stop := fmt.Errorf("stop")
	if err := l.ReadBatch(idx, func(uint64, journal.Record, error) error { calls++; return stop }); err != stop || calls != 1 {
		t.Fatalf("ReadBatch after fn's error: %v, %d calls", err, calls)
	}
}

// Compaction reads the live records it moves through ReadBatch: a request
// per run, not one per record.
func TestCompactReadsInBatches(t *testing.T) {
	s := natstest.StartServer(t)
	nc := natstest.Connect(t, s)
	l, err := Open(context.Background(), nc, Options{Stream: "COMPACTB", SegmentRecords: 500, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	live := map[uint64]string{}
	for i := 0; i < 3000; i += 100 {
		recs := make([]journal.Record, 100)
		for j := range recs {
			recs[j] = journal.Record{Type: 1, Data: fmt.Appendf(nil, "r%d", i+j+1)}
		}
		first, _, err := l.Append(context.Background(), recs)
		if err != nil {
			t.Fatal(err)
		}
		for j := range recs {
			if (i+j)%10 == 0 {
				live[first+uint64(j)] = string(recs[j].Data)
			}
		}
	}
	requests := natstest.CountRequests(t, nc, "$JS.API.DIRECT.GET.COMPACTB")
	res, err := journal.Compact(l, journal.CompactOptions{Live: func(i uint64) bool { _, ok := live[i]; return ok }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Moves) < 200 {
		t.Fatalf("compaction moved %d records: the test does not exercise it", len(res.Moves))
	}
	for _, m := range res.Moves {
		r, err := l.Read(m.To)
		if err != nil || string(r.Data) != live[m.From] || r.Moved != m.From {
			t.Fatalf("moved %d to %d: read %q moved %d, %v; want %q", m.From, m.To, r.Data, r.Moved, err, live[m.From])
		}
	}
	// The reads for measuring segments (no sizes given) and for moving
	// records, a few batches; then the checks' Reads, one per move.
	if r := requests.Count(t); r > len(res.Moves)+20 {
		t.Fatalf("%d direct get requests for %d moves", r, len(res.Moves))
	}
}

// The log keeps two snapshot objects and replaces the older: the one
// before the newest is there to fall back on (LoadSnapshotBefore), and
// OldestSnapshot says where a replay from it starts. A snapshot saved by a
// broker before this (one object, "snapshot") is read as one of the two;
// one whose index is unreadable is skipped with a warning, and reported as
// corruption when nothing else is left.
func TestSnapshotSlots(t *testing.T) {
	s := natstest.StartServer(t)
	nc := natstest.Connect(t, s)
	var logged strings.Builder
	l, err := Open(context.Background(), nc, Options{Stream: "SLOTS", Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 12 {
		if _, _, err := l.Append(context.Background(), []journal.Record{{Type: 1, Data: fmt.Appendf(nil, "r%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	obs, err := l.objects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// What a broker before this saved: the one object, at 3.
	put := func(name, index, data string) {
		t.Helper()
		meta := njs.ObjectMeta{Name: name, Metadata: map[string]string{"index": index}}
		if _, err := obs.Put(context.Background(), meta, strings.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	put("snapshot", "3", "at 3")
	load := func(want uint64, wantData string, get func() (uint64, []byte, error)) {
		t.Helper()
		idx, data, err := get()
		if err != nil || idx != want || string(data) != wantData {
			t.Fatalf("got %d, %q, %v; want %d, %q", idx, data, err, want, wantData)
		}
	}
	oldest := func(want uint64) {
		t.Helper()
		if got, err := l.OldestSnapshot(); err != nil || got != want {
			t.Fatalf("OldestSnapshot = %d, %v; want %d", got, err, want)
		}
	}
	load(3, "at 3", l.LoadSnapshot)
	oldest(3)
	for _, i := range []uint64{7, 11} {
		if err := l.SaveSnapshot(i, fmt.Appendf(nil, "at %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	load(11, "at 11", l.LoadSnapshot)
	load(7, "at 7", func() (uint64, []byte, error) { return l.LoadSnapshotBefore(11) })
	oldest(7)
	if _, _, err := l.LoadSnapshotBefore(7); !errors.Is(err, journal.ErrNoSnapshot) {
		t.Fatalf("LoadSnapshotBefore(7): %v, want ErrNoSnapshot", err)
	}
	// Saving at the newest index again replaces the newest, not the older.
	if err := l.SaveSnapshot(11, []byte("at 11, again")); err != nil {
		t.Fatal(err)
	}
	load(11, "at 11, again", l.LoadSnapshot)
	oldest(7)
	// A snapshot object whose index is unreadable is passed over.
	put("snapshot-2", "x", "no index")
	idx, _, err := l.LoadSnapshot()
	if err != nil || idx != 11 {
		t.Fatalf("LoadSnapshot beside an unreadable object: %d, %v", idx, err)
	}
	if !strings.Contains(logged.String(), "skipping damaged snapshot") {
		t.Fatalf("no warning for the unreadable object:\n%s", logged.String())
	}
	put("snapshot", "y", "no index either")
	var ce *journal.CorruptionError
	if _, _, err := l.LoadSnapshot(); !errors.As(err, &ce) {
		t.Fatalf("LoadSnapshot with no readable object: %v, want a CorruptionError", err)
	}
	if _, err := l.OldestSnapshot(); !errors.Is(err, journal.ErrNoSnapshot) {
		t.Fatalf("OldestSnapshot with no readable object: %v, want ErrNoSnapshot", err)
	}
}

func TestCheckServerVersion(t *testing.T) {
	for v, ok := range map[string]bool{
		"2.15.2": true, "2.12.0": true, "2.12.1-RC.1": true, "v2.13.0": true, "3.0.0": true,
		"2.11.9": false, "2.10.24": false, "1.4.1": false, "": false, "2.x": false,
	} {
		if err := checkServerVersion(v); (err == nil) != ok {
			t.Errorf("checkServerVersion(%q) = %v, want ok %t", v, err, ok)
		}
	}
}
