// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/journal/memlog"
)

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
	}
}

// A topic message held by a thousand subscribers is in memory once, and
// counts once; when they go, nothing stays counted.
func TestTopicMessageCountsOnce(t *testing.T) {
	b, _ := open(t, memlog.NewStore(1<<20), core.Options{MemoryLimit: 64 << 20})
	var subs []*core.Subscription
	var inboxes []inbox
	for range 1000 {
		d, _ := core.ParseDestination("/topic/wide")
		in := make(inbox, 16)
		s, err := b.Subscribe(d, core.SubscribeOptions{Mode: core.AckClient, Prefetch: 100}, in)
		if err != nil {
			t.Fatal(err)
		}
		subs, inboxes = append(subs, s), append(inboxes, in)
	}
	publish(t, b, "wide", 10, 1000)
	waitFor(t, "every subscriber has its 10", func() bool { return len(inboxes[len(inboxes)-1]) == 10 })
	size := int64((&core.Message{Body: make([]byte, 1000)}).Size())
	if got := b.Memory(); got.Topics != 10*size || got.Messages != 10*size {
		t.Fatalf("1,000 subscribers holding the same 10 messages of %d bytes: memory %+v, want 10 messages counted once", size, got)
	}
	// Half of them acknowledge (cumulatively), half go away unacknowledged.
	for i, s := range subs {
		if i%2 == 0 {
			var last core.Delivery
			for range 10 {
				last = <-inboxes[i]
			}
			if err := s.Ack(context.Background(), last.Msg.Seq); err != nil {
				t.Fatal(err)
			}
		} else {
			s.Close()
		}
	}
	waitFor(t, "nothing held", func() bool { m := b.Memory(); return m.Topics == 0 && m.Messages == 0 })
}

// While topic subscribers that stopped reading hold what topics may, the
// topics stay within TopicMemoryLimit: those subscribers lose messages
// (counted), and the ones that keep up lose none. Before topics were
// counted, each stalled subscriber held its TopicBacklogBytes twice over,
// whatever the limit.
func TestTopicsKeepToTheirShare(t *testing.T) {
	const topics, perTopic, bodySize = 8, 1000, 4 << 10
	b, _ := open(t, memlog.NewStore(1<<20), core.Options{MemoryLimit: 32 << 20, TopicBacklog: 32, TopicPublishWait: 10 * time.Millisecond})
	lim := b.Memory().TopicLimit
	if lim != 8<<20 {
		t.Fatalf("TopicMemoryLimit %d, want a quarter of the 32 MiB memory limit", lim)
	}
	var stalled []*core.Subscription
	var kept sync.WaitGroup
	var keptLost, keptGot atomic.Int64
	ctx := context.Background()
	for i := range topics {
		dest := fmt.Sprintf("/topic/t%d", i)
		s, _ := subscribe(t, b, dest, core.SubscribeOptions{Mode: core.AckClient, Prefetch: 100000})
		stalled = append(stalled, s)
		h, in := subscribe(t, b, dest, core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 10})
		kept.Add(1)
		go func() {
			defer kept.Done()
			for range perTopic {
				d := in.next(t)
				if err := h.Ack(ctx, d.Msg.Seq); err != nil {
					t.Error(err)
					return
				}
				keptGot.Add(1)
			}
			keptLost.Add(int64(h.Dropped()))
		}()
	}
	var peak atomic.Int64
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Microsecond):
			}
			if m := b.Memory().Topics; m > peak.Load() {
				peak.Store(m)
			}
		}
	}()
	for range perTopic {
		for i := range topics {
			publish(t, b, fmt.Sprintf("t%d", i), 1, bodySize)
		}
	}
	kept.Wait()
	close(done)
	size := int64((&core.Message{Body: make([]byte, bodySize)}).Size())
	if p := peak.Load(); p > lim+2*topics*size {
		t.Errorf("topics held %d bytes at their peak, over their %d limit and one message for each of the %d subscribers", p, lim, 2*topics)
	}
	var lost uint64
	for _, s := range stalled {
		lost += s.Dropped()
	}
	if lost == 0 {
		t.Errorf("stalled subscribers lost nothing of %d MiB sent past an %d MiB topic limit", topics*perTopic*bodySize>>20, lim>>20)
	}
	if keptLost.Load() != 0 || keptGot.Load() != topics*perTopic {
		t.Errorf("subscribers that kept up got %d of %d and lost %d", keptGot.Load(), topics*perTopic, keptLost.Load())
	}
	t.Logf("peak %d KiB of %d KiB; stalled subscribers lost %d of %d", peak.Load()>>10, lim>>10, lost, topics*perTopic)
	for _, s := range stalled {
		s.Close()
	}
	waitFor(t, "nothing held once they are gone", func() bool { m := b.Memory(); return m.Topics == 0 && m.Messages == 0 })
	var counted uint64
	for _, ts := range b.Topics() {
		counted += ts.Dropped
	}
	if counted != lost {
		t.Errorf("the topics count %d lost, their subscribers lost %d", counted, lost)
	}
}

// A queue consumer that stopped reading with credit left is not given
// paged messages past the memory limit: the queue reads back at most
// readBackFloor (1 MiB) beyond it while nothing waits in memory. Before,
// it read back one message at a time for as long as the consumer had
// credit, past any limit.
func TestStalledQueueConsumerKeepsToTheLimit(t *testing.T) {
	const n, bodySize = 2000, 4 << 10
	b, _ := open(t, memlog.NewStore(64<<20), core.Options{MemoryLimit: 1 << 20})
	_, in := subscribe(t, b, "/queue/deep", core.SubscribeOptions{Mode: core.AckClientIndividual, Prefetch: 100000})
	for i := range n {
		send(t, b, "/queue/deep", fmt.Sprintf("%0*d", bodySize, i), true)
	}
	size := int64((&core.Message{Body: make([]byte, bodySize)}).Size())
	// Let the queue read back all it will.
	var last int
	waitFor(t, "deliveries settle", func() bool {
		time.Sleep(50 * time.Millisecond)
		now := len(in)
		settled := now == last
		last = now
		return settled
	})
	if got := int64(len(in)) * size; got > 1<<20+1<<20+size {
		t.Fatalf("a consumer that reads nothing was given %d messages (%d KiB) at a 1 MiB memory limit", len(in), got>>10)
	}
	if m := b.Memory(); m.Messages > 2<<20+size {
		t.Fatalf("memory %+v, over the 1 MiB limit and the 1 MiB read-back floor", m)
	}
	if st, _ := b.QueueStats("deep"); st.Paged == 0 {
		t.Fatalf("nothing paged: %+v", st)
	}
}
