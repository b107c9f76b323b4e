// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/internal/natstest"
	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/jetstream"
	"github.com/cairnmq/cairn/journal/journaltest"
	"github.com/cairnmq/cairn/journal/memlog"
	"github.com/cairnmq/cairn/journal/wal"
)

// TestRestartPagesTheBacklog: a restart reads no message body. Every
// pending message comes back paged, in dispatch order (priority, then
// sequence), with its size accounted; consumers get the bodies as the
// queue reads them back. From a snapshot, the restart reads only the
// records written after it.
func TestRestartPagesTheBacklog(t *testing.T) {
	dir := t.TempDir()
	wo := wal.Options{SegmentBytes: 64 << 10, MaxRecordBytes: 16 << 10}
	b, stop := openOnWal(t, dir, wo)
	body := func(prio, i int) string { return fmt.Sprintf("p%d-%04d-%s", prio, i, strings.Repeat("x", 200)) }
	d, _ := core.ParseDestination("/queue/backlog")
	const normal, high = 600, 40
	sent := map[int]int{} // per priority
	sendP := func(prio int) {
		t.Helper()
		i := sent[prio]
		sent[prio]++
		m := &core.Message{Destination: d, Persistent: true, Priority: uint8(prio), Body: []byte(body(prio, i))}
		if prio == 4 && i%3 == 0 {
			m.Expires = time.Now().Add(time.Hour).UnixMilli()
		}
		if err := b.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	for i := range normal {
		sendP(4)
		if i%(normal/high) == 0 {
			sendP(8) // a high-priority one now and then, sent after others
		}
	}
	before, _ := b.QueueStats("backlog")
	stop()

	check := func(b *core.Broker, what string, messages int) {
		t.Helper()
		st, _ := b.QueueStats("backlog")
		if st.Pending != normal+high || st.Paged != normal+high || st.MemoryBytes != 0 || st.JournalBytes != before.JournalBytes {
			t.Fatalf("%s: %+v; want all %d paged, none in memory, %d journal bytes as before it", what, st, normal+high, before.JournalBytes)
		}
		if r := b.Recovery(); r.Messages != messages {
			t.Fatalf("%s: recovery %+v", what, r)
		}
	}
	b, stop = openOnWal(t, dir, wo)
	check(b, "after a restart without a snapshot", normal+high)
	if res, err := b.Maintain(true); err != nil || res.Snapshot == 0 {
		t.Fatalf("maintenance: %+v, %v", res, err)
	}
	send(t, b, "/queue/other", "after the snapshot", true)
	stop()

	b, stop = openOnWal(t, dir, wo)
	defer stop()
	check(b, "after a restart from a snapshot", normal+high+1)
	if r := b.Recovery(); r.Snapshot == 0 || r.Records > 5 {
		t.Fatalf("recovery %+v: want a snapshot and only the records after it read", r)
	}
	s, in := subscribe(t, b, "/queue/backlog", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 50})
	expect := func(prio, n int) {
		t.Helper()
		for i := range n {
			got := in.next(t)
			if want := body(prio, i); string(got.Msg.Body) != want || int(got.Msg.Priority) != prio {
				t.Fatalf("got %.8q priority %d, want %.8q priority %d", got.Msg.Body, got.Msg.Priority, want, prio)
			}
			if wantExp := prio == 4 && i%3 == 0; (got.Msg.Expires != 0) != wantExp {
				t.Fatalf("%.8q: expires %d", got.Msg.Body, got.Msg.Expires)
			}
			if err := s.Ack(context.Background(), got.Msg.Seq); err != nil {
				t.Fatal(err)
			}
		}
	}
	expect(8, high)
	expect(4, normal)
	in.none(t, 50*time.Millisecond)
}

