// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
)

// TestServeRedeliveryAcrossKill9: a poison message NACKed over STOMP
// (receipted, so each count is durable) by a real cairn serve that is
// killed with SIGKILL between NACKs: its count and its delay survive, and
// past the limit it is in its dead-letter queue, once, with where it came
// from and why.
func TestServeRedeliveryAcrossKill9(t *testing.T) {
	data := t.TempDir()
	args := []string{"--redelivery", "orders.*=max:2,delay:300ms,dlq:individual"}
	p := startServe(t, data, args...)
	sendN(t, p.addr, "/queue/orders.eu", "poison", 1)

	// receiveNack takes the next delivery and NACKs it with a receipt: once
	// the RECEIPT is back, the count (or the move) is durable.
	receiveNack := func(addr string, wantRedelivered bool) {
		t.Helper()
		rc := dialRaw(t, addr)
		defer rc.nc.Close()
		rc.send(t, frame.New("SUBSCRIBE", "destination", "/queue/orders.eu", "id", "1", "ack", "client-individual"))
		rc.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		m, err := rc.r.Read()
		if err != nil || m.Command != "MESSAGE" || string(m.Body) != "poison-0" || (m.Header.Get("redelivered") == "true") != wantRedelivered {
			t.Fatalf("delivery: %v %v", m, err)
		}
		rc.send(t, frame.New("NACK", "id", m.Header.Get("ack"), "receipt", "n"))
		if r, err := rc.r.Read(); err != nil || r.Command != "RECEIPT" {
			t.Fatalf("NACK receipt: %v %v", r, err)
		}
	}
	receiveNack(p.addr, false)
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	started := time.Now() // the delay runs again from the restart's replay
	p = startServe(t, data, args...)
	receiveNack(p.addr, true)
	if d := time.Since(started); d < 300*time.Millisecond {
		t.Fatalf("redelivered %s after the restart, inside its 300ms delay", d)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	p = startServe(t, data, args...)
	receiveNack(p.addr, true) // the third give-back: over the limit of 2

	c, err := gostomp.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	sub, _ := c.Subscribe("/queue/DLQ.orders.eu", gostomp.AckAuto)
	select {
	case m := <-sub.C:
		if string(m.Body) != "poison-0" || m.Header.Get("original-destination") != "/queue/orders.eu" ||
			m.Header.Get("redelivery-count") != "3" || m.Header.Get("dlqDeliveryFailureCause") == "" {
			t.Fatalf("dead letter %q: %v", m.Body, m.Header)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing in DLQ.orders.eu")
	}
	src, _ := c.Subscribe("/queue/orders.eu", gostomp.AckAuto)
	select {
	case m := <-src.C:
		t.Fatalf("the source still delivers %q", m.Body)
	case <-time.After(500 * time.Millisecond):
	}
}

// TestServeExpiryAcrossKill9: a message sent over STOMP with an expires
// header, its broker killed with SIGKILL, is not delivered once expired
// after the restart (nor after the next one), and with --expired-to-dlq it
// is in ActiveMQ.DLQ instead.
func TestServeExpiryAcrossKill9(t *testing.T) {
	data := t.TempDir()
	p := startServe(t, data, "--expired-to-dlq")
	c, err := gostomp.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	expires := fmt.Sprint(time.Now().Add(300 * time.Millisecond).UnixMilli())
	for _, m := range []struct{ body, expires string }{{"short", expires}, {"long", "0"}} {
		if err := c.Send("/queue/exp", "text/plain", []byte(m.body), gostomp.SendOpt.Receipt,
			gostomp.SendOpt.Header("persistent", "true"), gostomp.SendOpt.Header("expires", m.expires)); err != nil {
			t.Fatal(err)
		}
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	time.Sleep(400 * time.Millisecond)
	p = startServe(t, data, "--expired-to-dlq")
	got := drain(t, p.addr, "/queue/exp")
	if len(got) != 1 || got["long"] != 1 {
		t.Fatalf("after the restart the queue holds %v, want only long", got)
	}
	if dl := drain(t, p.addr, "/queue/ActiveMQ.DLQ"); len(dl) != 1 || dl["short"] != 1 {
		t.Fatalf("ActiveMQ.DLQ holds %v, want short", dl)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	p = startServe(t, data, "--expired-to-dlq")
	if got := drain(t, p.addr, "/queue/exp"); len(got) != 0 {
		t.Fatalf("after another restart the queue holds %v", got)
	}
}

// TestServeDurableAcrossKill9: a durable topic subscription made over STOMP
// keeps what is published while its subscriber is away, through a SIGKILL
// of the broker.
func TestServeDurableAcrossKill9(t *testing.T) {
	data := t.TempDir()
	p := startServe(t, data)
	durable := func(addr string) (*gostomp.Conn, *gostomp.Subscription) {
		t.Helper()
		c, err := gostomp.Dial("tcp", addr, gostomp.ConnOpt.Header("client-id", "billing"))
		if err != nil {
			t.Fatal(err)
		}
		sub, err := c.Subscribe("/topic/invoices", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("activemq.subscriptionName", "ledger"))
		if err != nil {
			t.Fatal(err)
		}
		return c, sub
	}
	c, _ := durable(p.addr)
	if err := c.Disconnect(); err != nil {
		t.Fatal(err)
	}
	pub, err := gostomp.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := pub.Send("/topic/invoices", "text/plain", []byte(fmt.Sprint("inv-", i)), gostomp.SendOpt.Receipt,
			gostomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatal(err)
		}
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	p = startServe(t, data)
	c, sub := durable(p.addr)
	defer c.Disconnect()
	for i := range 5 {
		select {
		case m := <-sub.C:
			if m.Err != nil || string(m.Body) != fmt.Sprint("inv-", i) || m.Destination != "/topic/invoices" {
				t.Fatalf("kept message %d: %v %q %s", i, m.Err, m.Body, m.Destination)
			}
			c.Ack(m)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of 5 kept messages after the restart", i)
		}
	}
}

// TestServeStoreFull: past --store-limit-mb, with --store-full-error, a
// persistent SEND gets ERROR code:store-full; without it, it waits until a
// consumer makes room.
func TestServeStoreFull(t *testing.T) {
	p := startServe(t, t.TempDir(), "--store-limit-mb", "1", "--store-full-error")
	c, err := gostomp.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 16<<10)
	var sendErr error
	for i := 0; i < 200 && sendErr == nil; i++ {
		sendErr = c.Send("/queue/full", "application/octet-stream", body, gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true"))
	}
	if sendErr == nil || !strings.Contains(sendErr.Error(), "store is full") {
		t.Fatalf("200 sends of 16 KiB past a 1 MiB store limit: %v", sendErr)
	}

	p = startServe(t, t.TempDir(), "--store-limit-mb", "1")
	prod, err := gostomp.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan int, 1)
	go func() {
		n := 0
		for ; n < 200; n++ {
			if prod.Send("/queue/held", "application/octet-stream", body, gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")) != nil {
				break
			}
		}
		sent <- n
	}()
	select {
	case n := <-sent:
		t.Fatalf("all %d sends went through a 1 MiB store limit with nobody consuming", n)
	case <-time.After(500 * time.Millisecond):
	}
	drain(t, p.addr, "/queue/held") // a consumer makes room as it acks
	if n := <-sent; n != 200 {
		t.Fatalf("the held producer sent %d of 200 after a consumer drained the queue", n)
	}
}

// TestServePagingAcrossKill9: with a 1 MiB memory limit, 3,000 persistent
// 1 KiB messages are mostly paged; after a SIGKILL and a restart they all
// come back, once each, in order.
func TestServePagingAcrossKill9(t *testing.T) {
	data := t.TempDir()
	args := []string{"--memory-limit-mb", "1"}
	p := startServe(t, data, args...)
	c, err := gostomp.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 1000)
	const n = 3000
	for i := range n {
		if err := c.Send("/queue/paged", "text/plain", []byte(fmt.Sprintf("%05d-%s", i, pad)),
			gostomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Send("/queue/paged", "text/plain", []byte("last"), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	p = startServe(t, data, args...)
	cc, err := gostomp.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Disconnect()
	sub, err := cc.Subscribe("/queue/paged", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		select {
		case m := <-sub.C:
			if m.Err != nil || !strings.HasPrefix(string(m.Body), fmt.Sprintf("%05d-", i)) {
				t.Fatalf("delivery %d: %v %.6q", i, m.Err, m.Body)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d after the restart", i, n)
		}
	}
}
