// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/memlog"
	"github.com/cairnmq/cairn/journal/wal"
)

// openMaintained starts a broker on a wal journal in dir with background
// maintenance, as cairn serve runs it; stop ends both without a final
// snapshot (as a kill -9 would leave the journal).
func openMaintained(t *testing.T, dir string, wo wal.Options, opts core.Options) (*core.Broker, *wal.Log, func()) {
	t.Helper()
	wo.Logger = quiet
	l, err := wal.Open(dir, wo)
	if err != nil {
		t.Fatal(err)
	}
	opts.Journal, opts.Logger = l, quiet
	if opts.MaintainEvery == 0 {
		opts.MaintainEvery = 50 * time.Millisecond
	}
	b, err := core.Open(opts)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	return b, l, func() { b.Close(); l.Close() }
}

// diskBytes is what the journal directory holds: segments, snapshots,
// manifest (not the ring or the reserve, which are fixed).
func diskBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && fi.Name() != "RING" && fi.Name() != "RESERVE" {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// flow sends n persistent messages of size bytes to queue q and has sub
// consume them, acking each, so that almost nothing is pending.
func flow(t *testing.T, b *core.Broker, sub *core.Subscription, in inbox, n, size int, after func(i int)) {
	t.Helper()
	body := make([]byte, size)
	for i := range n {
		m := &core.Message{Destination: core.Destination{Kind: core.Queue, Name: "flow"}, Persistent: true, Priority: 4, Body: body}
		if err := b.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		d := in.next(t)
		if err := sub.Ack(context.Background(), d.Msg.Seq); err != nil {
			t.Fatal(err)
		}
		if after != nil {
			after(i)
		}
	}
}

// Large messages flowing through an almost empty queue keep the journal
// within 2 × pending + 2 snapshot intervals + two segments, whatever their
// size: the snapshot trigger counts bytes as well as records. (Before, a
// snapshot came only every 100,000 records: 64 KiB messages flowing
// through a queue with a consumer keeping up filled a 96 MiB disk.)
func TestJournalBoundedByBytes(t *testing.T) {
	dir := t.TempDir()
	const seg, interval = 1 << 20, 2 << 20
	b, _, stop := openMaintained(t, dir, wal.Options{SegmentBytes: seg, MaxRecordBytes: 128 << 10, Sync: journal.SyncNever},
		core.Options{SnapshotBytes: interval})
	defer stop()
	sub, in := subscribe(t, b, "/queue/flow", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 10})
	const size, n = 64 << 10, 1000             // 64 MiB through the journal
	bound := int64(2*interval + 2*seg + 2*seg) // nothing pending; slack of a segment for a pass in progress and the snapshots
	var worst int64
	flow(t, b, sub, in, n, size, func(i int) {
		if i%50 == 49 {
			time.Sleep(5 * time.Millisecond) // let a woken maintenance pass finish, as a real flow would
			worst = max(worst, diskBytes(t, dir))
		}
	})
	if worst > bound {
		t.Fatalf("%d MiB flowed through an almost empty queue and the journal reached %d KiB, over the %d KiB bound",
			n*size>>20, worst>>10, bound>>10)
	}
	t.Logf("64 MiB through the journal: at most %d KiB on disk (bound %d KiB)", worst>>10, bound>>10)
}

