// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/journal/wal"
)

func sendGroup(t *testing.T, b *core.Broker, dest, body, group, seq string) {
	t.Helper()
	d, _ := core.ParseDestination(dest)
	h := []string{core.HeaderGroupID, group}
	if seq != "" {
		h = append(h, core.HeaderGroupSeq, seq)
	}
	if err := b.Send(context.Background(), &core.Message{Destination: d, Priority: 4, Body: []byte(body), Header: h}); err != nil {
		t.Fatal(err)
	}
}

// TestExclusiveConsumer: the first exclusive consumer gets everything; when
// it goes, the next exclusive one takes over, with what it left unacked.
func TestExclusiveConsumer(t *testing.T) {
	b, stop := openOnWal(t, t.TempDir(), wal.Options{})
	defer stop()
	first, a := subscribe(t, b, "/queue/x", core.SubscribeOptions{Mode: core.AckClientIndividual, Exclusive: true})
	_, plain := subscribe(t, b, "/queue/x", core.SubscribeOptions{})
	_, next := subscribe(t, b, "/queue/x", core.SubscribeOptions{Exclusive: true})
	for i := range 5 {
		send(t, b, "/queue/x", fmt.Sprint(i), false)
	}
	for i := range 5 {
		if d := a.next(t); string(d.Msg.Body) != fmt.Sprint(i) {
			t.Fatalf("exclusive consumer got %q", d.Msg.Body)
		}
	}
	plain.none(t, 50*time.Millisecond)
	next.none(t, 0)
	first.Close() // five unacked go back, to the next exclusive consumer
	for i := range 5 {
		if d := next.next(t); string(d.Msg.Body) != fmt.Sprint(i) || !d.Redelivered {
			t.Fatalf("the next exclusive consumer got %q (redelivered %v)", d.Msg.Body, d.Redelivered)
		}
	}
	send(t, b, "/queue/x", "later", false)
	if d := next.next(t); string(d.Msg.Body) != "later" {
		t.Fatalf("got %q", d.Msg.Body)
	}
	plain.none(t, 50*time.Millisecond)
}

// TestMessageGroups: every message of a group goes to one consumer, in
// order, for thousands of groups (no 1,024 limit); JMSXGroupSeq -1 closes
// a group; a group whose consumer goes moves to another; a group waiting
// for its full consumer does not hold up other groups.
func TestMessageGroups(t *testing.T) {
	b, stop := openOnWal(t, t.TempDir(), wal.Options{})
	defer stop()
	s1, in1 := subscribe(t, b, "/queue/g", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 100000})
	_, in2 := subscribe(t, b, "/queue/g", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 100000})
	const groups = 3000
	for round := range 2 {
		for g := range groups {
			sendGroup(t, b, "/queue/g", fmt.Sprintf("g%d-%d", g, round), fmt.Sprint("g", g), "")
		}
	}
	owner := map[string]int{}
	seen := map[string]int{}
	take := func(d core.Delivery, who int) {
		g := d.Msg.Get(core.HeaderGroupID)
		if o, ok := owner[g]; ok && o != who {
			t.Fatalf("group %s went to consumers %d and %d", g, o, who)
		}
		owner[g] = who
		if want := fmt.Sprintf("%s-%d", g, seen[g]); string(d.Msg.Body) != want {
			t.Fatalf("group %s: got %q, want %q", g, d.Msg.Body, want)
		}
		seen[g]++
	}
	for n := 0; n < 2*groups; {
		select {
		case d := <-in1:
			take(d, 1)
			n++
		case d := <-in2:
			take(d, 2)
			n++
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d group messages", n, 2*groups)
		}
	}
	ones := 0
	for _, o := range owner {
		if o == 1 {
			ones++
		}
	}
	if ones == 0 || ones == groups {
		t.Fatalf("all %d groups went to one consumer", groups)
	}
	// Consumer 1 goes: its groups move to consumer 2.
	var g1 string
	for g, o := range owner {
		if o == 1 {
			g1 = g
			break
		}
	}
	s1.Close() // its unacked messages go back: to consumer 2
	sendGroup(t, b, "/queue/g", "moved", g1, "")
	for {
		d := in2.next(t)
		if string(d.Msg.Body) == "moved" {
			break
		}
	}
}

// TestGroupWaitsForItsConsumer: a group pinned to a consumer without room
// waits, and the other consumer keeps getting ungrouped messages.
func TestGroupWaitsForItsConsumer(t *testing.T) {
	b, stop := openOnWal(t, t.TempDir(), wal.Options{})
	defer stop()
	s1, in1 := subscribe(t, b, "/queue/w", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 1})
	sendGroup(t, b, "/queue/w", "a1", "A", "")
	first := in1.next(t) // group A is pinned to consumer 1, now full
	_, in2 := subscribe(t, b, "/queue/w", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 10})
	sendGroup(t, b, "/queue/w", "a2", "A", "-1")
	send(t, b, "/queue/w", "free", false)
	if d := in2.next(t); string(d.Msg.Body) != "free" {
		t.Fatalf("consumer 2 got %q, want the ungrouped message past the waiting group", d.Msg.Body)
	}
	in2.none(t, 50*time.Millisecond)
	if err := s1.Ack(context.Background(), first.Msg.Seq); err != nil {
		t.Fatal(err)
	}
	if d := in1.next(t); string(d.Msg.Body) != "a2" {
		t.Fatalf("consumer 1 got %q, want a2", d.Msg.Body)
	}
}

// SendConfirmed calls confirmed once the message is durable and queued,
// before any consumer has it; an operation on the queue that starts while
// confirmed runs sees the message (it queues behind it), and the consumer
// gets it once confirmed returns.
func TestSendConfirmed(t *testing.T) {
	l, err := wal.Open(t.TempDir(), wal.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b, err := core.Open(core.Options{Journal: l, Logger: quiet, MaintainEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, in := subscribe(t, b, "/queue/c", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 10})
	d, _ := core.ParseDestination("/queue/c")
	for i := range 3 { // the first finds the loop idle; later ones may not
		m := &core.Message{Destination: d, Persistent: true, Body: fmt.Appendf(nil, "m%d", i), Priority: 4}
		stats := make(chan core.Stats, 1)
		calls := 0
		err := b.SendConfirmed(context.Background(), []*core.Message{m}, func() {
			calls++
			if l.DurableIndex() < l.LastIndex() || l.LastIndex() == 0 {
				t.Errorf("confirmed before durable: durable %d, last %d", l.DurableIndex(), l.LastIndex())
			}
			if len(in) != 0 {
				t.Errorf("a consumer had message %d before confirmed", i)
			}
			go func() {
				s, _ := b.QueueStats("c")
				stats <- s
			}()
			time.Sleep(20 * time.Millisecond) // the stats operation queues meanwhile
		})
		if err != nil || calls != 1 {
			t.Fatalf("SendConfirmed: %v, confirmed called %d times", err, calls)
		}
		if got := string(in.next(t).Msg.Body); got != string(m.Body) {
			t.Fatalf("delivered %q, want %q", got, m.Body)
		}
		if s := <-stats; s.Depth() != i+1 {
			t.Fatalf("stats taken while confirmed ran: depth %d, want %d (the message queued first)", s.Depth(), i+1)
		}
	}
}
