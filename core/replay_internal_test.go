// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/memlog"
)

// A record that does not decode, with batches of good records on both
// sides of it, fails the start-up with its index: the reading goroutine of
// the two-stage replay stops, and nothing hangs.
func TestReplayStopsAtABadRecord(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	store := memlog.NewStore(1 << 26)
	l, err := store.Open()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(Options{Journal: l, Logger: quiet, MaintainEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	const n = 5 * replayBatch
	for i := range n {
		m := &Message{Destination: Destination{Queue, "q"}, Persistent: true, Priority: 4, Body: fmt.Appendf(nil, "m%d", i)}
		if err := b.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	last := l.LastIndex()
	bad, _, err := l.Append(context.Background(), []journal.Record{{Type: evEnqueue, Data: []byte{0xff, 0xff, 0xff}}})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= n; i++ { // more batches after it
		r, err := l.Read(last - n + i)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := l.Append(context.Background(), []journal.Record{{Type: r.Type, Data: r.Data}}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()

	l, err = store.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b, err = Open(Options{Journal: l, Logger: quiet, MaintainEvery: -1})
	if err == nil {
		b.Close()
		t.Fatal("a broker opened on a journal with an undecodable enqueue record")
	}
	t.Logf("open: %v", err)
	if want := fmt.Sprintf("journal record %d:", bad); !strings.Contains(err.Error(), want) {
		t.Fatalf("open: %v; want an error naming %q", err, want)
	}
}
