// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stompclient_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/cairnmq/cairn/gateways/stompclient"
	"github.com/cairnmq/cairn/internal/brokertest"
)

var quiet = slog.New(slog.DiscardHandler)

// startBroker starts an in-process Cairn on journal directory dir,
// listening on addr.
func startBroker(t *testing.T, dir, addr string) *brokertest.Broker {
	t.Helper()
	return brokertest.Start(t, brokertest.Options{Dir: dir, Addr: addr})
}

func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ln.Addr().String())
		ln.Close()
	}
	return out
}

// TestFailover: a producer and a consumer on the failover client keep
// going while the broker moves between two addresses four times. Every
// confirmed SEND is delivered; a message delivered twice is either marked
// redelivered or was sent twice by the client.
func TestFailover(t *testing.T) {
	dir := t.TempDir()
	addrs := freeAddrs(t, 2)
	k := startBroker(t, dir, addrs[0])
	defer func() { k.Crash() }()
	opts := stompclient.Options{Addrs: addrs, Logger: quiet, ReceiptTimeout: 2 * time.Second, RetryMax: 200 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prod, err := stompclient.Dial(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	cons, err := stompclient.Dial(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	sub, err := cons.Subscribe("/queue/fo", gostomp.AckClientIndividual, "activemq.prefetchSize", "50")
	if err != nil {
		t.Fatal(err)
	}

	const n = 3000
	var mu sync.Mutex
	confirmed := map[string]bool{}
	got := map[string]int{}
	plain := 0 // deliveries of an already delivered message without redelivered:true
	stale := 0
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := range n {
			body := fmt.Sprint("m-", i)
			if err := prod.Send(ctx, "/queue/fo", []byte(body), "persistent", "true"); err != nil {
				t.Errorf("send %s: %v", body, err)
				return
			}
			mu.Lock()
			confirmed[body] = true
			mu.Unlock()
		}
	}()
	received := make(chan struct{})
	go func() {
		defer close(received)
		for m := range sub.C {
			body := string(m.Body)
			mu.Lock()
			if got[body] > 0 && m.Header.Get("redelivered") != "true" {
				plain++
			}
			got[body]++
			done := len(got) == n
			mu.Unlock()
			if err := sub.Ack(m); errors.Is(err, stompclient.ErrStale) {
				mu.Lock()
				stale++
				mu.Unlock()
			} else if err != nil {
				t.Errorf("ack: %v", err)
			}
			if done {
				return
			}
		}
	}()
	for i := 1; i <= 4; i++ {
		// Fail over at every fifth of the sends, whatever the speed.
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
			mu.Lock()
			c := len(confirmed)
			mu.Unlock()
			if c >= i*n/5 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d sends confirmed", c)
			}
		}
		k.Crash()
		k = startBroker(t, dir, addrs[i%2])
	}
	select {
	case <-sent:
	case <-ctx.Done():
		t.Fatal("producer stuck")
	}
	select {
	case <-received:
	case <-time.After(30 * time.Second):
		mu.Lock()
		t.Fatalf("consumer got %d of %d distinct messages", len(got), n)
	}
	mu.Lock()
	defer mu.Unlock()
	for body := range confirmed {
		if got[body] == 0 {
			t.Errorf("confirmed %s never delivered", body)
		}
	}
	ps, cs := prod.Stats(), cons.Stats()
	if ps.Connects < 3 || cs.Connects < 3 {
		t.Fatalf("connections: producer %d, consumer %d; the test should have failed over several times", ps.Connects, cs.Connects)
	}
	if plain > 0 {
		t.Fatalf("%d duplicate deliveries without redelivered:true (%d SENDs were sent again; the broker should have suppressed them)", plain, ps.Resends)
	}
	t.Logf("producer: %+v; consumer: %+v; stale acks %d; plain duplicates %d", ps, cs, stale, plain)
}

