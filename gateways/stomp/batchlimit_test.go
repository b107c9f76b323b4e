// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"

	"github.com/cairnmq/cairn/internal/brokertest"
	"github.com/cairnmq/cairn/internal/natstest"
	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/jetstream"
	"github.com/cairnmq/cairn/journal/memlog"
)

// onJetStream opens the broker's journal on a JetStream stream of a new
// in-process nats-server.
func onJetStream(t testing.TB) journal.Log {
	nc := natstest.Connect(t, natstest.StartServer(t))
	l, err := jetstream.Open(context.Background(), nc, jetstream.Options{Stream: "BURST", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Scenario (b)'s producers on the JetStream journal: go-stomp clients
// sending persistent SENDs without receipts as fast as they can, which the
// listener gathers into bursts of up to 1,024, over the 1,000 records a
// JetStream atomic batch holds. Every message arrives; no producer gets an
// ERROR. (Before the journal said what it takes, each producer's connection
// was closed with "batch of 1024 records is over the 1000 a JetStream
// atomic batch may hold" after a few thousand SENDs.)
func TestProducerBurstsOnJetStream(t *testing.T) {
	k := brokertest.Start(t, brokertest.Options{Open: onJetStream})
	const producers, each = 4, 3000
	body := []byte(strings.Repeat("x", 1024))
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := range producers {
		wg.Go(func() {
			c, err := gostomp.Dial("tcp", k.Addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Disconnect()
			for i := range each {
				opts := []func(*frame.Frame) error{gostomp.SendOpt.Header("persistent", "true")}
				if i == each-1 {
					opts = append(opts, gostomp.SendOpt.Receipt) // all before it were read
				}
				if err := c.Send("/queue/burst", "text/plain", body, opts...); err != nil {
					errs <- fmt.Errorf("producer %d, send %d: %w", p, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if st, _ := k.Core.QueueStats("burst"); st.Pending != producers*each {
		t.Fatalf("the queue holds %d of the %d sent", st.Pending, producers*each)
	}
	c := dial(t, k.Addr)
	sub, err := c.Subscribe("/queue/burst", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	for i := range producers * each {
		select {
		case m := <-sub.C:
			if m.Err != nil {
				t.Fatalf("message %d: %v", i, m.Err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("received %d of %d", i, producers*each)
		}
	}
}

// A transaction that needs more records than one append holds is refused
// at COMMIT with code too-large, and nothing of it is stored; on a journal
// that takes 10 records at once, 11 transacted SENDs are one too many.
func TestTransactionOverTheBatchLimit(t *testing.T) {
	store := memlog.NewStore(1 << 20)
	store.LimitBatches(journal.BatchLimit{Records: 10})
	k := brokertest.Start(t, brokertest.Options{Open: func(t testing.TB) journal.Log {
		l, err := store.Open()
		if err != nil {
			t.Fatal(err)
		}
		return l
	}})
	nc, err := net.Dial("tcp", k.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	w, r := frame.NewWriter(nc), frame.NewReader(bufio.NewReader(nc))
	frames := []*frame.Frame{frame.New("CONNECT", "accept-version", "1.2", "host", "/"), frame.New("BEGIN", "transaction", "tx")}
	for i := range 11 {
		f := frame.New("SEND", "destination", "/queue/tx", "persistent", "true", "transaction", "tx")
		f.Body = fmt.Appendf(nil, "m%d", i)
		frames = append(frames, f)
	}
	frames = append(frames, frame.New("COMMIT", "transaction", "tx", "receipt", "c"))
	for _, f := range frames {
		if err := w.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if f, err := r.Read(); err != nil || f.Command != "CONNECTED" {
		t.Fatalf("CONNECT: %v %v", f, err)
	}
	e, err := r.Read()
	if err != nil || e.Command != "ERROR" {
		t.Fatalf("COMMIT of 11 records on a journal that takes 10: %v %v, want an ERROR", e, err)
	}
	if code := e.Header.Get("code"); code != "too-large" {
		t.Fatalf("COMMIT of 11 records on a journal that takes 10: code %q (%s), want too-large", code, e.Header.Get("message"))
	}
	if st, _ := k.Core.QueueStats("tx"); st.Pending != 0 {
		t.Fatalf("a refused transaction left %d messages", st.Pending)
	}
	if n := k.Log.LastIndex(); n != 0 {
		t.Fatalf("a refused transaction stored %d records", n)
	}
}
