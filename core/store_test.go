// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/journal/wal"
)

// TestStoreLimit: at the limit a persistent send waits until an ack makes
// room (or, with StoreFullError, fails with ErrStoreFull); non-persistent
// sends are not held.
func TestStoreLimit(t *testing.T) {
	body := strings.Repeat("x", 1000)
	one := (&core.Message{Body: []byte(body)}).Size()
	b, stop := openOnWalWith(t, t.TempDir(), wal.Options{}, core.Options{StoreLimit: int64(3 * one)})
	defer stop()
	for range 3 {
		send(t, b, "/queue/full", body, true)
	}
	for deadline := time.Now().Add(5 * time.Second); b.StoreUsed() < int64(3*one); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("store use %d", b.StoreUsed())
		}
	}
	send(t, b, "/queue/full", "not held", false)
	d, _ := core.ParseDestination("/queue/full")
	done := make(chan error, 1)
	go func() {
		done <- b.Send(context.Background(), &core.Message{Destination: d, Persistent: true, Body: []byte(body)})
	}()
	select {
	case err := <-done:
		t.Fatalf("a send past the store limit went through: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	s, in := subscribe(t, b, "/queue/full", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 1})
	if err := s.Ack(context.Background(), in.next(t).Msg.Seq); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the held send did not go through after an ack made room")
	}

	b2, stop2 := openOnWalWith(t, t.TempDir(), wal.Options{}, core.Options{StoreLimit: int64(one), StoreFullError: true})
	defer stop2()
	send(t, b2, "/queue/full", body, true)
	for deadline := time.Now().Add(5 * time.Second); b2.StoreUsed() < int64(one); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("not accounted")
		}
	}
	err := b2.Send(context.Background(), &core.Message{Destination: d, Persistent: true, Body: []byte(body)})
	if !errors.Is(err, core.ErrStoreFull) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("send to a full store: %v", err)
	}
}

// TestMemoryFlowControl: non-persistent messages cannot be paged, so at the
// memory limit their sender waits until a consumer makes room. (Sends the
// queue has not yet taken in are not counted yet: the bound is the limit
// plus what a destination queues ahead of its loop, 4,096 operations.)
func TestMemoryFlowControl(t *testing.T) {
	body := strings.Repeat("x", 1000)
	one := (&core.Message{Body: []byte(body)}).Size()
	b, stop := openOnWalWith(t, t.TempDir(), wal.Options{}, core.Options{MemoryLimit: int64(20 * one)})
	defer stop()
	d, _ := core.ParseDestination("/queue/volatile")
	sent := make(chan int, 1)
	go func() {
		n := 0
		for ; n < 10000; n++ {
			if b.Send(context.Background(), &core.Message{Destination: d, Body: []byte(body)}) != nil {
				break
			}
		}
		sent <- n
	}()
	select {
	case n := <-sent:
		t.Fatalf("%d non-persistent messages went into a 20-message memory limit", n)
	case <-time.After(500 * time.Millisecond):
	}
	// Past the limit, what the queue's loop had taken in before it counted
	// them: the batch it was running (up to 4,096 sends) and the next one
	// queued behind it (as many again).
	if st, _ := b.QueueStats("volatile"); st.Pending > 20+2*4096 {
		t.Fatalf("the queue holds %d, past the limit and its loop's two batches", st.Pending)
	}
	sub, in := subscribe(t, b, "/queue/volatile", core.SubscribeOptions{Mode: core.AckClientIndividual})
	for range 10000 {
		if err := sub.Ack(context.Background(), in.next(t).Msg.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if n := <-sent; n != 10000 {
		t.Fatalf("the held sender sent %d of 10000", n)
	}
}
