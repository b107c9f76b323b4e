// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package wal_test

import (
	"context"
	"errors"
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

// Lazy appends under SyncAlways wait in the queue: the next ordinary
// append writes them in its own group, before its records, and makes them
// durable with it; without one, the timer writes and fsyncs them.
func TestAppendLazy(t *testing.T) {
	l, err := wal.Open(t.TempDir(), wal.Options{SyncInterval: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	if _, _, err := l.Append(ctx, []journal.Record{{Type: 1, Data: []byte("a")}}); err != nil {
		t.Fatal(err)
	}
	if err := l.AppendLazy(ctx, []journal.Record{{Type: 2, Data: []byte("lazy")}}); err != nil {
		t.Fatal(err)
	}
	if l.LastIndex() != 1 || l.DurableIndex() != 1 {
		t.Fatalf("after a lazy append: last %d durable %d, want 1 and 1 (it waits for a group)", l.LastIndex(), l.DurableIndex())
	}
	if f, last, err := l.Append(ctx, []journal.Record{{Type: 1, Data: []byte("b")}}); err != nil || f != 3 || last != 3 {
		t.Fatalf("an ordinary append after it: [%d, %d] %v, want [3, 3]", f, last, err)
	}
	if l.DurableIndex() != 3 {
		t.Fatalf("after the ordinary append: durable %d, want 3", l.DurableIndex())
	}
	if r, err := l.Read(2); err != nil || string(r.Data) != "lazy" {
		t.Fatalf("record 2: %q %v, want the lazy one", r.Data, err)
	}
	// Sync writes what is queued and makes it durable (NackWait relies on it).
	if err := l.AppendLazy(ctx, []journal.Record{{Type: 2, Data: []byte("lazy2")}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(); err != nil || l.LastIndex() != 4 || l.DurableIndex() != 4 {
		t.Fatalf("Sync after a lazy append: %v, last %d durable %d, want 4 and 4", err, l.LastIndex(), l.DurableIndex())
	}
	if err := l.AppendLazy(ctx, []journal.Record{{Type: 0}}); !errors.Is(err, journal.ErrInvalidRecord) {
		t.Fatalf("a lazy append of an invalid record: %v", err)
	}

	l2, err := wal.Open(t.TempDir(), wal.Options{SyncInterval: 10 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	for i := range 3 {
		if err := l2.AppendLazy(ctx, []journal.Record{{Type: 1, Data: []byte{byte(i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); l2.LastIndex() != 3 || l2.DurableIndex() != 3; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("lazy appends were not written and fsynced by the timer: last %d durable %d", l2.LastIndex(), l2.DurableIndex())
		}
	}

	// Close writes what is still queued.
	dir := t.TempDir()
	l3, err := wal.Open(dir, wal.Options{SyncInterval: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := l3.AppendLazy(ctx, []journal.Record{{Type: 1, Data: []byte("c")}}); err != nil {
		t.Fatal(err)
	}
	if err := l3.Close(); err != nil {
		t.Fatal(err)
	}
	if l3, err = wal.Open(dir, wal.Options{Logger: quiet}); err != nil || l3.LastIndex() != 1 {
		t.Fatalf("reopen after a lazy append and Close: %v, last %d, want 1", err, l3.LastIndex())
	}
	l3.Close()
}
