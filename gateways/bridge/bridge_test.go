// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package bridge_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"

	"github.com/cairnmq/cairn/gateways/bridge"
	"github.com/cairnmq/cairn/gateways/stomp"
	"github.com/cairnmq/cairn/internal/brokertest"
	"github.com/cairnmq/cairn/internal/certtest"
	"github.com/cairnmq/cairn/internal/interop"
	"github.com/cairnmq/cairn/internal/logtest"
)

// gw is a gateway serving STOMP on loopback in front of upstream.
type gw struct {
	addr string
	g    *bridge.Gateway
	srv  *stomp.Server
	log  *logtest.Buffer
}

func startGateway(t *testing.T, o bridge.Options, upstream ...string) *gw {
	t.Helper()
	lg := &logtest.Buffer{}
	o.Upstream = upstream
	o.Logger = slog.New(slog.NewTextHandler(lg, nil))
	if o.Wait == 0 {
		o.Wait = 5 * time.Second
	}
	g, err := bridge.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := stomp.NewServer(g, stomp.Options{Logger: o.Logger, ServerName: "Cairn-gateway/test", ConnectedHeaders: g.ConnectedHeaders})
	go srv.Serve(ln)
	k := &gw{addr: ln.Addr().String(), g: g, srv: srv, log: lg}
	t.Cleanup(func() {
		k.stop()
		if t.Failed() {
			t.Logf("gateway log:\n%s", lg)
		}
	})
	return k
}

func (k *gw) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	k.srv.Close(ctx)
	k.g.Close()
}

func dial(t *testing.T, addr string, opts ...func(*gostomp.Conn) error) *gostomp.Conn {
	t.Helper()
	c, err := gostomp.Dial("tcp", addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect() })
	return c
}

