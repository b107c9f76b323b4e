// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/journal/memlog"
	"github.com/cairnmq/cairn/journal/wal"
)

func subscribeDurable(t *testing.T, b *core.Broker, client, name, topic string) (*core.Subscription, inbox, error) {
	t.Helper()
	d, _ := core.ParseDestination(topic)
	in := make(inbox, 1000)
	s, err := b.SubscribeDurable(context.Background(), client, name, d, core.SubscribeOptions{Mode: core.AckClientIndividual}, in)
	return s, in, err
}

// TestDurableSubscription: messages published while the subscriber is
// away are kept, across a restart and a snapshot, and delivered when it
// returns; one subscriber at a time; unsubscribing removes it and what it
// kept.
func TestDurableSubscription(t *testing.T) {
	dir := t.TempDir()
	b, stop := openOnWal(t, dir, wal.Options{})
	s, in, err := subscribeDurable(t, b, "app", "orders", "/topic/t")
	if err != nil {
		t.Fatal(err)
	}
	send(t, b, "/topic/t", "while here", true)
	d := in.next(t)
	if string(d.Msg.Body) != "while here" {
		t.Fatalf("got %q", d.Msg.Body)
	}
	s.Ack(context.Background(), d.Msg.Seq)
	if _, _, err := subscribeDurable(t, b, "app", "orders", "/topic/t"); !errors.Is(err, core.ErrDurableInUse) {
		t.Fatalf("a second subscriber: %v", err)
	}
	s.Close()
	for i := range 3 {
		send(t, b, "/topic/t", fmt.Sprint("away ", i), true)
	}
	if _, err := b.Maintain(true); err != nil { // the snapshot holds the subscription
		t.Fatal(err)
	}
	send(t, b, "/topic/t", "away 3", true)
	stop()

	b, stop = openOnWal(t, dir, wal.Options{})
	if ds := b.Durables(); len(ds) != 1 || ds[0].Topic != "t" || ds[0].Active || ds[0].Stats.Pending != 4 {
		t.Fatalf("durables after restart: %+v", ds)
	}
	s, in, err = subscribeDurable(t, b, "app", "orders", "/topic/t")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		d := in.next(t)
		if string(d.Msg.Body) != fmt.Sprint("away ", i) {
			t.Fatalf("kept message %d is %q", i, d.Msg.Body)
		}
		s.Ack(context.Background(), d.Msg.Seq)
	}
	s.Close()
	if err := b.UnsubscribeDurable(context.Background(), "app", "orders"); err != nil {
		t.Fatal(err)
	}
	send(t, b, "/topic/t", "nobody's", true)
	stop()
	b, stop = openOnWal(t, dir, wal.Options{})
	defer stop()
	if ds := b.Durables(); len(ds) != 0 {
		t.Fatalf("after unsubscribe and restart: %+v", ds)
	}
	_, in, err = subscribeDurable(t, b, "app", "orders", "/topic/t")
	if err != nil {
		t.Fatal(err)
	}
	in.none(t, 50*time.Millisecond)
	if _, err := core.ParseDestination("/queue/$durable:x:y"); err == nil {
		t.Fatal("a client may name a durable subscription's queue")
	}
}

// TestDurableOfflineTimeout: a subscription offline for too long is removed.
func TestDurableOfflineTimeout(t *testing.T) {
	b, stop := openOnWalWith(t, t.TempDir(), wal.Options{}, core.Options{DurableOfflineTimeout: 50 * time.Millisecond, ExpirySweep: 10 * time.Millisecond})
	defer stop()
	s, _, err := subscribeDurable(t, b, "app", "x", "/topic/o")
	if err != nil {
		t.Fatal(err)
	}
	send(t, b, "/topic/o", "kept", true)
	time.Sleep(100 * time.Millisecond)
	if len(b.Durables()) != 1 {
		t.Fatal("an active subscription was removed")
	}
	s.Close()
	for deadline := time.Now().Add(5 * time.Second); len(b.Durables()) != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still there: %+v", b.Durables())
		}
	}
}

