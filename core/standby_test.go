// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/wal"
)

// TestWarmStandby: a standby follows a live broker's journal through
// sends, acks, redeliveries, snapshots and compaction; at takeover Open
// starts from its state, replays only the records it had not read, and ends
// up with exactly what a cold start finds.
func TestWarmStandby(t *testing.T) {
	dir := t.TempDir()
	wo := wal.Options{SegmentBytes: 64 << 10, MaxRecordBytes: 16 << 10}
	b, stop := openOnWal(t, dir, wo)
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	st, err := core.NewStandby(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := wal.NewFollower(dir, st.From(1), wo.MaxRecordBytes)
	follow := func() {
		t.Helper()
		if _, err := f.Poll(st.Apply); err != nil {
			t.Fatal(err)
		}
	}
	body := func(i int) string { return fmt.Sprintf("%04d-%s", i, strings.Repeat("x", 1000)) }
	for i := range 2000 {
		send(t, b, "/queue/keep", body(i), true)
		if i%300 == 0 {
			follow()
		}
	}
	s, in := subscribe(t, b, "/queue/keep", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 5000})
	kept := map[string]bool{}
	for i := range 2000 {
		d := in.next(t)
		if i%100 == 7 {
			kept[string(d.Msg.Body)] = true
			continue
		}
		if err := s.Ack(context.Background(), d.Msg.Seq); err != nil {
			t.Fatal(err)
		}
		if i%500 == 0 {
			follow()
		}
	}
	s.Close() // the kept ones go back to pending, redelivered
	follow()
	for range 2 {
		if _, err := b.Maintain(true); err != nil {
			t.Fatal(err)
		}
		follow()
	}
	for i := range 100 {
		send(t, b, "/queue/late", fmt.Sprint("late-", i), true)
	}
	read := st.Read()
	stop()
	stop = nil

	l, err := wal.Open(dir, wal.Options{SegmentBytes: wo.SegmentBytes, MaxRecordBytes: wo.MaxRecordBytes, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	b2, err := core.Open(core.Options{Journal: l, Logger: quiet, MaintainEvery: -1, Standby: st})
	if err != nil {
		t.Fatal(err)
	}
	rec := b2.Recovery()
	if !rec.Warm || rec.Records != l.LastIndex()-read || rec.Messages != len(kept)+100 {
		t.Fatalf("warm recovery %+v (standby read to %d, journal ends at %d), want warm, %d records, %d messages",
			rec, read, l.LastIndex(), l.LastIndex()-read, len(kept)+100)
	}
	_, in2 := subscribe(t, b2, "/queue/keep", core.SubscribeOptions{})
	for range len(kept) {
		d := in2.next(t)
		if !kept[string(d.Msg.Body)] || !d.Redelivered {
			t.Fatalf("after a warm takeover got %q (redelivered %v)", d.Msg.Body[:4], d.Redelivered)
		}
		delete(kept, string(d.Msg.Body))
	}
	in2.none(t, 50*time.Millisecond)
	_, in3 := subscribe(t, b2, "/queue/late", core.SubscribeOptions{})
	for i := range 100 {
		if d := in3.next(t); string(d.Msg.Body) != fmt.Sprint("late-", i) {
			t.Fatalf("late message %d is %q", i, d.Msg.Body)
		}
	}
	b2.Close()
	l.Close()

	// A spent or mismatched standby: Open says so and replays cold.
	if err := st.Apply(journal.Record{Index: 1, Type: 1}); err == nil {
		t.Fatal("a spent standby took a record")
	}
}

// TestStandbyBehindCompaction: a follower that fell behind compaction gets
// ErrBehind; a fresh standby from the newest snapshot catches up.
func TestStandbyBehindCompaction(t *testing.T) {
	dir := t.TempDir()
	wo := wal.Options{SegmentBytes: 64 << 10, MaxRecordBytes: 16 << 10}
	b, stop := openOnWal(t, dir, wo)
	defer stop()
	st, _ := core.NewStandby(0, nil)
	f := wal.NewFollower(dir, st.From(1), wo.MaxRecordBytes)
	if _, err := f.Poll(st.Apply); err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		send(t, b, "/queue/c", fmt.Sprintf("%d-%s", i, strings.Repeat("y", 1000)), true)
	}
	s, in := subscribe(t, b, "/queue/c", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 1000})
	for range 500 {
		d := in.next(t)
		s.Ack(context.Background(), d.Msg.Seq)
	}
	f.Poll(func(r journal.Record) error { return errors.New("stall") }) // position it at the start
	for range 2 {
		if _, err := b.Maintain(true); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.Poll(func(journal.Record) error { return nil })
	if !errors.Is(err, wal.ErrBehind) {
		t.Fatalf("follower behind compaction: %v", err)
	}
	idx, data, err := wal.ReadSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	st2, err := core.NewStandby(idx, data)
	if err != nil {
		t.Fatal(err)
	}
	f2 := wal.NewFollower(dir, st2.From(1), wo.MaxRecordBytes)
	if _, err := f2.Poll(st2.Apply); err != nil {
		t.Fatal(err)
	}
	if st2.Pending() != 0 {
		t.Fatalf("fresh standby holds %d messages, want 0", st2.Pending())
	}
}
