// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package jetstream_test

// These tests start real nats-servers in-process (internal/natstest): one
// node, and a 3-node cluster routed over loopback.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"

	"github.com/cairnmq/cairn/internal/natstest"
	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/jetstream"
	"github.com/cairnmq/cairn/journal/journaltest"
)

var quiet = slog.New(slog.DiscardHandler)

func startServer(t testing.TB) *server.Server    { return natstest.StartServer(t) }
func startCluster(t testing.TB) []*server.Server { return natstest.StartCluster(t) }
func connect(t testing.TB, servers ...*server.Server) *nats.Conn {
	return natstest.Connect(t, servers...)
}

func open(t testing.TB, nc *nats.Conn, opts jetstream.Options) *jetstream.Log {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	var l *jetstream.Log
	var err error
	// A new cluster may still be electing a leader for the stream's group.
	for range 100 {
		if l, err = jetstream.Open(context.Background(), nc, opts); err == nil {
			return l
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("open %s: %v", opts.Stream, err)
	return nil
}

var streams atomic.Int64

func newStream() string { return fmt.Sprintf("J%d", streams.Add(1)) }

func TestConformance(t *testing.T) {
	s := startServer(t)
	journaltest.Run(t, func(t *testing.T) journaltest.Opener {
		nc := connect(t, s)
		opts := jetstream.Options{Stream: newStream(), SegmentRecords: 64}
		return func(t testing.TB) journal.Log { return open(t, nc, opts) }
	})
}

func TestConformanceR3(t *testing.T) {
	if testing.Short() {
		t.Skip("3-node cluster")
	}
	servers := startCluster(t)
	journaltest.Run(t, func(t *testing.T) journaltest.Opener {
		nc := connect(t, servers...)
		opts := jetstream.Options{Stream: newStream(), SegmentRecords: 64, Replicas: 3}
		return func(t testing.TB) journal.Log { return open(t, nc, opts) }
	})
}

func payload(tag string) journal.Record { return journal.Record{Type: 1, Data: []byte(tag)} }

// A writer whose view of the tail is stale must have every one of its
// pipelined appends refused, not only the first: with the expected last
// sequence alone, the appends after the first line up with the intruder's
// sequence numbers and succeed.
func TestIntruderFencesPipeline(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s)
	opts := jetstream.Options{Stream: newStream()}
	a := open(t, nc, opts)
	defer a.Close()
	for i := range 10 {
		if _, _, err := a.Append(context.Background(), []journal.Record{payload(fmt.Sprintf("a%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	js, _ := njs.New(nc)
	ack, err := js.Publish(context.Background(), "cairn.journal."+lower(opts.Stream), []byte("intruder"))
	if err != nil || ack.Sequence != 11 {
		t.Fatalf("intruder publish: %v %+v", err, ack)
	}
	const n = 300
	var wg sync.WaitGroup
	var ok atomic.Int64
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := a.Append(context.Background(), []journal.Record{payload(fmt.Sprintf("late%d", i))})
			if err == nil {
				ok.Add(1)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	if ok.Load() != 0 {
		t.Fatalf("%d of %d appends after the intruder succeeded", ok.Load(), n)
	}
	for err := range errs {
		if !errors.Is(err, journal.ErrFenced) {
			t.Fatalf("append after the intruder: %v, want ErrFenced", err)
		}
	}
	st, _ := js.Stream(context.Background(), opts.Stream)
	info, _ := st.Info(context.Background())
	if info.State.LastSeq != 11 {
		t.Fatalf("stream last sequence %d after the fenced pipeline, want 11 (the intruder)", info.State.LastSeq)
	}
	// A batch is fenced too, and the log stays failed.
	if _, _, err := a.Append(context.Background(), []journal.Record{payload("b1"), payload("b2")}); !errors.Is(err, journal.ErrFenced) {
		t.Fatalf("batch after fencing: %v, want ErrFenced", err)
	}
	// A new handle refuses a stream whose tail is not a Cairn record.
	var ce *journal.CorruptionError
	if b, err := jetstream.Open(context.Background(), nc, opts); !errors.As(err, &ce) || ce.Index != 11 {
		if b != nil {
			b.Close()
		}
		t.Fatalf("Open with a foreign message at the tail: %v, want a CorruptionError at 11", err)
	}
}

// The deposed writer keeps writing while a new one takes over with Fence:
// every one of the old writer's appends that returns after Fence fails, and
// nothing the old writer sent lands after the claim.
func TestDeposedWriter(t *testing.T) {
	for _, r3 := range []bool{false, true} {
		t.Run(fmt.Sprintf("R3=%t", r3), func(t *testing.T) {
			var servers []*server.Server
			replicas := 1
			if r3 {
				if testing.Short() {
					t.Skip("3-node cluster")
				}
				servers, replicas = startCluster(t), 3
			} else {
				servers = []*server.Server{startServer(t)}
			}
			opts := jetstream.Options{Stream: newStream(), Replicas: replicas}
			old := open(t, connect(t, servers...), opts)
			defer old.Close()

			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var fencedAt atomic.Uint64 // claim index, once known
			var okAfter, failed atomic.Int64
			for w := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ctx.Err() == nil && i < 100000; i++ {
						batch := []journal.Record{payload(fmt.Sprintf("old-%d-%d", w, i))}
						if i%7 == 0 {
							batch = append(batch, payload(fmt.Sprintf("old-%d-%d-b", w, i)))
						}
						claimed := fencedAt.Load()
						_, last, err := old.Append(context.Background(), batch)
						switch {
						case err == nil && claimed != 0:
							okAfter.Add(1) // confirmed after the claim was known: must not happen
							_ = last
						case err != nil:
							if !errors.Is(err, journal.ErrFenced) {
								t.Errorf("old writer: %v, want ErrFenced", err)
							}
							failed.Add(1)
						}
					}
				}()
			}
			time.Sleep(300 * time.Millisecond) // the old writer is busy
			nw := open(t, connect(t, servers...), opts)
			defer nw.Close()
			claim, err := nw.Fence(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			fencedAt.Store(claim)
			time.Sleep(300 * time.Millisecond) // the old writer keeps trying
			stop()
			wg.Wait()
			if okAfter.Load() != 0 {
				t.Fatalf("%d appends of the deposed writer were confirmed after the claim at %d", okAfter.Load(), claim)
			}
			if failed.Load() == 0 {
				t.Fatal("the deposed writer never saw ErrFenced")
			}
			if _, _, err := old.Append(context.Background(), []journal.Record{payload("one more")}); !errors.Is(err, journal.ErrFenced) {
				t.Fatalf("deposed writer append: %v, want ErrFenced", err)
			}
			f, _, err := nw.Append(context.Background(), []journal.Record{payload("new")})
			if err != nil || f != claim+1 {
				t.Fatalf("new writer's first append at %d (%v), want %d", f, err, claim+1)
			}
			// Everything in the stream is well-formed, and after the claim
			// there is only the new writer's record.
			var afterClaim []string
			seen := map[string]bool{}
			_, err = journal.Replay(nw, nw.FirstIndex(), func(r journal.Record) error {
				if seen[string(r.Data)] {
					return fmt.Errorf("record %q appears twice", r.Data)
				}
				seen[string(r.Data)] = true
				if r.Index > claim {
					afterClaim = append(afterClaim, string(r.Data))
				}
				return nil
			}, journal.ReplayOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(afterClaim) != 1 || afterClaim[0] != "new" {
				t.Fatalf("records after the claim: %q, want only the new writer's", afterClaim)
			}
			claimRec, err := nw.Read(claim)
			if err != nil || claimRec.Type != journal.TypeClaim || !bytes.Contains(claimRec.Data, []byte("writer=")) {
				t.Fatalf("claim record: %+v, %v", claimRec, err)
			}
		})
	}
}

// A batch is one JetStream atomic batch: a batch whose commit never comes
// (its writer died) leaves nothing in the stream.
func TestBatchIsAtomic(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s)
	opts := jetstream.Options{Stream: newStream()}
	l := open(t, nc, opts)
	if _, _, err := l.Append(context.Background(), []journal.Record{payload("x"), payload("y"), payload("z")}); err != nil {
		t.Fatal(err)
	}
	if l.LastIndex() != 3 {
		t.Fatalf("last %d, want 3", l.LastIndex())
	}
	// A writer that dies after two messages of a three-record batch.
	for i := 1; i <= 2; i++ {
		m := nats.NewMsg("cairn.journal." + lower(opts.Stream))
		m.Data = journal.AppendFrame(nil, uint64(3+i), journal.BatchFlags(i-1, 3), &journal.Record{Type: 1, Data: []byte("torn")})
		m.Header.Set("Nats-Batch-Id", "dead-writer")
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i))
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	nc.Flush()
	l.Close()
	l = open(t, nc, opts)
	defer l.Close()
	if l.LastIndex() != 3 {
		t.Fatalf("after a torn batch the log ends at %d, want 3", l.LastIndex())
	}
	if f, la, err := l.Append(context.Background(), []journal.Record{payload("p"), payload("q")}); err != nil || f != 4 || la != 5 {
		t.Fatalf("append after the torn batch: [%d, %d] %v", f, la, err)
	}
	big := make([]journal.Record, 1001)
	for i := range big {
		big[i] = payload("r")
	}
	if _, _, err := l.Append(context.Background(), big); !errors.Is(err, journal.ErrBatchTooLarge) {
		t.Fatalf("batch of 1001: %v, want ErrBatchTooLarge", err)
	}
	if _, _, err := l.Append(context.Background(), []journal.Record{{Type: 1, Data: make([]byte, l.MaxRecordBytes()+1)}}); !errors.Is(err, journal.ErrInvalidRecord) {
		t.Fatalf("record over the payload limit: %v, want ErrInvalidRecord", err)
	}
	if _, _, err := l.Append(context.Background(), []journal.Record{{Type: 1, Data: make([]byte, l.MaxRecordBytes())}}); err != nil {
		t.Fatalf("record at the payload limit: %v", err)
	}
}

// Appends keep going through the loss of the stream's leader: acks lost in
// the election are retried under the same message ids, so every confirmed
// record is in the stream exactly once and no index is skipped.
func TestLeaderLossR3(t *testing.T) {
	if testing.Short() {
		t.Skip("3-node cluster")
	}
	servers := startCluster(t)
	nc := connect(t, servers...)
	opts := jetstream.Options{Stream: newStream(), Replicas: 3, Timeout: 2 * time.Second, RetryFor: 30 * time.Second}
	l := open(t, nc, opts)
	defer l.Close()
	const writers, each = 8, 400
	confirmed := make([]map[uint64]string, writers)
	var wg sync.WaitGroup
	var done atomic.Int64
	for w := range writers {
		confirmed[w] = map[uint64]string{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				tag := fmt.Sprintf("w%d-%d", w, i)
				f, _, err := l.Append(context.Background(), []journal.Record{payload(tag)})
				if err != nil {
					t.Errorf("append %s: %v", tag, err)
					return
				}
				confirmed[w][f] = tag
				done.Add(1)
			}
		}()
	}
	for done.Load() < writers*each/4 {
		time.Sleep(5 * time.Millisecond)
	}
	var leader *server.Server
	for _, s := range servers {
		if s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, opts.Stream) {
			leader = s
		}
	}
	if leader == nil {
		t.Fatal("no stream leader")
	}
	leader.Shutdown()
	wg.Wait()
	if t.Failed() {
		return
	}
	byIndex := map[uint64]string{}
	for _, c := range confirmed {
		for i, tag := range c {
			byIndex[i] = tag
		}
	}
	seen := map[string]uint64{}
	// Replay twice: each creates an ordered consumer, which the cluster may
	// place on the server that is gone.
	for range 2 {
		if _, err := journal.Replay(l, l.FirstIndex(), func(journal.Record) error { return nil }, journal.ReplayOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := journal.Replay(l, l.FirstIndex(), func(r journal.Record) error {
		if prev, ok := seen[string(r.Data)]; ok {
			return fmt.Errorf("record %q at %d and %d", r.Data, prev, r.Index)
		}
		seen[string(r.Data)] = r.Index
		if tag, ok := byIndex[r.Index]; ok && tag != string(r.Data) {
			return fmt.Errorf("index %d holds %q, confirmed as %q", r.Index, r.Data, tag)
		}
		return nil
	}, journal.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != writers*each || l.LastIndex() != writers*each {
		t.Fatalf("stream holds %d records, last index %d; want %d", len(seen), l.LastIndex(), writers*each)
	}
}

func lower(s string) string { return string(bytes.ToLower([]byte(s))) }

// TestChainedMsgIDStallsR3 records why the writer keeps one round in flight
// instead of pipelining appends fenced by chained Nats-Expected-Last-Msg-Id
// (see the package comment): on a replicated stream, once a pipelined
// publish is refused for a wrong last msg id, the stream stops answering,
// even a valid publish from another writer. If this test fails, the server
// has changed and pipelining may be worth another look.
func TestChainedMsgIDStallsR3(t *testing.T) {
	if testing.Short() {
		t.Skip("3-node cluster")
	}
	servers := startCluster(t)
	nc := connect(t, servers...)
	js, _ := njs.New(nc, njs.WithPublishAsyncTimeout(time.Second))
	ctx := context.Background()
	var err error
	for range 100 {
		if _, err = js.CreateStream(ctx, njs.StreamConfig{Name: "CHAIN", Subjects: []string{"chain"}, Replicas: 3}); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	pub := func(seq uint64, id, prev string) error {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		opts := []njs.PublishOpt{njs.WithMsgID(id), njs.WithExpectLastSequence(seq - 1)}
		if prev != "" {
			opts = append(opts, njs.WithExpectLastMsgID(prev))
		}
		_, err := js.Publish(c, "chain", []byte(id), opts...)
		return err
	}
	// The stream exists before its leader listens on its subject: until
	// then a publish gets no responders (ErrNoStreamResponse), which
	// stored nothing and is safe to retry.
	setup := func(seq uint64, id, prev string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := pub(seq, id, prev)
			if err == nil {
				return
			}
			if !errors.Is(err, njs.ErrNoStreamResponse) || time.Now().After(deadline) {
				t.Fatalf("publish %s: %v", id, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for i, id := range []string{"a1", "a2", "a3"} {
		prev := ""
		if i > 0 {
			prev = fmt.Sprintf("a%d", i)
		}
		setup(uint64(i+1), id, prev)
	}
	setup(4, "claim", "a3") // another writer takes over
	// The old writer's pipeline, expecting 3 and on, chained from a3.
	var futs []njs.PubAckFuture
	prev := "a3"
	for seq := uint64(4); seq < 9; seq++ {
		id := fmt.Sprintf("stale%d", seq)
		f, err := js.PublishAsync("chain", []byte(id), njs.WithMsgID(id), njs.WithExpectLastSequence(seq-1), njs.WithExpectLastMsgID(prev))
		if err != nil {
			t.Fatal(err)
		}
		futs, prev = append(futs, f), id
	}
	for _, f := range futs {
		select {
		case <-f.Ok():
			t.Fatal("a stale pipelined publish succeeded")
		case <-f.Err():
		}
	}
	err = pub(5, "new", "claim")
	if err == nil {
		t.Fatal("the stream answered a valid publish after a wrong-last-msg-id refusal: nats-server no longer stalls; see the package comment")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("valid publish after the stale pipeline: %v, want no answer", err)
	}
}

// BenchmarkLog runs the shared grid against a one-node in-process server
// (file storage, the server's default fsync interval). The sync policy is
// the server's, so the grid runs once.
func BenchmarkLog(b *testing.B) {
	s := startServer(b)
	nc := connect(b, s)
	journaltest.Bench(b, func(b *testing.B, _ journal.SyncPolicy) journal.Log {
		return open(b, nc, jetstream.Options{Stream: newStream()})
	}, journal.SyncAlways)
}

// BenchmarkLogR3 runs the grid against a 3-node in-process cluster (R3).
func BenchmarkLogR3(b *testing.B) {
	servers := startCluster(b)
	nc := connect(b, servers...)
	journaltest.Bench(b, func(b *testing.B, _ journal.SyncPolicy) journal.Log {
		return open(b, nc, jetstream.Options{Stream: newStream(), Replicas: 3})
	}, journal.SyncAlways)
}

// MaxBatch follows a server whose atomic batches are limited below the
// default (jetstream { limits { batch { max_msgs: 50 } } }): with MaxBatch
// 50 no Append and no round of group commit goes over it, even with many
// appenders at once; with a MaxBatch over the server's, the refusal says
// which setting to change.
func TestMaxBatchFollowsTheServer(t *testing.T) {
	s := natstest.StartServerWith(t, func(o *server.Options) { o.JetStreamLimits.MaxBatchSize = 50 })
	nc := connect(t, s)
	l := open(t, nc, jetstream.Options{Stream: newStream(), MaxBatch: 50})
	if lim := journal.LimitOf(l); lim.Records != 50 {
		t.Fatalf("BatchLimit %+v, want 50 records", lim)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for g := range 200 {
		wg.Go(func() {
			for i := range 5 {
				if _, _, err := l.Append(context.Background(), []journal.Record{payload(fmt.Sprintf("g%d-%d", g, i))}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("1,000 concurrent appends on a server that takes 50 in a batch: %v", err)
	}
	recs := make([]journal.Record, 50)
	for i := range recs {
		recs[i] = payload("b")
	}
	if _, _, err := l.Append(context.Background(), recs); err != nil {
		t.Fatalf("a batch of 50: %v", err)
	}
	l.Close()

	over := open(t, nc, jetstream.Options{Stream: newStream(), MaxBatch: 100})
	defer over.Close()
	recs = make([]journal.Record, 80)
	for i := range recs {
		recs[i] = payload("o")
	}
	_, _, err := over.Append(context.Background(), recs)
	if err == nil || !strings.Contains(err.Error(), "max_msgs") {
		t.Fatalf("a batch of 80 on a server that takes 50: %v, want an error naming max_msgs", err)
	}
}