// TestPermanentError: an ERROR about the frame itself is returned, not
// retried forever.
func TestPermanentError(t *testing.T) {
	c, _ := oneBroker(t, stompclient.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Send(ctx, "/nowhere/x", []byte("x")); err == nil || ctx.Err() != nil {
		t.Fatalf("send to a bad destination: %v (ctx %v)", err, ctx.Err())
	}
	// The client is still usable.
	if err := c.Send(ctx, "/queue/ok", []byte("x")); err != nil {
		t.Fatal(err)
	}
}

// oneBroker starts a broker and a client of it with opts (its address
// list and logger filled in); both end with the test.
func oneBroker(t *testing.T, opts stompclient.Options) (*stompclient.Client, string) {
	t.Helper()
	addrs := freeAddrs(t, 1)
	k := startBroker(t, t.TempDir(), addrs[0])
	t.Cleanup(k.Crash)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts.Addrs, opts.Logger = addrs, quiet
	c, err := stompclient.Dial(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, addrs[0]
}

// TestDialNone: no broker answers: Dial gives up when ctx ends.
func TestDialNone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := stompclient.Dial(ctx, stompclient.Options{Addrs: freeAddrs(t, 2), Logger: quiet}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial with nobody listening: %v", err)
	}
}

// TestAckOnConnectionLostMeanwhile: a connection that goes between the
// client's check and the ACK's write still gives ErrStale (the message is
// unacknowledged on a connection that is gone), not go-stomp's error. The
// failover test met this once under the race detector.
func TestAckOnConnectionLostMeanwhile(t *testing.T) {
	c, _ := oneBroker(t, stompclient.Options{RetryMax: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := c.Subscribe("/queue/lost", gostomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"ack", "nack"} {
		if err := c.Send(ctx, "/queue/lost", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	for _, settle := range []func(*gostomp.Message) error{sub.Ack, sub.Nack} {
		var m *gostomp.Message
		select {
		case m = <-sub.C:
		case <-ctx.Done():
			t.Fatal("no message")
		}
		// Close the message's connection under the client, so that the ACK
		// or NACK meets a closed connection the client may not have seen
		// go yet.
		m.Conn.MustDisconnect()
		if err := settle(m); !errors.Is(err, stompclient.ErrStale) {
			t.Fatalf("settling %q on a lost connection: %v, want ErrStale", m.Body, err)
		}
	}
}

// TestUnsubscribeWhileMessagesFlow: Unsubscribe returns promptly while the
// broker is still delivering to the subscription, and the connection stays
// usable. go-stomp hands a subscription's RECEIPT and its MESSAGEs to one
// goroutine through a 16-slot channel: once nobody reads that channel, the
// RECEIPT that ends the subscription cannot get through, and the whole
// connection stalls.
func TestUnsubscribeWhileMessagesFlow(t *testing.T) {
	c, addr := oneBroker(t, stompclient.Options{ReceiptTimeout: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := c.Subscribe("/queue/flow", gostomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	// A producer on a connection of its own keeps the queue fed.
	p, err := gostomp.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.MustDisconnect()
	stop := make(chan struct{})
	produced := make(chan int)
	go func() {
		n := 0
		defer func() { produced <- n }()
		for ; n < 200000; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if p.Send("/queue/flow", "text/plain", []byte("x")) != nil {
				return
			}
		}
	}()
	for range 10 {
		select {
		case m := <-sub.C:
			if err := sub.Ack(m); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatal("no message")
		}
	}
	unsubscribed := make(chan error, 1)
	go func() { unsubscribed <- sub.Unsubscribe() }()
	select {
	case err := <-unsubscribed:
		if err != nil {
			t.Fatalf("unsubscribe: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Unsubscribe did not return within 15s while messages flowed")
	}
	close(stop)
	t.Logf("%d messages produced", <-produced)
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := c.Send(sctx, "/queue/after", []byte("x")); err != nil {
		t.Fatalf("the connection after Unsubscribe: %v", err)
	}
}