// TestPagedMessagesExpire: the sweep expires paged messages that no
// consumer has come for, as it does those in memory, and moves them to the
// DLQ under ExpiredToDLQ; the rest stay, in order.
func TestPagedMessagesExpire(t *testing.T) {
	for _, toDLQ := range []bool{false, true} {
		t.Run(fmt.Sprintf("ExpiredToDLQ=%v", toDLQ), func(t *testing.T) {
			pad := strings.Repeat("x", 4000)
			one := int64((&core.Message{Body: []byte("k-000-" + pad)}).Size())
			b, stop := openOnWalWith(t, t.TempDir(), wal.Options{},
				core.Options{MemoryLimit: 5 * one, ExpirySweep: 10 * time.Millisecond, ExpiredToDLQ: toDLQ})
			defer stop()
			const n = 60
			for i := range n {
				if i%2 == 0 {
					sendExpiring(t, b, "/queue/exp", fmt.Sprintf("e-%03d-%s", i, pad), 150*time.Millisecond)
				} else {
					send(t, b, "/queue/exp", fmt.Sprintf("k-%03d-%s", i, pad), true)
				}
			}
			if st, _ := b.QueueStats("exp"); st.Paged < n-10 {
				t.Fatalf("not paged: %+v", st)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				st, _ := b.QueueStats("exp")
				if st.Expired == n/2 && st.Pending == n/2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the sweep did not expire the paged messages: %+v", st)
				}
				time.Sleep(10 * time.Millisecond)
			}
			_, in := subscribe(t, b, "/queue/exp", core.SubscribeOptions{})
			for i := 1; i < n; i += 2 {
				if got := in.next(t); !strings.HasPrefix(string(got.Msg.Body), fmt.Sprintf("k-%03d-", i)) {
					t.Fatalf("got %.6q, want k-%03d", got.Msg.Body, i)
				}
			}
			in.none(t, 20*time.Millisecond)
			if toDLQ {
				_, dl := subscribe(t, b, "/queue/ActiveMQ.DLQ", core.SubscribeOptions{})
				for i := 0; i < n; i += 2 {
					if got := dl.next(t); !strings.HasPrefix(string(got.Msg.Body), fmt.Sprintf("e-%03d-", i)) {
						t.Fatalf("dead letter %.6q, want e-%03d", got.Msg.Body, i)
					}
				}
			}
		})
	}
}

// Maintenance measures how much of each head segment is pending from what
// the projection knows of each pending message's record, and reads only
// the records compaction moves: before a restart, and after one from the
// snapshot (which keeps those sizes).
func TestMaintenanceReadsOnlyWhatItMoves(t *testing.T) {
	store := memlog.NewStore(32 << 10)
	var cl *journaltest.CountingLog
	openC := func() (*core.Broker, func()) {
		l, err := store.Open()
		if err != nil {
			t.Fatal(err)
		}
		cl = &journaltest.CountingLog{Log: l}
		b, err := core.Open(core.Options{Journal: cl, Logger: quiet, MaintainEvery: -1})
		if err != nil {
			t.Fatal(err)
		}
		return b, func() { b.Close(); l.Close() }
	}
	// consume takes n messages and acks all but every keep-th.
	consume := func(b *core.Broker, n, keep int) {
		t.Helper()
		s, in := subscribe(t, b, "/queue/m", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 100000})
		for i := range n {
			d := in.next(t)
			if i%keep != 0 {
				if err := s.Ack(context.Background(), d.Msg.Seq); err != nil {
					t.Fatal(err)
				}
			}
		}
		s.Close()
	}
	maintain := func(b *core.Broker, what string) core.MaintainResult {
		t.Helper()
		cl.Reads.Store(0)
		res, err := b.Maintain(true)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Compact.Moves) == 0 || len(res.Compact.Removed) == 0 {
			t.Fatalf("%s: compaction moved or removed nothing: %+v", what, res.Compact)
		}
		if reads := cl.Reads.Load(); reads != int64(len(res.Compact.Moves)) {
			t.Fatalf("%s: maintenance read %d records to move %d", what, reads, len(res.Compact.Moves))
		}
		return res
	}
	b, stop := openC()
	for i := range 3000 {
		send(t, b, "/queue/m", fmt.Sprintf("%04d-%s", i, strings.Repeat("x", 300)), true)
	}
	consume(b, 3000, 10)
	moves := maintain(b, "before a restart").Compact.Moves
	// Once more, for a snapshot past the moved records: the restart then
	// learns their sizes from it, not from replaying them.
	if res, err := b.Maintain(true); err != nil || res.Snapshot < moves[len(moves)-1].To {
		t.Fatalf("second maintenance: %+v, %v", res, err)
	}
	stop()
	b, stop = openC()
	defer stop()
	consume(b, 300, 3)
	for i := range 2000 { // moves the head along
		send(t, b, "/queue/other", fmt.Sprintf("%04d-%s", i, strings.Repeat("y", 300)), true)
	}
	maintain(b, "after a restart from the snapshot")
}

