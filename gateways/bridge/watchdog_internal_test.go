// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"

	"github.com/cairnmq/cairn/gateways/stomp"
	"github.com/cairnmq/cairn/internal/brokertest"
	"github.com/cairnmq/cairn/internal/logtest"
)

// TestStalledSubscriptionIsFoundAndRepaired: upstream stops feeding one
// relayed subscription while the link stays healthy (here upstream is made
// to forget the subscription behind the gateway's back, as a broker that
// lost a consumer's credit would behave). The watchdog finds that upstream
// holds messages for it and none come, within a few canary intervals, and
// reconnects the link: the consumer gets them, and status counts the
// stall. A subscription with a selector that matches nothing upstream
// holds is left alone, and a subscription that keeps receiving is never
// judged.
func TestStalledSubscriptionIsFoundAndRepaired(t *testing.T) {
	up := brokertest.Start(t, brokertest.Options{})
	lg := &logtest.Buffer{}
	g, err := New(Options{Upstream: []string{up.Addr}, Links: 1, HeartBeat: time.Hour, CanaryEvery: 100 * time.Millisecond,
		Wait: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(lg, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := stomp.NewServer(g, stomp.Options{Logger: slog.New(slog.DiscardHandler), ServerName: "Cairn-gateway/test"})
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
		g.Close()
		if t.Failed() {
			t.Logf("gateway log:\n%s", lg)
		}
	})
	dial := func(addr string) *gostomp.Conn {
		c, err := gostomp.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Disconnect() })
		return c
	}
	c, p := dial(ln.Addr().String()), dial(up.Addr)
	sub, err := c.Subscribe("/queue/w", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("activemq.prefetchSize", "10"))
	if err != nil {
		t.Fatal(err)
	}
	picky, err := c.Subscribe("/queue/picky", gostomp.AckAuto, gostomp.SubscribeOpt.Header("selector", "kind = 'none'"))
	if err != nil {
		t.Fatal(err)
	}
	send := func(dest, body string) {
		if err := p.Send(dest, "text/plain", []byte(body), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatal(err)
		}
	}
	next := func() *gostomp.Message {
		select {
		case m := <-sub.C:
			if m.Err != nil {
				t.Fatal(m.Err)
			}
			c.Ack(m)
			return m
		case <-time.After(5 * time.Second):
			t.Fatalf("no MESSAGE within 5s; gateway log:\n%s", lg)
		}
		return nil
	}
	// A subscription that keeps receiving is not judged.
	for i := range 20 {
		send("/queue/w", fmt.Sprint("steady ", i))
		next()
		time.Sleep(10 * time.Millisecond)
	}
	send("/queue/picky", "not for it")

	// Upstream forgets the relayed subscription; the gateway does not know.
	var r *relay
	l := g.links[0]
	l.mu.Lock()
	for _, s := range l.subs {
		if rr, ok := s.(*relay); ok && rr.dest.Name == "w" {
			r = rr
		}
	}
	l.mu.Unlock()
	l.send(frame.New(frame.UNSUBSCRIBE, frame.Id, r.id))
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if st, _ := up.Core.QueueStats("w"); st.Consumers == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("upstream kept the subscription")
		}
	}
	stalled := time.Now()
	for i := range 5 {
		send("/queue/w", fmt.Sprint("after ", i))
	}
	for i := range 5 {
		if m := next(); string(m.Body) != fmt.Sprint("after ", i) {
			t.Fatalf("after the repair: %q", m.Body)
		}
	}
	found := time.Since(stalled)
	t.Logf("the stalled subscription was repaired %s after upstream stopped feeding it (canary every 100ms)", found.Round(time.Millisecond))
	if !lg.Has("a subscription is stalled") {
		t.Fatalf("the gateway did not log the stall:\n%s", lg)
	}
	st := g.Status()
	if len(st) != 1 || st[0].SubscriptionStalls != 1 || st[0].Stalls != 0 || st[0].Connects != 2 {
		t.Fatalf("status after the repair: %+v (want one subscription stall, no link stall, the link connected again once)", st)
	}
	select {
	case m := <-picky.C:
		t.Fatalf("the selector's subscription got %q", m.Body)
	case <-time.After(300 * time.Millisecond):
	}
	if n := lg.Count("a subscription is stalled"); n != 1 {
		t.Fatalf("%d stalls logged, want 1 (the selector's subscription is not judged):\n%s", n, lg)
	}
}
