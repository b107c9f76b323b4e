// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package wal_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/wal"
)

// TestFollower: a follower polling while a writer appends batches of every
// size across small segments sees every record once, in order, and only
// whole batches.
func TestFollower(t *testing.T) {
	dir := t.TempDir()
	opts := wal.Options{SegmentBytes: 32 << 10, MaxRecordBytes: 2 << 10}
	l, err := wal.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ends := map[uint64]bool{} // batch ends, written before they are appended
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		next := uint64(1)
		for range 400 {
			n := 1 + rng.IntN(12)
			recs := make([]journal.Record, n)
			for i := range recs {
				recs[i] = journal.Record{Type: 5, Data: fmt.Appendf(nil, "%d:%s", next+uint64(i), make([]byte, rng.IntN(1500)))}
			}
			mu.Lock()
			ends[next+uint64(n)-1] = true
			mu.Unlock()
			if _, _, err := l.Append(context.Background(), recs); err != nil {
				t.Error(err)
				return
			}
			next += uint64(n)
		}
	}()
	f := wal.NewFollower(dir, 1, opts.MaxRecordBytes)
	want := uint64(1)
	poll := func() {
		_, err := f.Poll(func(r journal.Record) error {
			if r.Index != want {
				return fmt.Errorf("record %d where %d was expected", r.Index, want)
			}
			if got := fmt.Sprintf("%d:", r.Index); string(r.Data[:len(got)]) != got {
				return fmt.Errorf("record %d holds %q", r.Index, r.Data[:len(got)])
			}
			want++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if f.Next() > 1 && !ends[f.Next()-1] {
			t.Fatalf("poll stopped after record %d, inside a batch", f.Next()-1)
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		poll()
	}
	poll()
	if want-1 != l.LastIndex() {
		t.Fatalf("follower reached %d, the log ends at %d", want-1, l.LastIndex())
	}
	if len(l.Segments()) < 10 {
		t.Fatalf("only %d segments: the test should cross many", len(l.Segments()))
	}
	// Compaction past a follower that is behind: it must say so.
	behind := wal.NewFollower(dir, 1, opts.MaxRecordBytes)
	if _, err := behind.Poll(func(journal.Record) error { return errors.New("stop") }); err == nil {
		t.Fatal("want the stop error")
	}
	lagging := wal.NewFollower(dir, 1, opts.MaxRecordBytes)
	n := 0
	lagging.Poll(func(journal.Record) error {
		if n++; n > 5 {
			return errors.New("pause")
		}
		return nil
	})
	if err := l.TruncateFront(l.LastIndex() - 10); err != nil {
		t.Fatal(err)
	}
	if _, err := lagging.Poll(func(journal.Record) error { return nil }); !errors.Is(err, wal.ErrBehind) {
		t.Fatalf("follower behind a compaction: %v, want ErrBehind", err)
	}
}