// After a restart a selector consumer gets the messages it wants from
// behind more that it does not than a queue reads back at once: the queue
// reads further back, as it looks past unwanted messages in memory.
func TestRestartSelectorLooksPastPaged(t *testing.T) {
	dir := t.TempDir()
	b, stop := openOnWal(t, dir, wal.Options{})
	d, _ := core.ParseDestination("/queue/sel")
	sendIn := func(body, region string) {
		t.Helper()
		m := &core.Message{Destination: d, Persistent: true, Priority: 4, Body: []byte(body), Header: []string{"region", region}}
		if err := b.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 700 {
		sendIn(fmt.Sprintf("a%d", i), "us")
	}
	for i := range 5 {
		sendIn(fmt.Sprintf("b%d", i), "eu")
	}
	stop()
	b, stop = openOnWal(t, dir, wal.Options{})
	defer stop()
	_, eu := subscribe(t, b, "/queue/sel", core.SubscribeOptions{Selector: mustSelector(t, "region = 'eu'")})
	for i := range 5 {
		if got := eu.next(t); string(got.Msg.Body) != fmt.Sprintf("b%d", i) {
			t.Fatalf("got %q, want b%d", got.Msg.Body, i)
		}
	}
	_, us := subscribe(t, b, "/queue/sel", core.SubscribeOptions{Prefetch: 1000})
	for i := range 700 {
		if got := us.next(t); string(got.Msg.Body) != fmt.Sprintf("a%d", i) {
			t.Fatalf("got %q, want a%d", got.Msg.Body, i)
		}
	}
}

// gatedLog is a memlog journal whose reads of single records wait while
// its gate is shut.
type gatedLog struct {
	*memlog.Log
	gate atomic.Pointer[chan struct{}]
}

func (l *gatedLog) Read(i uint64) (journal.Record, error) {
	if g := l.gate.Load(); g != nil {
		<-*g
	}
	return l.Log.Read(i)
}

// A queue reads paged messages back off its loop: while a read-back waits
// on the journal, the queue still answers (statistics, a SEND), and the
// consumer gets everything once the journal answers.
func TestReadBackDoesNotHoldTheQueue(t *testing.T) {
	store := memlog.NewStore(1 << 24)
	var gl *gatedLog
	openG := func() (*core.Broker, func()) {
		l, err := store.Open()
		if err != nil {
			t.Fatal(err)
		}
		gl = &gatedLog{Log: l}
		b, err := core.Open(core.Options{Journal: gl, Logger: quiet, MaintainEvery: -1})
		if err != nil {
			t.Fatal(err)
		}
		return b, func() { b.Close(); l.Close() }
	}
	b, stop := openG()
	for i := range 100 {
		send(t, b, "/queue/g", fmt.Sprint("m", i), true)
	}
	stop()
	b, stop = openG()
	defer stop()
	shut := make(chan struct{})
	gl.gate.Store(&shut)
	subscribed, answered := make(chan inbox, 1), make(chan core.Stats, 1)
	go func() {
		_, in := subscribe(t, b, "/queue/g", core.SubscribeOptions{})
		subscribed <- in
		send(t, b, "/queue/g", "m100", true)
		st, _ := b.QueueStats("g")
		answered <- st
	}()
	select {
	case st := <-answered:
		if st.Pending != 101 || st.Consumers != 1 {
			t.Errorf("while reading back: %+v", st)
		}
	case <-time.After(5 * time.Second):
		t.Error("the queue did not answer while a read-back waited on the journal")
	}
	gl.gate.Store(nil)
	close(shut)
	in := <-subscribed
	for i := range 101 {
		if got := in.next(t); string(got.Msg.Body) != fmt.Sprint("m", i) {
			t.Fatalf("got %q, want m%d", got.Msg.Body, i)
		}
	}
}

// A pending message whose journal record is damaged, found when its queue
// reads it back after a restart from a snapshot (which read nothing of it),
// is set aside with a logged error and counted in Stats.Unreadable; the
// messages after it still flow, and a purge removes it from the journal.
func TestDamagedPagedRecordIsSetAside(t *testing.T) {
	dir := t.TempDir()
	wo := wal.Options{SegmentBytes: 4 << 10, MaxRecordBytes: 1 << 10} // the damage in a sealed segment, not the tail that Open checks
	b, stop := openOnWal(t, dir, wo)
	const n = 400
	for i := range n {
		body := fmt.Sprintf("m%03d", i)
		if i == 7 {
			body = "DAMAGE-ME"
		}
		send(t, b, "/queue/d", body, true)
	}
	if res, err := b.Maintain(true); err != nil || res.Snapshot == 0 {
		t.Fatalf("maintenance: %+v, %v", res, err)
	}
	stop()
	segs, _ := filepath.Glob(filepath.Join(dir, "wal", "0*"))
	damaged := false
	for _, seg := range segs {
		data, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		if at := bytes.Index(data, []byte("DAMAGE-ME")); at >= 0 {
			data[at] ^= 0xff
			if err := os.WriteFile(seg, data, 0o644); err != nil {
				t.Fatal(err)
			}
			damaged = true
		}
	}
	if !damaged {
		t.Fatalf("no segment among %v holds the message", segs)
	}

	b, stop = openOnWal(t, dir, wo)
	s, in := subscribe(t, b, "/queue/d", core.SubscribeOptions{Mode: core.AckClientIndividual})
	for i := range n {
		if i == 7 {
			continue
		}
		got := in.next(t)
		if string(got.Msg.Body) != fmt.Sprintf("m%03d", i) {
			t.Fatalf("got %q, want m%03d", got.Msg.Body, i)
		}
		if err := s.Ack(context.Background(), got.Msg.Seq); err != nil {
			t.Fatal(err)
		}
	}
	in.none(t, 50*time.Millisecond)
	if st, _ := b.QueueStats("d"); st.Unreadable != 1 || st.Pending != 0 {
		t.Fatalf("after the drain: %+v", st)
	}
	if n, err := b.Purge(context.Background(), "d"); err != nil || n != 1 {
		t.Fatalf("purge: %d, %v; want the 1 set aside", n, err)
	}
	stop()
	b, stop = openOnWal(t, dir, wo)
	defer stop()
	if r := b.Recovery(); r.Messages != 0 {
		t.Fatalf("after a purge and a restart: %+v", r)
	}
}

// BenchmarkPagedMessageMemory: the broker's heap per pending persistent
// message that is paged (the queue's reference and the projection's
// bookkeeping), after a restart, which pages every one.
//
//	go test -run '^$' -bench PagedMessageMemory -benchtime 1x ./core
func BenchmarkPagedMessageMemory(b *testing.B) {
	const n = 200000
	for range b.N {
		dir := b.TempDir()
		open := func() (*core.Broker, *wal.Log) {
			l, err := wal.Open(dir, wal.Options{Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			br, err := core.Open(core.Options{Journal: l, Logger: quiet, MaintainEvery: -1})
			if err != nil {
				b.Fatal(err)
			}
			return br, l
		}
		br, l := open()
		d, _ := core.ParseDestination("/queue/mem")
		for i := 0; i < n; i += 500 {
			ms := make([]*core.Message, 500)
			for k := range ms {
				ms[k] = &core.Message{Destination: d, Persistent: true, Priority: 4, Body: make([]byte, 1024)}
			}
			if err := br.SendMany(context.Background(), ms); err != nil {
				b.Fatal(err)
			}
		}
		br.Close()
		l.Close()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		br, l = open()
		runtime.GC()
		runtime.ReadMemStats(&after)
		if st, _ := br.QueueStats("mem"); st.Paged != n {
			b.Fatalf("after the restart: %+v", st)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/message")
		br.Close()
		l.Close()
	}
}

// TestRestartFromOlderSnapshot: the journal keeps the snapshot before the
// newest, to start from if the newest is damaged, so maintenance must not
// compact away the records replay reads after that older one. Three rounds
// of traffic, each followed by a snapshot and a compaction that frees
// segments; then the newest snapshot is damaged (its checksum fails, or it
// passes and does not decode), and a restart from the one before it brings
// back exactly the messages still pending. On both journals.
func TestRestartFromOlderSnapshot(t *testing.T) {
	undecodable := func(_ *testing.T, l journal.Log, newest uint64) error {
		return l.(journal.Snapshotter).SaveSnapshot(newest, []byte{5, 0xff}) // format 5, then a truncated number
	}
	wo := wal.Options{SegmentBytes: 64 << 10, MaxRecordBytes: 16 << 10, Logger: quiet}
	walDir := func(t *testing.T) func() (journal.Log, error) {
		dir := t.TempDir()
		return func() (journal.Log, error) { return wal.Open(dir, wo) }
	}
	cases := []struct {
		name   string
		open   func(t *testing.T) func() (journal.Log, error)
		damage func(t *testing.T, l journal.Log, newest uint64) error
	}{
		{"wal/checksum", walDir, func(t *testing.T, l journal.Log, newest uint64) error {
			journaltest.DamageFile(t, filepath.Join(l.(*wal.Log).Dir(), "snapshots", fmt.Sprintf("%020d.snap", newest)))
			return nil
		}},
		{"wal/undecodable", walDir, undecodable},
		{"jetstream/undecodable", func(t *testing.T) func() (journal.Log, error) {
			nc := natstest.Connect(t, natstest.StartServer(t))
			return func() (journal.Log, error) {
				return jetstream.Open(context.Background(), nc, jetstream.Options{Stream: "FALLBACK", SegmentRecords: 256, Logger: quiet})
			}
		}, undecodable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			open := c.open(t)
			kept, snaps := compactedRounds(t, open)
			l, err := open()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.damage(t, l, snaps[2]); err != nil {
				t.Fatal(err)
			}
			b, err := core.Open(core.Options{Journal: l, Logger: quiet, MaintainEvery: -1})
			if err != nil {
				l.Close()
				t.Fatal(err)
			}
			defer func() { b.Close(); l.Close() }()
			if rec := b.Recovery(); rec.Snapshot != snaps[1] || rec.Messages != len(kept) {
				t.Fatalf("recovery %+v, want the snapshot at %d and %d messages", rec, snaps[1], len(kept))
			}
			_, in := subscribe(t, b, "/queue/fallback", core.SubscribeOptions{Prefetch: 10000})
			for range len(kept) {
				m := string(in.next(t).Msg.Body)
				if !kept[m] {
					t.Fatalf("after the restart got %q, which was acked or delivered twice", m[:5])
				}
				delete(kept, m)
			}
			in.none(t, 50*time.Millisecond)
		})
	}
}

// compactedRounds runs three rounds of traffic on a new journal (open),
// each followed by a snapshot and a compaction; it returns the messages
// left pending and the three snapshots' indexes.
func compactedRounds(t *testing.T, open func() (journal.Log, error)) (kept map[string]bool, snaps []uint64) {
	t.Helper()
	l, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b, err := core.Open(core.Options{Journal: l, Logger: quiet, MaintainEvery: -1, SnapshotEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	body := func(i int) string { return fmt.Sprintf("%05d-%s", i, strings.Repeat("x", 1000)) }
	kept = map[string]bool{}
	for round := range 3 {
		for i := round * 1000; i < (round+1)*1000; i++ {
			send(t, b, "/queue/fallback", body(i), true)
		}
		s, in := subscribe(t, b, "/queue/fallback", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 10000})
		for range len(kept) + 1000 {
			d := in.next(t)
			m := string(d.Msg.Body)
			if kept[m] {
				continue
			}
			if d.Msg.Seq%100 == 7 {
				kept[m] = true
				continue
			}
			if err := s.Ack(context.Background(), d.Msg.Seq); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		res, err := b.Maintain(true)
		if err != nil {
			t.Fatal(err)
		}
		// Compaction stops at the snapshot before this one: the second
		// round's finds nothing the first's did not free already.
		if round != 1 && len(res.Compact.Removed) == 0 {
			t.Fatalf("round %d: maintenance freed no segment: %+v", round, res)
		}
		snaps = append(snaps, res.Snapshot)
	}
	return kept, snaps
}

// TestNoUsableSnapshot: with no snapshot left that is usable, a journal
// that still holds every record (nothing compacted: it starts at 1) is
// replayed whole, and everything comes back; one that was compacted makes
// start-up stop with the snapshot's index and what is wrong, never start
// from nothing (which would lose what the snapshot held pending).
func TestNoUsableSnapshot(t *testing.T) {
	wo := wal.Options{SegmentBytes: 64 << 10, MaxRecordBytes: 16 << 10, Logger: quiet}
	t.Run("whole journal", func(t *testing.T) {
		dir := t.TempDir()
		b, stop := openOnWal(t, dir, wo)
		for i := range 3 {
			send(t, b, "/queue/whole", fmt.Sprint("m", i), true)
		}
		res, err := b.Maintain(true)
		if err != nil {
			t.Fatal(err)
		}
		stop()
		journaltest.DamageFile(t, filepath.Join(dir, "snapshots", fmt.Sprintf("%020d.snap", res.Snapshot)))
		b, stop = openOnWal(t, dir, wo)
		defer stop()
		if rec := b.Recovery(); rec.Snapshot != 0 || rec.Messages != 3 {
			t.Fatalf("recovery %+v, want a whole replay and 3 messages", rec)
		}
	})
	t.Run("compacted", func(t *testing.T) {
		dir := t.TempDir()
		_, snaps := compactedRounds(t, func() (journal.Log, error) { return wal.Open(dir, wo) })
		l, err := wal.Open(dir, wal.Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range snaps[1:] {
			if err := l.SaveSnapshot(s, []byte{9}); err != nil { // format 9, from a broker yet to come
				t.Fatal(err)
			}
		}
		_, err = core.Open(core.Options{Journal: l, Logger: quiet, MaintainEvery: -1})
		l.Close()
		want := fmt.Sprintf("core: snapshot at %d: snapshot format 9 is not one this broker reads", snaps[2])
		if err == nil || err.Error() != want {
			t.Fatalf("start-up with no usable snapshot: %v, want %q", err, want)
		}
	})
	t.Run("compacted, checksums", func(t *testing.T) {
		dir := t.TempDir()
		_, snaps := compactedRounds(t, func() (journal.Log, error) { return wal.Open(dir, wo) })
		for _, s := range snaps[1:] {
			journaltest.DamageFile(t, filepath.Join(dir, "snapshots", fmt.Sprintf("%020d.snap", s)))
		}
		l, err := wal.Open(dir, wal.Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		_, err = core.Open(core.Options{Journal: l, Logger: quiet, MaintainEvery: -1})
		l.Close()
		var ce *journal.CorruptionError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), fmt.Sprintf("%020d.snap", snaps[2])) {
			t.Fatalf("start-up with every snapshot damaged: %v, want a CorruptionError naming the newest", err)
		}
	})
}
