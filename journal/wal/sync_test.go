// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package wal_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/wal"
)

// TestSyncPolicies pins down what each policy promises. always: an append
// is durable when it returns. interval: it is written (a process crash
// loses nothing) but durable only at the next fsync, at most SyncInterval
// later: the records in (DurableIndex, LastIndex] are the window a power
// loss can take. never: durable only on Sync or Close.
func TestSyncPolicies(t *testing.T) {
	appendN := func(t *testing.T, l *wal.Log, n int) {
		t.Helper()
		for range n {
			if _, _, err := l.Append(context.Background(), []journal.Record{{Type: 1, Data: []byte("r")}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("always", func(t *testing.T) {
		l, err := wal.Open(t.TempDir(), wal.Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		for i := range 20 {
			appendN(t, l, 1)
			if d := l.DurableIndex(); d != uint64(i+1) {
				t.Fatalf("after append %d DurableIndex = %d", i+1, d)
			}
		}
	})
	t.Run("interval window", func(t *testing.T) {
		dir := t.TempDir()
		l, err := wal.Open(dir, wal.Options{Sync: journal.SyncInterval, SyncInterval: time.Hour, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		appendN(t, l, 10)
		if l.LastIndex() != 10 || l.DurableIndex() != 0 {
			t.Fatalf("with an hour's interval: last %d durable %d, want 10 and 0 (the window)", l.LastIndex(), l.DurableIndex())
		}
		// What a kill -9 leaves (every write, synced or not) holds them all.
		crash, err := wal.Open(clone(t, dir), wal.Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if crash.LastIndex() != 10 {
			t.Fatalf("after a process crash the log ends at %d, want 10", crash.LastIndex())
		}
		crash.Close()
		if err := l.Sync(); err != nil || l.DurableIndex() != 10 {
			t.Fatalf("Sync: %v; DurableIndex %d, want 10", err, l.DurableIndex())
		}
	})
	t.Run("interval fires", func(t *testing.T) {
		l, err := wal.Open(t.TempDir(), wal.Options{Sync: journal.SyncInterval, SyncInterval: 10 * time.Millisecond, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		appendN(t, l, 5)
		deadline := time.Now().Add(10 * time.Second)
		for l.DurableIndex() != 5 {
			if time.Now().After(deadline) {
				t.Fatalf("DurableIndex %d 10s after the appends, with a 10ms interval", l.DurableIndex())
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	t.Run("never", func(t *testing.T) {
		dir := t.TempDir()
		l, err := wal.Open(dir, wal.Options{Sync: journal.SyncNever, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		appendN(t, l, 7)
		if l.DurableIndex() != 0 {
			t.Fatalf("DurableIndex %d under never, want 0", l.DurableIndex())
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l, err = wal.Open(dir, wal.Options{Sync: journal.SyncNever, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if l.LastIndex() != 7 || l.DurableIndex() != 7 {
			t.Fatalf("after Close and reopen: last %d durable %d, want 7 and 7", l.LastIndex(), l.DurableIndex())
		}
	})
}

// Lazy appends under SyncAlways are written at once but fsynced only with
// the next ordinary append, or by the interval timer.
func TestAppendLazy(t *testing.T) {
	l, err := wal.Open(t.TempDir(), wal.Options{SyncInterval: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rec := []journal.Record{{Type: 1, Data: []byte("r")}}
	if _, _, err := l.Append(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if _, last, err := l.AppendLazy(context.Background(), rec); err != nil || last != 2 {
		t.Fatalf("AppendLazy: %d %v", last, err)
	}
	if l.LastIndex() != 2 || l.DurableIndex() != 1 {
		t.Fatalf("after a lazy append: last %d durable %d, want 2 and 1", l.LastIndex(), l.DurableIndex())
	}
	if _, _, err := l.Append(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if l.DurableIndex() != 3 {
		t.Fatalf("an ordinary append after it: durable %d, want 3", l.DurableIndex())
	}
	l2, err := wal.Open(t.TempDir(), wal.Options{SyncInterval: 10 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	l2.AppendLazy(context.Background(), rec)
	for deadline := time.Now().Add(10 * time.Second); l2.DurableIndex() != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a lazy append was not fsynced by the interval timer")
		}
	}
}
