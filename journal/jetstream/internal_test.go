// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package jetstream

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

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
