// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/journaltest"
	"github.com/cairnmq/cairn/journal/wal"
)

// TestJournalCommands builds cairn and runs the journal tools on real
// journals: clean, torn and corrupt, checking exit codes and messages.
func TestJournalCommands(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "cairn")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	run := func(args ...string) (string, int) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	dir := t.TempDir()
	l, err := wal.Open(dir, wal.Options{SegmentBytes: 8 << 10, MaxRecordBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		recs := []journal.Record{{Type: 3, Data: []byte(strings.Repeat("x", 100+i))}, {Type: 4, Data: []byte("ack")}}
		if _, _, err := l.Append(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
	for _, snap := range []uint64{60, 150} {
		if err := l.SaveSnapshot(snap, []byte("state")); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	front := filepath.Join(t.TempDir(), "front") // a copy, truncated at the front

	steps := []struct {
		args []string
		prep func()
		code int
		want string
	}{
		{args: []string{"journal", "verify", dir}, code: 0, want: "records 1-200"},
		{args: []string{"journal", "inspect", "--json", dir}, code: 0, want: `{"index":200,"type":4,"size":3,"batch":199}`},
		{args: []string{"journal", "stats", dir}, code: 0, want: "tail: being written"},
		{args: []string{"journal", "stats", dir}, code: 0, want: "holds records after the newest snapshot (150)"},
		{args: []string{"journal", "stats", dir}, code: 0, want: "holds records after the older snapshot kept (60), which replay reads if the newest is damaged"},
		{args: []string{"journal", "verify", dir}, code: 0, want: "note: start-up uses the newest snapshot that is intact, at 60", prep: func() {
			journaltest.DamageFile(t, filepath.Join(dir, "snapshots", fmt.Sprintf("%020d.snap", 150)))
		}},
		{args: []string{"journal", "verify", dir}, code: 0, want: "note: no snapshot is intact, but the journal still holds every record", prep: func() {
			journaltest.DamageFile(t, filepath.Join(dir, "snapshots", fmt.Sprintf("%020d.snap", 60)))
		}},
		{args: []string{"journal", "verify", front}, code: 2, want: "corrupt: no snapshot is intact, and records before 101 are gone", prep: func() {
			if err := os.CopyFS(front, os.DirFS(dir)); err != nil {
				t.Fatal(err)
			}
			l, err := wal.Open(front, wal.Options{SegmentBytes: 8 << 10, MaxRecordBytes: 1 << 10})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.TruncateFront(101); err != nil {
				t.Fatal(err)
			}
			l.Close()
		}},
		{args: []string{"journal", "verify", dir}, code: 0, want: "records 1-200", prep: func() {
			if err := os.RemoveAll(filepath.Join(dir, "snapshots")); err != nil {
				t.Fatal(err)
			}
		}},
		{args: []string{"journal", "verify"}, code: 2, want: "needs exactly one argument"},
		{args: []string{"journal", "verify", "--bogus", dir}, code: 2, want: "flag provided but not defined"},
		{args: []string{"journal", "frobnicate"}, code: 2, want: `no command "frobnicate"`},
		{args: []string{"journal", "verify", t.TempDir()}, code: 1, want: "not a Cairn journal"},
		{args: []string{"journal", "verify", dir}, code: 1, want: "torn tail", prep: func() {
			segs := segments(t, dir)
			tail := segs[len(segs)-1]
			fi, _ := os.Stat(tail)
			os.Truncate(tail, fi.Size()-3)
		}},
		{args: []string{"journal", "repair", dir}, code: 0, want: "records 199-199 dropped"},
		{args: []string{"journal", "verify", dir}, code: 0, want: "records 1-198"},
		{args: []string{"journal", "verify", dir}, code: 2, want: "crc32c mismatch", prep: func() {
			b, _ := os.ReadFile(segments(t, dir)[0])
			b[300] ^= 1
			os.WriteFile(segments(t, dir)[0], b, 0o644)
		}},
		{args: []string{"version"}, code: 0, want: "cairn "},
	}
	for _, s := range steps {
		if s.prep != nil {
			s.prep()
		}
		out, code := run(s.args...)
		if code != s.code || !strings.Contains(out, s.want) {
			t.Fatalf("cairn %s: exit %d, want %d, output containing %q:\n%s", strings.Join(s.args, " "), code, s.code, s.want, out)
		}
	}
}

func segments(t *testing.T, dir string) []string {
	m, err := filepath.Glob(filepath.Join(dir, "wal", "0*"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no segments in %s", dir)
	}
	sort.Strings(m)
	return m
}