func recv(t *testing.T, sub *gostomp.Subscription) *gostomp.Message {
	t.Helper()
	select {
	case m := <-sub.C:
		if m.Err != nil {
			t.Fatal(m.Err)
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no MESSAGE within 10s")
	}
	return nil
}

// subscribed returns once c's SUBSCRIBEs are done: the listener carries
// out a connection's frames in order, so a receipted SEND after them is
// answered after them.
func subscribed(t *testing.T, c *gostomp.Conn) {
	t.Helper()
	if err := c.Send("/queue/barrier", "text/plain", nil, gostomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
}

func noMessage(t *testing.T, sub *gostomp.Subscription, within time.Duration) {
	t.Helper()
	select {
	case m := <-sub.C:
		t.Fatalf("unexpected MESSAGE %q", m.Body)
	case <-time.After(within):
	}
}

// TestQueueThroughAGateway: a producer on the broker, a consumer on a
// gateway: MESSAGEs carry the broker's headers, ACKs with receipts are
// confirmed upstream, a NACK is counted upstream, and the queue is empty
// at the end.
func TestQueueThroughAGateway(t *testing.T) {
	up := brokertest.Start(t, brokertest.Options{})
	g := startGateway(t, bridge.Options{}, up.Addr)
	p := dial(t, up.Addr)
	for i := range 5 {
		if err := p.Send("/queue/work", "text/plain", []byte(fmt.Sprint("m", i)), gostomp.SendOpt.Receipt,
			gostomp.SendOpt.Header("persistent", "true"), gostomp.SendOpt.Header("colour", "blue:green"), gostomp.SendOpt.Header("priority", "7")); err != nil {
			t.Fatal(err)
		}
	}
	c := dial(t, g.addr)
	if s := c.Server(); !strings.HasPrefix(s, "Cairn-gateway") {
		t.Fatalf("server header %q", s)
	}
	sub, err := c.Subscribe("/queue/work", gostomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	first := recv(t, sub)
	if string(first.Body) != "m0" || first.Header.Get("colour") != "blue:green" || first.Header.Get("persistent") != "true" ||
		first.Header.Get("priority") != "7" || !strings.HasPrefix(first.Header.Get("message-id"), "ID:cairn-") {
		t.Fatalf("first MESSAGE: %q %v", first.Body, first.Header)
	}
	// A NACK: upstream redelivers it, marked and counted.
	if err := c.Nack(first); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for len(got) < 5 {
		m := recv(t, sub)
		if string(m.Body) == "m0" && m.Header.Get("redelivered") != "true" {
			t.Fatalf("m0 after a NACK is not marked redelivered: %v", m.Header)
		}
		tx, _ := c.BeginWithError()
		if err := tx.Ack(m); err != nil {
			t.Fatal(err)
		}
		if err := tx.CommitWithReceipt(); err != nil {
			t.Fatal(err)
		}
		got[string(m.Body)] = true
	}
	if st, _ := up.Core.QueueStats("work"); st.Pending != 0 || st.InFlight != 0 || st.Dequeued != 5 {
		t.Fatalf("upstream after every ack through the gateway: %+v", st)
	}
}

// TestSendThroughAGateway: a SEND through a gateway gets its RECEIPT once
// upstream has stored it; a producer's order is kept; an unreceipted burst
// arrives whole.
func TestSendThroughAGateway(t *testing.T) {
	up := brokertest.Start(t, brokertest.Options{})
	g := startGateway(t, bridge.Options{}, up.Addr)
	p := dial(t, g.addr)
	if err := p.Send("/queue/in", "text/plain", []byte("receipted"), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
		t.Fatal(err)
	}
	if st, _ := up.Core.QueueStats("in"); st.Pending != 1 {
		t.Fatalf("upstream holds %d after the RECEIPT, want 1", st.Pending)
	}
	for i := range 500 {
		if err := p.Send("/queue/in", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatal(err)
		}
	}
	c := dial(t, up.Addr)
	sub, err := c.Subscribe("/queue/in", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	if m := recv(t, sub); string(m.Body) != "receipted" {
		t.Fatalf("first %q", m.Body)
	}
	for i := range 500 {
		if m := recv(t, sub); string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("message %d: %q (order lost)", i, m.Body)
		}
		_ = i
	}
}

// TestTopicFanOutCostsOneUpstreamSubscription: 200 subscribers of one
// topic on a gateway, and the broker has one subscriber; each gets every
// message. A second selector is a second upstream subscription.
func TestTopicFanOutCostsOneUpstreamSubscription(t *testing.T) {
	up := brokertest.Start(t, brokertest.Options{})
	g := startGateway(t, bridge.Options{}, up.Addr)
	const n = 200
	var subs []*gostomp.Subscription
	for range n / 20 {
		c := dial(t, g.addr)
		for range 20 {
			s, err := c.Subscribe("/topic/news", gostomp.AckAuto)
			if err != nil {
				t.Fatal(err)
			}
			subs = append(subs, s)
		}
		subscribed(t, c)
	}
	c := dial(t, g.addr)
	eu, err := c.Subscribe("/topic/news", gostomp.AckAuto, gostomp.SubscribeOpt.Header("selector", "region = 'eu'"))
	if err != nil {
		t.Fatal(err)
	}
	subscribed(t, c)
	p := dial(t, up.Addr)
	// The subscriptions are upstream once their RECEIPTs came: send now.
	for i := range 10 {
		region := "us"
		if i%2 == 0 {
			region = "eu"
		}
		if err := p.Send("/topic/news", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Header("region", region), gostomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				if m := recv(t, s); string(m.Body) != fmt.Sprint(i) {
					t.Errorf("subscriber got %q, want %d", m.Body, i)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := 0; i < 10; i += 2 {
		if m := recv(t, eu); string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("the eu subscriber got %q, want %d", m.Body, i)
		}
	}
	noMessage(t, eu, 100*time.Millisecond)
	var got int
	for _, ts := range up.Core.Topics() {
		if ts.Name == "news" {
			got = ts.Subscribers
		}
	}
	if got != 2 {
		t.Fatalf("the broker has %d subscribers of the topic, want 2 (one per selector)", got)
	}
}

// TestGatewayGoneRedeliversUpstream: a gateway that goes away with
// messages delivered and unacknowledged: upstream gives them, marked
// redelivered, to a consumer on another gateway. Nothing is stranded.
func TestGatewayGoneRedeliversUpstream(t *testing.T) {
	up := brokertest.Start(t, brokertest.Options{})
	g1 := startGateway(t, bridge.Options{}, up.Addr)
	g2 := startGateway(t, bridge.Options{}, up.Addr)
	p := dial(t, up.Addr)
	for i := range 20 {
		p.Send("/queue/jobs", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true"))
	}
	c1 := dial(t, g1.addr)
	s1, _ := c1.Subscribe("/queue/jobs", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("activemq.prefetchSize", "100"))
	acked := map[string]bool{}
	for range 5 {
		m := recv(t, s1)
		if err := c1.Ack(m); err != nil {
			t.Fatal(err)
		}
		acked[string(m.Body)] = true
	}
	// Let the rest reach the gateway unacknowledged, then lose it.
	time.Sleep(200 * time.Millisecond)
	c1.Disconnect()
	g1.stop()
	c2 := dial(t, g2.addr)
	s2, _ := c2.Subscribe("/queue/jobs", gostomp.AckClientIndividual)
	got := map[string]bool{}
	for len(got) < 15 {
		m := recv(t, s2)
		if acked[string(m.Body)] {
			t.Fatalf("%s came back after its ack was confirmed", m.Body)
		}
		got[string(m.Body)] = true
		c2.Ack(m)
	}
}

// TestPrefetchAtFullCreditDoesNotStall: the link carries a consumer that
// acks every message at prefetch 1,000 while four producers send (go-stomp
// stalls on exactly this traffic): everything arrives.
func TestPrefetchAtFullCreditDoesNotStall(t *testing.T) {
	up := brokertest.Start(t, brokertest.Options{})
	g := startGateway(t, bridge.Options{Links: 1}, up.Addr)
	const producers, each = 4, 5000
	c := dial(t, g.addr, gostomp.ConnOpt.ReadChannelCapacity(4096), gostomp.ConnOpt.WriteChannelCapacity(4096))
	sub, err := c.Subscribe("/queue/fast", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("activemq.prefetchSize", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range producers {
		go func() {
			p, err := gostomp.Dial("tcp", up.Addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer p.Disconnect()
			for j := range each {
				p.Send("/queue/fast", "text/plain", []byte(fmt.Sprint(i, "-", j)), gostomp.SendOpt.Header("persistent", "true"))
			}
		}()
	}
	seen := map[string]bool{}
	deadline := time.After(60 * time.Second)
	for len(seen) < producers*each {
		select {
		case m := <-sub.C:
			if m.Err != nil {
				t.Fatal(m.Err)
			}
			seen[string(m.Body)] = true
			if err := c.Ack(m); err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			t.Fatalf("stalled: %d of %d received", len(seen), producers*each)
		}
	}
}

// TestUpstreamListParses: a comma list and ActiveMQ's failover URI.
func TestUpstreamListParses(t *testing.T) {
	for in, want := range map[string]string{
		"a:61613,b:61613": "a:61613 b:61613",
		"failover:(tcp://a:61613,tcp://b:61613)?randomize=false": "a:61613 b:61613",
		"failover:tcp://a:1":    "a:1",
		"tcp://127.0.0.1:61613": "127.0.0.1:61613",
	} {
		got, err := bridge.ParseUpstream(in)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("ParseUpstream(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "failover:(a:1", "nohost"} {
		if _, err := bridge.ParseUpstream(bad); err == nil {
			t.Errorf("ParseUpstream(%q) took it", bad)
		}
	}
}

// TestUpstreamRestartKeepsClientsAndPrefetch: the upstream broker crashes
// and comes back on its journal while a client on the gateway holds a full
// prefetch unacknowledged. The client stays connected; its acks of what it
// held (now stale) are taken without error; upstream's redelivered copies
// never take it past its prefetch; at the end every message is acked and
// the queue is empty.
func TestUpstreamRestartKeepsClientsAndPrefetch(t *testing.T) {
	dir := t.TempDir()
	up := brokertest.Start(t, brokertest.Options{Dir: dir})
	addr := up.Addr
	g := startGateway(t, bridge.Options{HeartBeat: 200 * time.Millisecond}, addr)
	p := dial(t, up.Addr)
	for i := range 20 {
		p.Send("/queue/r", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true"))
	}
	c := dial(t, g.addr, gostomp.ConnOpt.HeartBeat(0, 0))
	const prefetch = 5
	sub, err := c.Subscribe("/queue/r", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("activemq.prefetchSize", fmt.Sprint(prefetch)))
	if err != nil {
		t.Fatal(err)
	}
	var held []*gostomp.Message
	for range prefetch {
		held = append(held, recv(t, sub))
	}
	up.Crash()
	up = brokertest.Start(t, brokertest.Options{Dir: dir, Addr: addr})
	// Once the links are back (and upstream has redelivered), until the
	// client acks what it holds the gateway gives it nothing more.
	for deadline := time.Now().Add(10 * time.Second); !g.log.Has("upstream connected"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not reconnect:\n%s", g.log)
		}
	}
	noMessage(t, sub, 500*time.Millisecond)
	for _, m := range held {
		if err := c.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	acked := map[string]int{}
	for len(acked) < 20 {
		m := recv(t, sub)
		tx, _ := c.BeginWithError()
		tx.Ack(m)
		if err := tx.CommitWithReceipt(); err != nil {
			t.Fatalf("the client's connection to the gateway failed: %v", err)
		}
		acked[string(m.Body)]++
	}
	for i := range prefetch {
		if b := string(held[i].Body); acked[b] == 0 {
			t.Errorf("%s, held across the restart, did not come again", b)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ := up.Core.QueueStats("r")
		if st.Pending == 0 && st.InFlight == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upstream after every ack: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// frozenProxy forwards TCP to upstream until frozen: then it keeps every
// connection open and moves nothing, as a path that drops packets does.
type frozenProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	stuck bool
}

func startProxy(t *testing.T, upstream string) *frozenProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &frozenProxy{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			for _, pair := range [][2]net.Conn{{c, u}, {u, c}} {
				go func() {
					buf := make([]byte, 32<<10)
					for {
						n, err := pair[0].Read(buf)
						if err != nil {
							pair[1].Close()
							return
						}
						for p.isStuck() {
							time.Sleep(10 * time.Millisecond)
						}
						if _, err := pair[1].Write(buf[:n]); err != nil {
							pair[0].Close()
							return
						}
					}
				}()
			}
		}
	}()
	return p
}

func (p *frozenProxy) isStuck() bool  { p.mu.Lock(); defer p.mu.Unlock(); return p.stuck }
func (p *frozenProxy) set(stuck bool) { p.mu.Lock(); p.stuck = stuck; p.mu.Unlock() }

// TestStalledLinkIsFoundAndRepaired: the path to upstream stops moving
// anything while every connection stays open. The link's canary and
// finds it within three intervals, it reconnects (here, through
// the path once it moves again) and the consumer gets what was sent
// meanwhile. Status shows the stall.
func TestStalledLinkIsFoundAndRepaired(t *testing.T) {
	up := brokertest.Start(t, brokertest.Options{})
	proxy := startProxy(t, up.Addr)
	g := startGateway(t, bridge.Options{Links: 1, HeartBeat: time.Hour, CanaryEvery: 200 * time.Millisecond}, proxy.ln.Addr().String())
	c := dial(t, g.addr)
	sub, err := c.Subscribe("/queue/stall", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	subscribed(t, c)
	p := dial(t, up.Addr)
	proxy.set(true)
	stuckAt := time.Now()
	p.Send("/queue/stall", "text/plain", []byte("during"), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true"))
	for g.log.Has("the link is stalled") == false {
		if time.Since(stuckAt) > 5*time.Second {
			t.Fatalf("the stall was not found within 5s:\n%s", g.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
	found := time.Since(stuckAt)
	proxy.set(false)
	if m := recv(t, sub); string(m.Body) != "during" {
		t.Fatalf("after the repair: %q", m.Body)
	}
	t.Logf("stall found %s after the path froze (canary every 200ms); repaired", found.Round(time.Millisecond))
	if found > 2*time.Second {
		t.Errorf("found after %s; it should take three canary intervals (600ms)", found)
	}
	st := g.g.Status()
	if len(st) != 1 || st[0].Stalls != 1 || st[0].Connects < 2 || !st[0].Up || st[0].Subscriptions != 1 {
		t.Fatalf("status after the repair: %+v", st)
	}
}

// TestGatewayLoopsAndLongChainsAreRefused: two gateways pointed at each
// other: one of them finds itself in the other's path and stops with a
// message that says so. A chain broker <- g1 <- g2 <- g3 is refused at g3
// with MaxHops 2, and taken with the default 3.
func TestGatewayLoopsAndLongChainsAreRefused(t *testing.T) {
	lnA, _ := net.Listen("tcp", "127.0.0.1:0")
	lnB, _ := net.Listen("tcp", "127.0.0.1:0")
	serve := func(ln net.Listener, upstream string, maxHops int) (*bridge.Gateway, chan error, *logtest.Buffer) {
		lg := &logtest.Buffer{}
		g, err := bridge.New(bridge.Options{Upstream: []string{upstream}, MaxHops: maxHops, Wait: 2 * time.Second,
			Logger: slog.New(slog.NewTextHandler(lg, nil))})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go func() {
			done <- bridge.Serve(ctx, g, stomp.Options{Logger: slog.New(slog.DiscardHandler)}, bridge.Listeners{STOMP: []net.Listener{ln}})
		}()
		return g, done, lg
	}
	_, doneA, _ := serve(lnA, lnB.Addr().String(), 0)
	_, doneB, _ := serve(lnB, lnA.Addr().String(), 0)
	select {
	case err := <-doneA:
		if err == nil || !strings.Contains(err.Error(), "gateway loop") {
			t.Fatalf("gateway A stopped with %v", err)
		}
	case err := <-doneB:
		if err == nil || !strings.Contains(err.Error(), "gateway loop") {
			t.Fatalf("gateway B stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("two gateways pointed at each other both kept running")
	}

	up := brokertest.Start(t, brokertest.Options{})
	g1 := startGateway(t, bridge.Options{}, up.Addr)
	g2 := startGateway(t, bridge.Options{}, g1.addr)
	dial(t, g2.addr) // g2's links are up once it answers...
	c := dial(t, g2.addr)
	subscribed(t, c) // ...and a SEND through it has gone round
	ln3, _ := net.Listen("tcp", "127.0.0.1:0")
	_, done3, _ := serve(ln3, g2.addr, 2)
	select {
	case err := <-done3:
		if err == nil || !strings.Contains(err.Error(), "chain too long") {
			t.Fatalf("a third gateway with MaxHops 2 stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a third gateway with MaxHops 2 kept running")
	}
	g3 := startGateway(t, bridge.Options{}, g2.addr)
	p := dial(t, up.Addr)
	cc := dial(t, g3.addr)
	sub, err := cc.Subscribe("/queue/chain", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	subscribed(t, cc)
	p.Send("/queue/chain", "text/plain", []byte("three hops"), gostomp.SendOpt.Receipt)
	if m := recv(t, sub); string(m.Body) != "three hops" {
		t.Fatalf("through three gateways: %q", m.Body)
	}
}

// TestRequestReplyAcrossGateways: a requester on one gateway with a
// temporary reply queue, a service on another: the reply-to the service
// gets names the requester's queue, and the reply comes back to it.
func TestRequestReplyAcrossGateways(t *testing.T) {
	up := brokertest.Start(t, brokertest.Options{})
	g1 := startGateway(t, bridge.Options{}, up.Addr)
	g2 := startGateway(t, bridge.Options{}, up.Addr)
	service := dial(t, g2.addr)
	requests, err := service.Subscribe("/queue/requests", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	subscribed(t, service)
	requester := dial(t, g1.addr)
	replies, err := requester.Subscribe("/temp-queue/replies", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	subscribed(t, requester)
	if err := requester.Send("/queue/requests", "text/plain", []byte("ping"), gostomp.SendOpt.Header("reply-to", "/temp-queue/replies"), gostomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	req := recv(t, requests)
	to := req.Header.Get("reply-to")
	if !strings.HasPrefix(to, "/remote-temp-queue/") {
		t.Fatalf("the service got reply-to %q", to)
	}
	if err := service.Send(to, "text/plain", []byte("pong"), gostomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, replies); string(m.Body) != "pong" {
		t.Fatalf("the requester got %q", m.Body)
	}
}

// TestDurableSubscriptionMovesBetweenGateways: a durable subscriber on one
// gateway goes away; what the topic gets meanwhile is kept upstream and
// delivered when it comes back through another gateway.
func TestDurableSubscriptionMovesBetweenGateways(t *testing.T) {
	up := brokertest.Start(t, brokertest.Options{})
	g1 := startGateway(t, bridge.Options{}, up.Addr)
	g2 := startGateway(t, bridge.Options{}, up.Addr)
	durable := func(addr string) (*gostomp.Conn, *gostomp.Subscription) {
		c, err := gostomp.Dial("tcp", addr, gostomp.ConnOpt.Header("client-id", "billing"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.Subscribe("/topic/invoices", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("activemq.subscriptionName", "all"))
		if err != nil {
			t.Fatal(err)
		}
		subscribed(t, c)
		return c, s
	}
	c1, _ := durable(g1.addr)
	c1.Disconnect()
	p := dial(t, up.Addr)
	for i := range 3 {
		p.Send("/topic/invoices", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true"))
	}
	var c2 *gostomp.Conn
	var s2 *gostomp.Subscription
	deadline := time.Now().Add(10 * time.Second)
	for {
		// g1's connection for client-id billing closes as the subscriber
		// goes; until then upstream refuses billing's second connection.
		c, err := gostomp.Dial("tcp", g2.addr, gostomp.ConnOpt.Header("client-id", "billing"))
		if err == nil {
			s, err := c.Subscribe("/topic/invoices", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("activemq.subscriptionName", "all"))
			if err == nil {
				c2, s2 = c, s
				break
			}
			c.Disconnect()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the durable subscriber could not come back through the other gateway: %v\n%s", err, g2.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer c2.Disconnect()
	for i := range 3 {
		m := recv(t, s2)
		if string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("kept message %d: %q", i, m.Body)
		}
		c2.Ack(m)
	}
}

// TestStompPyThroughAGateway: the stomp.py interop script the listener's
// own test runs against a broker, run against a gateway in front of one:
// stomp.py cannot tell them apart. (python3-stomp, which scripts/test
// installs.)
func TestStompPyThroughAGateway(t *testing.T) {
	py := interop.Python(t)
	up := brokertest.Start(t, brokertest.Options{})
	g := startGateway(t, bridge.Options{}, up.Addr)
	host, port, _ := net.SplitHostPort(g.addr)
	out, err := exec.Command(py, "../stomp/testdata/interop.py", host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("stomp.py through a gateway: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}

// TestUpstreamOverTLS: a gateway whose links reach the broker's TLS
// listener, with a client certificate naming its user upstream.
func TestUpstreamOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, ca.PEM, 0o600)
	_, cert, key := ca.Issue(t, dir, "server", 2, time.Now().Add(time.Hour), false)
	gwCert, _, _ := ca.Issue(t, dir, "gateway-1", 3, time.Now().Add(time.Hour), true)
	cfg, err := stomp.TLSConfig(stomp.TLSFiles{Cert: cert, Key: key, ClientCA: caFile})
	if err != nil {
		t.Fatal(err)
	}
	up := brokertest.Start(t, brokertest.Options{Server: stomp.Options{CertUsers: true}})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go up.Server.Serve(tls.NewListener(ln, cfg))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.PEM)
	g := startGateway(t, bridge.Options{TLS: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{gwCert}}}, ln.Addr().String())
	c := dial(t, g.addr)
	sub, err := c.Subscribe("/queue/secure", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	subscribed(t, c)
	p := dial(t, up.Addr)
	p.Send("/queue/secure", "text/plain", []byte("through TLS links"), gostomp.SendOpt.Receipt)
	if m := recv(t, sub); string(m.Body) != "through TLS links" {
		t.Fatalf("got %q", m.Body)
	}
}

// TestNoLocalThroughAGateway: a topic subscriber with activemq.noLocal on a
// gateway is not given what its own connection publishes (through the
// gateway, and back from upstream), and is given what others publish, on
// the gateway and upstream; a subscriber without it gets everything.
func TestNoLocalThroughAGateway(t *testing.T) {
	up := brokertest.Start(t, brokertest.Options{})
	g := startGateway(t, bridge.Options{}, up.Addr)
	a, b, direct := dial(t, g.addr), dial(t, g.addr), dial(t, up.Addr)
	quiet, err := a.Subscribe("/topic/chat", gostomp.AckAuto, gostomp.SubscribeOpt.Header("activemq.noLocal", "true"))
	if err != nil {
		t.Fatal(err)
	}
	all, err := b.Subscribe("/topic/chat", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	subscribed(t, a)
	subscribed(t, b)
	for _, p := range []struct {
		c    *gostomp.Conn
		body string
	}{{a, "from a"}, {b, "from b"}, {direct, "from upstream"}, {a, "forged"}} {
		opts := []func(*frame.Frame) error{gostomp.SendOpt.Receipt}
		if p.body == "forged" {
			// A client cannot pass its message off as another connection's.
			opts = append(opts, gostomp.SendOpt.Header("cairn-gateway-origin", "x:1"))
		}
		if err := p.c.Send("/topic/chat", "text/plain", []byte(p.body), opts...); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"from b", "from upstream"} {
		if m := recv(t, quiet); string(m.Body) != want {
			t.Fatalf("the noLocal subscriber got %q, want %q", m.Body, want)
		}
	}
	noMessage(t, quiet, 300*time.Millisecond)
	for _, want := range []string{"from a", "from b", "from upstream", "forged"} {
		m := recv(t, all)
		if string(m.Body) != want {
			t.Fatalf("the other subscriber got %q, want %q", m.Body, want)
		}
		if h := m.Header.Get("cairn-gateway-origin"); h != "" {
			t.Fatalf("a client was shown the gateway's origin header %q", h)
		}
	}
}
