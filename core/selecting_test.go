// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/core/selector"
	"github.com/cairnmq/cairn/journal/wal"
)

func mustSelector(t *testing.T, s string) *selector.Selector {
	t.Helper()
	sel, err := selector.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

func sendWith(t *testing.T, b *core.Broker, dest, body string, prio uint8, h ...string) {
	t.Helper()
	d, _ := core.ParseDestination(dest)
	if err := b.Send(context.Background(), &core.Message{Destination: d, Priority: prio, Body: []byte(body), Header: h}); err != nil {
		t.Fatal(err)
	}
}

// TestSelectors: queue consumers get only what their selectors match; a
// message nobody wants waits without holding up the rest, and goes to the
// first consumer that wants it; topics filter per subscriber; JMS header
// names read message fields.
func TestSelectors(t *testing.T) {
	b, stop := openOnWal(t, t.TempDir(), wal.Options{})
	defer stop()
	_, eu := subscribe(t, b, "/queue/sel", core.SubscribeOptions{Selector: mustSelector(t, "region = 'eu' AND amount > 100")})
	_, us := subscribe(t, b, "/queue/sel", core.SubscribeOptions{Selector: mustSelector(t, "region = 'us'")})
	sendWith(t, b, "/queue/sel", "asia", 4, "region", "asia")
	sendWith(t, b, "/queue/sel", "eu-small", 4, "region", "eu", "amount", "50")
	sendWith(t, b, "/queue/sel", "eu-big", 4, "region", "eu", "amount", "500")
	sendWith(t, b, "/queue/sel", "us", 4, "region", "us")
	if d := eu.next(t); string(d.Msg.Body) != "eu-big" {
		t.Fatalf("eu consumer got %q", d.Msg.Body)
	}
	if d := us.next(t); string(d.Msg.Body) != "us" {
		t.Fatalf("us consumer got %q", d.Msg.Body)
	}
	eu.none(t, 50*time.Millisecond)
	us.none(t, 0)
	_, any := subscribe(t, b, "/queue/sel", core.SubscribeOptions{})
	got := map[string]bool{string(any.next(t).Msg.Body): true, string(any.next(t).Msg.Body): true}
	if !got["asia"] || !got["eu-small"] {
		t.Fatalf("the unselective consumer got %v, want the two nobody wanted", got)
	}

	_, hi := subscribe(t, b, "/topic/sel", core.SubscribeOptions{Selector: mustSelector(t, "JMSPriority >= 7")})
	_, all := subscribe(t, b, "/topic/sel", core.SubscribeOptions{})
	sendWith(t, b, "/topic/sel", "low", 2)
	sendWith(t, b, "/topic/sel", "high", 9)
	if d := hi.next(t); string(d.Msg.Body) != "high" {
		t.Fatalf("topic selector let %q through", d.Msg.Body)
	}
	if a, b := all.next(t), all.next(t); string(a.Msg.Body) != "low" || string(b.Msg.Body) != "high" {
		t.Fatalf("the plain subscriber got %q, %q", a.Msg.Body, b.Msg.Body)
	}
}
