// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stompclient_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/cairnmq/cairn/gateways/stompclient"
)

// Scenario (b) on the failover client: 4 producers without receipts, 4
// consumers with client-individual acks at a prefetch of 1,000, acking
// each message as it comes. A plain go-stomp consumer at its default
// options deadlocks here against a broker that dispatches this fast: its
// connection goroutine blocks handing a MESSAGE on to a subscription
// channel of 16 while the consumer blocks in Ack on a write channel of 20
// that only that goroutine drains. stompclient's pump takes every MESSAGE off go-stomp's
// channel at once (the broker's prefetch bounds its queue), so the reader
// never blocks and every message is delivered and acknowledged.
func TestConsumersAtPrefetch1000DoNotDeadlock(t *testing.T) {
	k := startBroker(t, t.TempDir(), "127.0.0.1:0")
	const producers, consumers, each = 4, 4, 5000
	total := int64(producers * each)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var got atomic.Int64
	all := make(chan struct{}) // closed once every message is acknowledged
	var wg sync.WaitGroup
	errs := make(chan error, producers+consumers)
	for range consumers {
		c, err := stompclient.Dial(ctx, stompclient.Options{Addrs: []string{k.Addr}, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		sub, err := c.Subscribe("/queue/b", gostomp.AckClientIndividual, "activemq.prefetchSize", "1000")
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for {
				select {
				case m, ok := <-sub.C:
					if !ok {
						errs <- fmt.Errorf("subscription ended after %d", got.Load())
						return
					}
					if err := sub.Ack(m); err != nil {
						errs <- err
						return
					}
					if got.Add(1) == total {
						close(all)
					}
				case <-all:
					return
				case <-ctx.Done():
					return
				}
			}
		})
	}
	body := make([]byte, 1024)
	for p := range producers {
		wg.Go(func() {
			c, err := gostomp.Dial("tcp", k.Addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Disconnect()
			for i := range each {
				if err := c.Send("/queue/b", "application/octet-stream", body, gostomp.SendOpt.Header("persistent", "true")); err != nil {
					errs <- fmt.Errorf("producer %d, send %d: %w", p, i, err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case err := <-errs:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatalf("consumers at prefetch 1,000 received %d of %d in 60s: stalled", got.Load(), total)
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if got.Load() < total {
		t.Fatalf("received %d of %d", got.Load(), total)
	}
}
