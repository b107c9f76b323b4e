// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cairnmq/cairn/internal/interop"
	gostomp "github.com/go-stomp/stomp/v3"
)

// TestGatewayInFrontOfActiveMQ: a Cairn gateway whose upstream is a real
// ActiveMQ (Debian's 5.17), so that consumers can move to Cairn before
// producers do. Queues with receipts, client-individual acks (plain and in
// transactions), topics both ways, request/reply through a temporary
// queue, NACK (ActiveMQ's: to its DLQ), the canary (through a temporary
// topic on ActiveMQ), and a kill -9 and restart of ActiveMQ under
// connected clients.
func TestGatewayInFrontOfActiveMQ(t *testing.T) {
	amq := interop.StartActiveMQ(t)
	statusFile := t.TempDir() + "/gateway.json"
	g := launchGateway(t, amq.Addr, "--canary-every", "300ms", "--status-file", statusFile)
	dial := func(addr string) *gostomp.Conn {
		t.Helper()
		c, err := gostomp.Dial("tcp", addr, gostomp.ConnOpt.HeartBeat(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Disconnect() })
		return c
	}
	recv := func(sub *gostomp.Subscription, what string) *gostomp.Message {
		t.Helper()
		select {
		case m := <-sub.C:
			if m.Err != nil {
				t.Fatalf("%s: %v", what, m.Err)
			}
			return m
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: nothing within 20s; the gateway's log:\n%s", what, g.log())
		}
		return nil
	}
	send := func(c *gostomp.Conn, dest string, from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := c.Send(dest, "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
				t.Fatalf("SEND %d to %s: %v", i, dest, err)
			}
		}
	}

	// Queues: SENDs through the gateway, receipted by ActiveMQ; a consumer on
	// the gateway acks half in receipted transactions, half one by one.
	cons, prod := dial(g.addr), dial(g.addr)
	if !strings.HasPrefix(cons.Server(), "Cairn-gateway/") {
		t.Fatalf("server header %q", cons.Server())
	}
	sub, err := cons.Subscribe("/queue/interop", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("activemq.prefetchSize", "10"))
	if err != nil {
		t.Fatal(err)
	}
	send(prod, "/queue/interop", 0, 30)
	for i := range 30 {
		m := recv(sub, fmt.Sprintf("queue message %d", i))
		if string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("message %d is %q", i, m.Body)
		}
		if i < 15 {
			tx, _ := cons.BeginWithError()
			tx.Ack(m)
			if err := tx.CommitWithReceipt(); err != nil {
				t.Fatalf("COMMIT of an ACK through the gateway: %v", err)
			}
		} else if err := cons.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	// Nothing is left on ActiveMQ: every ack reached it.
	direct := dial(amq.Addr)
	left, err := direct.Subscribe("/queue/interop", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-left.C:
		t.Fatalf("ActiveMQ still had %q after the gateway's consumer acked everything", m.Body)
	case <-time.After(time.Second):
	}

	// Topics: ActiveMQ's producer to two subscribers on the gateway, and the
	// gateway's producer to a subscriber on ActiveMQ.
	s1, _ := dial(g.addr).Subscribe("/topic/interop", gostomp.AckAuto)
	s2, _ := dial(g.addr).Subscribe("/topic/interop", gostomp.AckAuto)
	back, _ := direct.Subscribe("/topic/interop.back", gostomp.AckAuto)
	time.Sleep(300 * time.Millisecond) // the gateway's upstream SUBSCRIBE
	send(direct, "/topic/interop", 0, 10)
	for _, s := range []*gostomp.Subscription{s1, s2} {
		for i := range 10 {
			if m := recv(s, "topic message"); string(m.Body) != fmt.Sprint(i) {
				t.Fatalf("topic message %d is %q", i, m.Body)
			}
		}
	}
	send(prod, "/topic/interop.back", 0, 5)
	for i := range 5 {
		if m := recv(back, "topic message from the gateway"); string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("topic message %d on ActiveMQ is %q", i, m.Body)
		}
	}

	// Request/reply: a temporary queue of a client on the gateway, answered
	// by a client of ActiveMQ through the reply-to it was given.
	replies, err := cons.Subscribe("/temp-queue/replies", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	requests, _ := direct.Subscribe("/queue/interop.req", gostomp.AckAuto)
	if err := cons.Send("/queue/interop.req", "text/plain", []byte("ping"), gostomp.SendOpt.Receipt,
		gostomp.SendOpt.Header("reply-to", "/temp-queue/replies")); err != nil {
		t.Fatal(err)
	}
	req := recv(requests, "the request on ActiveMQ")
	if err := direct.Send(req.Header.Get("reply-to"), "text/plain", []byte("pong"), gostomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	if m := recv(replies, "the reply through the gateway"); string(m.Body) != "pong" {
		t.Fatalf("reply %q", m.Body)
	}

	// A NACK through the gateway is ActiveMQ's NACK: its STOMP NACK moves a
	// persistent message to ActiveMQ.DLQ at once (Cairn redelivers it as its
	// redelivery policy says; the README says so).
	nacked, err := cons.Subscribe("/queue/interop.nack", gostomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	send(direct, "/queue/interop.nack", 0, 1)
	if err := cons.Nack(recv(nacked, "the message to NACK")); err != nil {
		t.Fatal(err)
	}
	dlq, _ := direct.Subscribe("/queue/ActiveMQ.DLQ", gostomp.AckAuto)
	if m := recv(dlq, "the NACKed message in ActiveMQ.DLQ"); string(m.Body) != "0" {
		t.Fatalf("ActiveMQ.DLQ has %q", m.Body)
	}

	// The canary comes back through ActiveMQ (a temporary topic there): no
	// link is stalled, and each has a round trip.
	time.Sleep(1500 * time.Millisecond)
	if strings.Contains(g.log(), "stalled") {
		t.Fatalf("a link was found stalled with a healthy ActiveMQ:\n%s", g.log())
	}
	out, err := exec.Command(binary(t), "status", "--gateway", statusFile).CombinedOutput()
	if err != nil || strings.Contains(string(out), "never") {
		t.Fatalf("cairn status --gateway (a canary never came back?): %v\n%s", err, out)
	}

	// Failover: ActiveMQ killed and started again (its KahaDB kept). The
	// clients stay connected to the gateway; what was sent and receipted
	// before the kill and not acked arrives, and so does what is sent after.
	sub, err = cons.Subscribe("/queue/interop.fo", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("activemq.prefetchSize", "10"))
	if err != nil {
		t.Fatal(err)
	}
	send(prod, "/queue/interop.fo", 0, 5)
	for range 5 {
		recv(sub, "before the kill") // delivered, not acked
	}
	connects := strings.Count(g.log(), "upstream connected")
	amq.Kill()
	amq.Start()
	send(prod, "/queue/interop.fo", 5, 10) // waits for the gateway's link to come back
	got := map[string]bool{}
	for len(got) < 10 {
		m := recv(sub, "after ActiveMQ's restart")
		got[string(m.Body)] = true
		if err := cons.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(g.log(), "upstream connected"); n <= connects {
		t.Errorf("the gateway's links did not say they connected again after the restart:\n%s", g.log())
	}
}
