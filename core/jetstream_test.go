// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/internal/natstest"
	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/jetstream"
	"github.com/cairnmq/cairn/journal/wal"
)

// On a journal where a Read is a round trip (JetStream), a restarted
// broker reads its paged backlog back in batches (journal.BatchReader), a
// few requests per refill, and delivers it whole and in order.
func TestRestartOnJetStreamReadsBackInBatches(t *testing.T) {
	s := natstest.StartServer(t)
	nc := natstest.Connect(t, s)
	openJS := func() (*core.Broker, func()) {
		l, err := jetstream.Open(context.Background(), nc, jetstream.Options{Stream: "RESTART", Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		b, err := core.Open(core.Options{Journal: l, Logger: quiet, MaintainEvery: -1})
		if err != nil {
			l.Close()
			t.Fatal(err)
		}
		return b, func() { b.Close(); l.Close() }
	}
	b, stop := openJS()
	const n = 3000
	d, _ := core.ParseDestination("/queue/js")
	body := func(prio, i int) string { return fmt.Sprintf("p%d-%04d", prio, i) }
	for i := 0; i < n; i += 100 {
		var ms []*core.Message
		for j := i; j < i+100; j++ {
			prio := 4
			if j%10 == 0 {
				prio = 7
			}
			ms = append(ms, &core.Message{Destination: d, Persistent: true, Priority: uint8(prio), Body: []byte(body(prio, j))})
		}
		if err := b.SendMany(context.Background(), ms); err != nil {
			t.Fatal(err)
		}
	}
	stop()

	b, stop = openJS()
	defer stop()
	if st, _ := b.QueueStats("js"); st.Paged != n {
		t.Fatalf("after the restart: %+v", st)
	}
	requests := natstest.CountRequests(t, nc, "$JS.API.DIRECT.GET.RESTART")
	_, in := subscribe(t, b, "/queue/js", core.SubscribeOptions{Prefetch: 2 * n})
	for _, prio := range []int{7, 4} {
		for j := range n {
			if (j%10 == 0) != (prio == 7) {
				continue
			}
			if got := in.next(t); string(got.Msg.Body) != body(prio, j) {
				t.Fatalf("got %q, want %q", got.Msg.Body, body(prio, j))
			}
		}
	}
	in.none(t, 0)
	r := requests.Count(t)
	if r > n/100 {
		t.Fatalf("%d direct get requests to read back %d messages", r, n)
	}
	t.Logf("%d direct get requests to read back %d messages", r, n)
}

// BenchmarkDrainAfterRestart: a broker restarted on a journal holding
// 20,000 pending 1 KiB messages, then one consumer draining them (the
// queue reading them back from the journal as it goes). One op is one
// drain; msg/s is its rate.
//
//	go test -run '^$' -bench DrainAfterRestart -benchtime 3x ./core
func BenchmarkDrainAfterRestart(b *testing.B) {
	const n = 20000
	journals := []struct {
		name string
		open func(b *testing.B) func() (journal.Log, error)
	}{
		{"wal", func(b *testing.B) func() (journal.Log, error) {
			dir := b.TempDir()
			return func() (journal.Log, error) { return wal.Open(dir, wal.Options{Logger: quiet}) }
		}},
		{"jetstream", func(b *testing.B) func() (journal.Log, error) {
			nc := natstest.Connect(b, natstest.StartServer(b))
			return func() (journal.Log, error) {
				return jetstream.Open(context.Background(), nc, jetstream.Options{Stream: "DRAIN", Logger: quiet})
			}
		}},
	}
	for _, j := range journals {
		b.Run(j.name, func(b *testing.B) {
			var took time.Duration
			for range b.N {
				b.StopTimer()
				open := j.open(b)
				run := func(fn func(*core.Broker)) {
					l, err := open()
					if err != nil {
						b.Fatal(err)
					}
					br, err := core.Open(core.Options{Journal: l, Logger: quiet, MaintainEvery: -1})
					if err != nil {
						b.Fatal(err)
					}
					fn(br)
					br.Close()
					l.Close()
				}
				d, _ := core.ParseDestination("/queue/drain")
				run(func(br *core.Broker) {
					for i := 0; i < n; i += 100 {
						ms := make([]*core.Message, 100)
						for k := range ms {
							ms[k] = &core.Message{Destination: d, Persistent: true, Priority: 4, Body: make([]byte, 1024)}
						}
						if err := br.SendMany(context.Background(), ms); err != nil {
							b.Fatal(err)
						}
					}
				})
				run(func(br *core.Broker) {
					in := make(inbox, n)
					b.StartTimer()
					start := time.Now()
					if _, err := br.Subscribe(d, core.SubscribeOptions{Prefetch: n}, in); err != nil {
						b.Fatal(err)
					}
					for range n {
						select {
						case <-in:
						case <-time.After(10 * time.Second):
							b.Fatal("the drain stalled")
						}
					}
					took += time.Since(start)
					b.StopTimer()
				})
			}
			b.ReportMetric(float64(n*b.N)/took.Seconds(), "msg/s")
		})
	}
}
