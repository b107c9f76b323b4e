// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/memlog"
)

// TestJournalErrorsSayJournalOnce: a journal error reaches the caller
// wrapped, named as the journal's once ("journal: journal: closed" was).
func TestJournalErrorsSayJournalOnce(t *testing.T) {
	store := memlog.NewStore(1 << 20)
	l, err := store.Open()
	if err != nil {
		t.Fatal(err)
	}
	b, err := core.Open(core.Options{Journal: l, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	l.Close()
	err = b.Send(context.Background(), &core.Message{Destination: core.Destination{Kind: core.Queue, Name: "q"}, Persistent: true, Body: []byte("x")})
	if !errors.Is(err, journal.ErrClosed) {
		t.Fatalf("a send to a closed journal: %v", err)
	}
	if strings.Count(err.Error(), "journal:") != 1 {
		t.Fatalf("the error names the journal more than once: %q", err)
	}
}