// A broker restarted more often than it fills a snapshot interval still
// snapshots and compacts: the interval is counted from the snapshot, as the
// journal holds it, not from when the process started. Start-up with
// nothing pending replays at most about one interval, however many times
// it restarted. (Before, in a kill loop, replay grew from 119k to 246k
// records and the journal from 111 to 150 MiB, with nothing pending.)
func TestRestartsDoNotResetTheSnapshotCount(t *testing.T) {
	dir := t.TempDir()
	const every = 2000
	opts := core.Options{SnapshotEvery: every}
	wo := wal.Options{SegmentBytes: 256 << 10, MaxRecordBytes: 64 << 10, Sync: journal.SyncNever}
	var replayed []uint64
	for range 12 {
		b, _, stop := openMaintained(t, dir, wo, opts)
		replayed = append(replayed, b.Recovery().Records)
		sub, in := subscribe(t, b, "/queue/flow", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 10})
		flow(t, b, sub, in, every/3, 100, nil) // 2 records a message: a third of the interval in messages is 2/3 in records
		time.Sleep(150 * time.Millisecond)     // a tick of maintenance, as a broker up for a while would get
		sub.Close()
		stop() // no final snapshot
	}
	for i, r := range replayed {
		if r > 2*every {
			t.Fatalf("start-up %d replayed %d records with nothing pending, over two intervals of %d (all: %v)", i, r, every, replayed)
		}
	}
	if got := diskBytes(t, dir); got > 4<<20 {
		t.Fatalf("after 12 restarts with nothing pending the journal holds %d KiB", got>>10)
	}
	t.Logf("records replayed at each start-up: %v", replayed)
}

// StoreLimit bounds the journal's disk use, not only the persistent bytes
// pending. Here every segment is half live (a kept queue and a consumed one
// interleaved), which the usual 0.5 threshold never compacts: the journal
// would hold twice what is pending. At the journal limit (StoreLimit plus
// two segments and two snapshot intervals) maintenance compacts at a 0.9
// live share instead, and brings it back under.
func TestStoreLimitBoundsTheJournal(t *testing.T) {
	dir := t.TempDir()
	const limit, seg, interval = 4 << 20, 256 << 10, 512 << 10
	b, l, stop := openMaintained(t, dir, wal.Options{SegmentBytes: seg, MaxRecordBytes: 64 << 10, Sync: journal.SyncNever},
		core.Options{StoreLimit: limit, StoreFullError: true, SnapshotBytes: interval})
	defer stop()
	sub, in := subscribe(t, b, "/queue/gone", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 10})
	body := make([]byte, 32<<10)
	send := func(q string) error {
		m := &core.Message{Destination: core.Destination{Kind: core.Queue, Name: q}, Persistent: true, Priority: 4, Body: body}
		return b.Send(context.Background(), m)
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := range 120 { // 3.75 MiB kept, 3.75 MiB consumed, interleaved
		for _, q := range []string{"kept", "gone"} {
			for err := send(q); err != nil; err = send(q) {
				if time.Now().After(deadline) {
					t.Fatalf("send %d held at the store limit for 30s: %v", i, err)
				}
				time.Sleep(10 * time.Millisecond) // held at the limit while maintenance frees room
			}
		}
		d := in.next(t)
		if err := sub.Ack(context.Background(), d.Msg.Seq); err != nil {
			t.Fatal(err)
		}
	}
	bound := int64(limit + 2*seg + 2*interval)
	var total int64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		total = 0
		for _, s := range l.Segments() {
			total += s.Bytes
		}
		if total <= bound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with 3.75 MiB pending the journal holds %d KiB, over the %d KiB the 4 MiB store limit allows", total>>10, bound>>10)
		}
	}
	t.Logf("3.75 MiB pending, half of every segment dead: the journal holds %d KiB (bound %d KiB)", total>>10, bound>>10)
}

// publish sends n non-persistent messages of size bytes to topic name.
func publish(t *testing.T, b *core.Broker, name string, n, size int) {
	t.Helper()
	body := make([]byte, size)
	for range n {
		m := &core.Message{Destination: core.Destination{Kind: core.Topic, Name: name}, Priority: 4, Body: body}
		if err := b.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

// A topic subscriber that does not read holds at most TopicBacklogBytes
// beyond its prefetch, whatever the messages' size, and what it loses is
// counted on its subscription.
func TestTopicBacklogBoundedInBytes(t *testing.T) {
	b, _ := open(t, memlog.NewStore(1<<20), core.Options{TopicBacklogBytes: 64 << 10, TopicPublishWait: 10 * time.Millisecond})
	slow, in := subscribe(t, b, "/topic/big", core.SubscribeOptions{Mode: core.AckClient, Prefetch: 1})
	publish(t, b, "big", 100, 4<<10)
	first := in.next(t) // the one its prefetch took
	// A publish reaches the topic's loop after Send returns: wait until all
	// 100 are offered (each 192 + 4,096 bytes by Size: 15 fit in 64 KiB).
	for deadline := time.Now().Add(10 * time.Second); slow.Dropped() < 100-1-15; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("dropped %d of the 84 that do not fit, after 10s", slow.Dropped())
		}
	}
	held := int(100 - 1 - slow.Dropped())
	if slow.Dropped() == 0 || held*4<<10 > 64<<10 {
		t.Fatalf("a subscriber that read nothing holds %d messages of 4 KiB beyond its prefetch (dropped %d), over 64 KiB", held, slow.Dropped())
	}
	if err := slow.Ack(context.Background(), first.Msg.Seq); err != nil {
		t.Fatal(err)
	}
	for range held { // then it gets what its backlog kept, the newest
		d := in.next(t)
		if err := slow.Ack(context.Background(), d.Msg.Seq); err != nil {
			t.Fatal(err)
		}
	}
	in.none(t, 50*time.Millisecond)
}

