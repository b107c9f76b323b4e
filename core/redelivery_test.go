// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"testing"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/journal/wal"
)

func TestMatchDestination(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"orders", "orders", true}, {"orders", "orders.eu", false},
		{"orders.*", "orders.eu", true}, {"orders.*", "orders.eu.x", false}, {"orders.*", "orders", false},
		{"orders.>", "orders.eu.x", true}, {"orders.>", "orders", false}, {">", "anything.at.all", true},
		{"*.retry", "a.retry", true}, {"*.retry", "a.b.retry", false},
	} {
		if got := core.MatchDestination(c.pattern, c.name); got != c.want {
			t.Errorf("MatchDestination(%q, %q) = %t", c.pattern, c.name, got)
		}
	}
}

// TestRedeliveryPolicy: a NACKed message comes back after the policy's
// delay, growing by its back-off; past the limit it moves, in one journal
// batch, to its dead-letter queue with headers saying where from and why;
// a restart keeps it there and the source empty. Consumer loss counts too.
func TestRedeliveryPolicy(t *testing.T) {
	dir := t.TempDir()
	opts := core.Options{Redelivery: []core.RedeliveryRule{
		{Pattern: "orders.*", Policy: core.RedeliveryPolicy{MaxRedeliveries: 2, InitialDelay: 100 * time.Millisecond, BackOff: 2, IndividualDLQ: true}},
	}}
	b, stop := openOnWalWith(t, dir, wal.Options{}, opts)
	m := send(t, b, "/queue/orders.eu", "poison", true)
	s, in := subscribe(t, b, "/queue/orders.eu", core.SubscribeOptions{Mode: core.AckClientIndividual})
	d := in.next(t)
	for i, wait := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond} {
		nacked := time.Now()
		if err := s.Nack(d.Msg.Seq); err != nil {
			t.Fatal(err)
		}
		if st, _ := b.QueueStats("orders.eu"); st.Delayed != 1 {
			t.Fatalf("after NACK %d: %+v, want it delayed", i+1, st)
		}
		d = in.next(t)
		if took := time.Since(nacked); took < wait {
			t.Fatalf("redelivery %d came %s after the NACK, before the %s delay", i+1, took, wait)
		}
		if !d.Redelivered || d.Redeliveries != uint32(i+1) {
			t.Fatalf("redelivery %d: %+v", i+1, d)
		}
	}
	if err := s.Nack(d.Msg.Seq); err != nil { // the third: over the limit of 2
		t.Fatal(err)
	}
	in.none(t, 300*time.Millisecond)
	if st, _ := b.QueueStats("orders.eu"); st.Pending+st.Delayed+st.InFlight != 0 || st.DeadLettered != 1 {
		t.Fatalf("source after the move: %+v", st)
	}
	check := func(b *core.Broker) {
		t.Helper()
		_, dl := subscribe(t, b, "/queue/DLQ.orders.eu", core.SubscribeOptions{})
		d := dl.next(t)
		if string(d.Msg.Body) != "poison" || d.Msg.Get(core.HeaderOriginalDestination) != "/queue/orders.eu" ||
			d.Msg.Get(core.HeaderOriginalMessageID) != m.ID() || d.Msg.Get(core.HeaderRedeliveries) != "3" || d.Msg.Get(core.HeaderDLQCause) == "" {
			t.Fatalf("dead letter: %q %v", d.Msg.Body, d.Msg.Header)
		}
	}
	check(b)
	stop()
	b2, stop2 := openOnWalWith(t, dir, wal.Options{}, opts)
	defer stop2()
	if st, ok := b2.QueueStats("orders.eu"); ok && st.Pending+st.Delayed != 0 {
		t.Fatalf("source after restart: %+v", st)
	}
	check(b2)

	// Another queue: the default policy (6, no delay, ActiveMQ.DLQ), and a
	// consumer that goes away counts as a give-back.
	send(t, b2, "/queue/plain", "lost", true)
	for range 7 {
		s, in := subscribe(t, b2, "/queue/plain", core.SubscribeOptions{Mode: core.AckClientIndividual})
		in.next(t)
		s.Close()
	}
	_, dl := subscribe(t, b2, "/queue/ActiveMQ.DLQ", core.SubscribeOptions{})
	if d := dl.next(t); string(d.Msg.Body) != "lost" || d.Msg.Get(core.HeaderRedeliveries) != "7" {
		t.Fatalf("default DLQ got %q %v", d.Msg.Body, d.Msg.Header)
	}
}

// TestRedeliveryDelaySurvivesRestart: a message waiting out its delay when
// the broker stops waits again after the restart, not delivered at once.
func TestRedeliveryDelaySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	opts := core.Options{Redelivery: []core.RedeliveryRule{{Pattern: ">", Policy: core.RedeliveryPolicy{MaxRedeliveries: -1, InitialDelay: 300 * time.Millisecond}}}}
	b, stop := openOnWalWith(t, dir, wal.Options{}, opts)
	send(t, b, "/queue/slow", "x", true)
	s, in := subscribe(t, b, "/queue/slow", core.SubscribeOptions{Mode: core.AckClientIndividual})
	if err := s.Nack(in.next(t).Msg.Seq); err != nil {
		t.Fatal(err)
	}
	if st, _ := b.QueueStats("slow"); st.Delayed != 1 { // QueueStats runs on the queue's loop, after the NACK
		t.Fatalf("after the NACK: %+v", st)
	}
	stop()
	started := time.Now() // the restart: the delay is waited out from here (the replay arms it)
	b2, stop2 := openOnWalWith(t, dir, wal.Options{}, opts)
	defer stop2()
	_, in2 := subscribe(t, b2, "/queue/slow", core.SubscribeOptions{})
	d := in2.next(t)
	if took := time.Since(started); took < 300*time.Millisecond || d.Redeliveries != 1 {
		t.Fatalf("after restart: delivered %s after start (delay 300ms), redeliveries %d", took, d.Redeliveries)
	}
}

func TestParseRedeliveryRule(t *testing.T) {
	r, err := core.ParseRedeliveryRule("orders.>=max:3,delay:1s,backoff:2,max-delay:30s,dlq:individual")
	want := core.RedeliveryRule{Pattern: "orders.>", Policy: core.RedeliveryPolicy{MaxRedeliveries: 3, InitialDelay: time.Second,
		BackOff: 2, MaxDelay: 30 * time.Second, DeadLetterQueue: "ActiveMQ.DLQ", IndividualDLQ: true}}
	if err != nil || r != want {
		t.Fatalf("got %+v, %v", r, err)
	}
	for _, bad := range []string{"orders", "=max:1", "q=max:x", "q=colour:red", "q=dlq:"} {
		if _, err := core.ParseRedeliveryRule(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
