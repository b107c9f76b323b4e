// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package node_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/cairnmq/cairn/internal/clustertest"
	"github.com/cairnmq/cairn/replication"
	"github.com/cairnmq/cairn/replication/node"
)

var journals = []string{node.JournalWAL, node.JournalJetStream}

func dial(t *testing.T, m *clustertest.Member) *gostomp.Conn {
	t.Helper()
	c, err := gostomp.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.MustDisconnect() })
	return c
}

// send sends n persistent messages with a receipt each.
func send(t *testing.T, m *clustertest.Member, queue, prefix string, n int) {
	t.Helper()
	c := dial(t, m)
	for i := range n {
		if err := c.Send(queue, "text/plain", []byte(fmt.Sprint(prefix, i)), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatal(err)
		}
	}
}

// take receives n messages and acknowledges each with a receipt.
func take(t *testing.T, m *clustertest.Member, queue string, n int) map[string]bool {
	t.Helper()
	c, err := gostomp.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.MustDisconnect()
	sub, err := c.Subscribe(queue, gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("activemq.prefetchSize", "1"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for range n {
		msg := <-sub.C
		if msg.Err != nil {
			t.Fatal(msg.Err)
		}
		tx, _ := c.BeginWithError()
		if err := tx.Ack(msg); err != nil {
			t.Fatal(err)
		}
		if err := tx.CommitWithReceipt(); err != nil {
			t.Fatal(err)
		}
		got[string(msg.Body)] = true
	}
	return got
}

// TestTakeoverAfterKill: of three nodes on one journal one is master; killed
// (no drain, no release), a warm standby takes over with every receipted
// message and none whose ack was confirmed, then a third after it.
func TestTakeoverAfterKill(t *testing.T) {
	for _, j := range journals {
		t.Run(j, func(t *testing.T) {
			c := clustertest.Make(t, 3, clustertest.Config{Journal: j})
			first := c.Master(20 * time.Second)
			if n := len(c.Nodes()); n != 3 {
				t.Fatalf("%d nodes", n)
			}
			send(t, first, "/queue/ha", "m", 100)
			acked := take(t, first, "/queue/ha", 30)
			for _, m := range c.Nodes() {
				if m != first {
					m.WaitLog(t, "warm standby: following the journal", 20*time.Second)
				}
			}
			first.Kill()
			if err := first.Wait(10 * time.Second); !errors.Is(err, node.ErrKilled) {
				t.Fatalf("Run after Kill: %v", err)
			}
			second := c.Master(20 * time.Second)
			rec := second.Broker().Recovery()
			if !rec.Warm {
				t.Errorf("the standby did not take over warm: %+v", rec)
			}
			if st, _ := second.Broker().QueueStats("ha"); st.Pending != 70 {
				t.Fatalf("after the takeover the queue holds %d, want 70 (100 sent, 30 acked)", st.Pending)
			}
			got := take(t, second, "/queue/ha", 70)
			for b := range got {
				if acked[b] {
					t.Errorf("%s came back after its ack was confirmed", b)
				}
			}
			send(t, second, "/queue/ha", "n", 5)
			second.Kill()
			third := c.Master(20 * time.Second)
			if st, _ := third.Broker().QueueStats("ha"); st.Pending != 5 {
				t.Fatalf("after the second takeover the queue holds %d, want 5", st.Pending)
			}
		})
	}
}

// TestStopHandsOver: a master stopped as by SIGTERM drains, snapshots and
// releases the lease; the standby takes over at once, replaying nothing.
func TestStopHandsOver(t *testing.T) {
	for _, j := range journals {
		t.Run(j, func(t *testing.T) {
			c := clustertest.Make(t, 2, clustertest.Config{Journal: j, LeaseTTL: 30 * time.Second})
			first := c.Master(20 * time.Second)
			send(t, first, "/queue/h", "m", 10)
			for _, m := range c.Nodes() {
				if m != first {
					m.WaitLog(t, "standby: waiting for the journal", 20*time.Second)
				}
			}
			start := time.Now()
			if err := first.Stop(); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if first.Role() != replication.RoleStopped {
				t.Errorf("a stopped node's role is %s", first.Role())
			}
			second := c.Master(20 * time.Second)
			// Well inside the 30s TTL: it was released, not left to expire.
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("the takeover after a release took %s", took)
			}
			if !second.Log.Has(`how=released`) {
				t.Errorf("the new master does not say the lease was released:\n%s", second.Log)
			}
			if st, _ := second.Broker().QueueStats("h"); st.Pending != 10 {
				t.Fatalf("the queue holds %d after the handover, want 10", st.Pending)
			}
		})
	}
}

// TestFreezeFences: a master whose lease renewals stop for three TTLs is
// replaced; when it wakes it finds its lease lost and Run returns
// ErrFenced. A SEND it was given after the TTL is not confirmed, and is
// not in the journal.
func TestFreezeFences(t *testing.T) {
	for _, j := range journals {
		t.Run(j, func(t *testing.T) {
			c := clustertest.Make(t, 2, clustertest.Config{Journal: j})
			first := c.Master(20 * time.Second)
			conn := dial(t, first)
			first.Freeze(3 * time.Second)
			time.Sleep(1200 * time.Millisecond) // past the 1s TTL
			err := conn.Send("/queue/f", "text/plain", []byte("late"), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true"))
			if err == nil {
				t.Fatal("a frozen master past its TTL confirmed a SEND")
			}
			var second *clustertest.Member
			for _, m := range c.Nodes() {
				if m != first {
					second = m
				}
			}
			select {
			case <-second.Master():
			case <-time.After(20 * time.Second):
				t.Fatalf("the standby did not take over:\n%s", c.Logs())
			}
			if err := first.Wait(20 * time.Second); !errors.Is(err, node.ErrFenced) {
				t.Fatalf("the frozen master's Run returned %v, want ErrFenced", err)
			}
			if first.Role() != replication.RoleFenced {
				t.Errorf("the frozen master's role is %s", first.Role())
			}
			if st, _ := second.Broker().QueueStats("f"); st.Pending != 0 {
				t.Fatalf("the new master holds %d messages the frozen one could not store", st.Pending)
			}
		})
	}
}

// TestDoNotWait: a node told not to wait returns ErrHeld while another
// holds the journal; one stopped while it waits returns nil.
func TestDoNotWait(t *testing.T) {
	c := clustertest.Make(t, 1, clustertest.Config{Configure: func(i int, o *node.Options) { o.Wait = i == 0 || i == 2 }})
	c.Master(20 * time.Second)
	second := c.Add()
	if err := second.Wait(20 * time.Second); !errors.Is(err, node.ErrHeld) {
		t.Fatalf("Run with Wait false on a held journal: %v", err)
	}
	third := c.Add()
	third.WaitLog(t, "standby: waiting for the journal", 20*time.Second)
	if err := third.Stop(); err != nil {
		t.Fatalf("a standby stopped while waiting: %v", err)
	}
}

// TestOptionsChecked: New refuses options a node cannot run with.
func TestOptionsChecked(t *testing.T) {
	o := node.NewOptions()
	o.Journal = "sqlite"
	o.Listen = ""
	_, err := node.New(o)
	if err == nil {
		t.Fatal("New took an unknown journal and no address")
	}
	for _, want := range []string{`journal "sqlite"`, "no Listen"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New's error %q does not say %q", err, want)
		}
	}
	n, err := node.New(node.NewOptions())
	if err != nil || n.Role() != replication.RoleStandby || n.Addr() != nil {
		t.Fatalf("New(NewOptions()): %v, role %s", err, n.Role())
	}
}