// TestDurableWildcard: a durable subscription on a wildcard topic keeps
// what is published to the topics it matches.
func TestDurableWildcard(t *testing.T) {
	b, stop := openOnWal(t, t.TempDir(), wal.Options{})
	defer stop()
	s, _, err := subscribeDurable(t, b, "app", "w", "/topic/x.>")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	send(t, b, "/topic/x.a", "a", true)
	send(t, b, "/topic/y.a", "not", true)
	send(t, b, "/topic/x.b.c", "bc", true)
	_, in, err := subscribeDurable(t, b, "app", "w", "/topic/x.>")
	if err != nil {
		t.Fatal(err)
	}
	if a, bc := in.next(t), in.next(t); string(a.Msg.Body) != "a" || string(bc.Msg.Body) != "bc" {
		t.Fatalf("kept %q, %q", a.Msg.Body, bc.Msg.Body)
	}
	in.none(t, 50*time.Millisecond)
}

// TestDurableSelector: a durable subscription keeps only what its selector
// matches, across a restart; another selector recreates it.
func TestDurableSelector(t *testing.T) {
	dir := t.TempDir()
	b, stop := openOnWal(t, dir, wal.Options{})
	d, _ := core.ParseDestination("/topic/ds")
	in := make(inbox, 100)
	s, err := b.SubscribeDurable(context.Background(), "app", "big", d,
		core.SubscribeOptions{Selector: mustSelector(t, "amount > 100")}, in)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	publish := func(b *core.Broker, body, amount string) {
		t.Helper()
		m := &core.Message{Destination: d, Persistent: true, Priority: 4, Body: []byte(body), Header: []string{"amount", amount}}
		if err := b.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	publish(b, "small", "5")
	publish(b, "big", "500")
	if ds := b.Durables(); ds[0].Stats.Pending != 1 {
		t.Fatalf("kept %d messages, want only the one the selector matches", ds[0].Stats.Pending)
	}
	stop()
	b, stop = openOnWal(t, dir, wal.Options{})
	defer stop()
	publish(b, "small again", "6")
	s, err = b.SubscribeDurable(context.Background(), "app", "big", d,
		core.SubscribeOptions{Selector: mustSelector(t, "amount > 100")}, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := in.next(t); string(got.Msg.Body) != "big" {
		t.Fatalf("got %q", got.Msg.Body)
	}
	in.none(t, 50*time.Millisecond)
	s.Close()
	// A new selector: a new subscription, with nothing kept from the old.
	if _, err := b.SubscribeDurable(context.Background(), "app", "big", d,
		core.SubscribeOptions{Selector: mustSelector(t, "amount < 100")}, in); err != nil {
		t.Fatal(err)
	}
	in.none(t, 50*time.Millisecond)
}

// TestDurableOwnedByItsUser: a durable subscription made by a user is that
// user's: another user of the same client-id can neither subscribe to it
// nor remove it, across a restart from the journal and one from a
// snapshot; one made without a user is anyone's.
func TestDurableOwnedByItsUser(t *testing.T) {
	store := memlog.NewStore(1 << 20)
	b, stop := open(t, store, core.Options{})
	ctx := context.Background()
	topic := core.Destination{Kind: core.Topic, Name: "invoices"}
	as := func(b *core.Broker, user string) error {
		s, err := b.SubscribeDurable(ctx, "billing", "all", topic, core.SubscribeOptions{Owner: user}, make(inbox, 10))
		if err == nil {
			s.Close()
		}
		return err
	}
	if err := as(b, "alice"); err != nil {
		t.Fatal(err)
	}
	check := func(b *core.Broker, when string) {
		t.Helper()
		if err := as(b, "bob"); !errors.Is(err, core.ErrDurableOwned) {
			t.Fatalf("%s: bob subscribed to alice's durable: %v", when, err)
		}
		if err := b.UnsubscribeDurableAs(ctx, "billing", "all", "bob"); !errors.Is(err, core.ErrDurableOwned) {
			t.Fatalf("%s: bob removed alice's durable: %v", when, err)
		}
		if err := as(b, "alice"); err != nil {
			t.Fatalf("%s: alice: %v", when, err)
		}
	}
	check(b, "live")
	stop()
	b, stop = open(t, store, core.Options{})
	check(b, "after a restart from the journal")
	if _, err := b.Maintain(true); err != nil {
		t.Fatal(err)
	}
	stop()
	b, _ = open(t, store, core.Options{})
	check(b, "after a restart from a snapshot")
	if err := b.UnsubscribeDurableAs(ctx, "billing", "all", "alice"); err != nil {
		t.Fatal(err)
	}
	// Made without a user: anyone's.
	if err := as(b, ""); err != nil {
		t.Fatal(err)
	}
	if err := as(b, "bob"); err != nil {
		t.Fatalf("bob on a durable made without a user: %v", err)
	}
}