// A topic subscriber's deliveries in flight are bounded in bytes too,
// whatever its prefetch: one asking for 100,000 that acknowledges nothing
// is given about TopicBacklogBytes of them, the rest wait in its backlog.
func TestTopicInflightBoundedInBytes(t *testing.T) {
	b, _ := open(t, memlog.NewStore(1<<20), core.Options{TopicBacklogBytes: 64 << 10, TopicPublishWait: 10 * time.Millisecond})
	sub, in := subscribe(t, b, "/topic/wide", core.SubscribeOptions{Mode: core.AckClient, Prefetch: 100000})
	publish(t, b, "wide", 100, 4<<10)
	// Wait until all 100 are offered: 15 in flight (192 + 4,096 bytes each by
	// Size), 15 in the backlog, 70 lost.
	for deadline := time.Now().Add(10 * time.Second); sub.Dropped() < 70; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("dropped %d after 10s, want 70 (%d delivered)", sub.Dropped(), len(in))
		}
	}
	if n := len(in); n == 0 || n*4<<10 > 64<<10+4<<10 {
		t.Fatalf("a subscriber with a prefetch of 100,000 that acknowledged nothing was given %d messages of 4 KiB, over 64 KiB", n)
	}
	var last core.Delivery
	for len(in) > 0 {
		last = <-in
	}
	if err := sub.Ack(context.Background(), last.Msg.Seq); err != nil { // cumulative: all of them
		t.Fatal(err)
	}
	in.next(t) // the backlog flows again
}

// countingHandler counts the log records whose message is msg.
type countingHandler struct {
	msg string
	n   *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// The bytes since the snapshot are those after its record, not the whole
// segment holding it: with segments much larger than the interval and
// messages piling up, maintenance runs about once an interval (before, it
// ran on every append once the segment passed the interval: a snapshot
// every few milliseconds in the fault harness).
func TestSnapshotsOncePerInterval(t *testing.T) {
	dir := t.TempDir()
	var passes atomic.Int64
	wo := wal.Options{SegmentBytes: 8 << 20, MaxRecordBytes: 64 << 10, Sync: journal.SyncNever, Logger: quiet}
	l, err := wal.Open(dir, wo)
	if err != nil {
		t.Fatal(err)
	}
	b, err := core.Open(core.Options{Journal: l, Logger: slog.New(countingHandler{"journal maintenance", &passes}),
		MaintainEvery: time.Hour, SnapshotBytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	defer b.Close()
	body := make([]byte, 16<<10) // large messages: the snapshots stay small, and the interval 256 KiB
	for range 128 {              // 2 MiB, nothing consumed: eight intervals
		m := &core.Message{Destination: core.Destination{Kind: core.Queue, Name: "pile"}, Persistent: true, Priority: 4, Body: body}
		if err := b.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // a producer, not a loop in memory: a pass keeps up
	}
	time.Sleep(100 * time.Millisecond)
	if n := passes.Load(); n < 4 || n > 16 {
		t.Fatalf("%d maintenance passes for 2 MiB in 256 KiB intervals, want about 8", n)
	}
}
