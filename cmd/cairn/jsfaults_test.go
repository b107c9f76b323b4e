// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

//go:build jsfaults

package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
	"github.com/nats-io/nats.go"

	"github.com/cairnmq/cairn/internal/netns"
	"github.com/cairnmq/cairn/replication/node"
)

// This test does not pass yet, so it is not in the default suite (-tags
// jsfaults, `just js-faults`): see docs/JOURNAL.md, "JetStream under
// faults". It is kept as the reproducer of what fails.
//
// TestJetStreamClusterFaults: a master and a standby (each on its own data
// directory) on a three-node NATS cluster (the journal R3, nats-server's
// default sync interval, not "always"), under receipted load from two
// producers and two consumers on the failover client, through: a kill -9
// of the stream's leader; a SIGSTOP of another node for 3 s; the cluster
// cut off from both brokers for longer than the lease (the NATS nodes run
// on a host of their own, a network namespace behind a veth pair whose
// far end goes down); and the master killed while a NATS node is down,
// the standby serving within the lease TTL and a second. Afterwards every
// receipted message has been delivered, none after its ack was confirmed,
// and every repeat was marked redelivered. A master that cannot renew its
// lease within the TTL (the lease bucket's leader frozen or cut off) stops
// with status 3, and is started again as a standby, as a service manager
// would.
func TestJetStreamClusterFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-node NATS cluster (-short skips it)")
	}
	nt := netns.New(t)
	var clients, routes []string
	for i := range 3 {
		clients = append(clients, net.JoinHostPort(nt.Remote, fmt.Sprint(14222+i)))
		routes = append(routes, net.JoinHostPort("127.0.0.1", fmt.Sprint(16222+i))) // the namespace's own loopback
	}
	nodes := natsCluster(t, false, clients, routes, nt.Command)
	// The default TTL on JetStream: a shorter one fences the master at every
	// leader change of the lease bucket (TestServeOnRealNATSCluster).
	ttl := node.DefaultLeaseTTL(node.JournalJetStream)
	args := []string{"--journal", "jetstream", "--nats", natsURLs(nodes), "--stream", "FAULTS", "--replicas", "3"}
	addrs := []string{freeAddr(t), freeAddr(t)}
	datas := []string{t.TempDir(), t.TempDir()}
	procs := []*serveProc{launchServeAt(t, datas[0], addrs[0], args...), nil}
	procs[0].waitLog(t, "cairn listening", 90*time.Second)
	procs[1] = launchServeAt(t, datas[1], addrs[1], args...)
	procs[1].waitLog(t, "standby: waiting for the journal", 30*time.Second)
	// restart starts again, as a standby, any broker that has ended (a
	// master that lost its lease exits with status 3).
	restart := func() {
		for i, p := range procs {
			if p.exited() {
				p.cmd.Wait()
				t.Logf("broker %d ended (%v); started again", i, p.cmd.ProcessState)
				procs[i] = launchServeAt(t, datas[i], addrs[i], args...)
			}
		}
	}

	h := startHistory(t, addrs, "/queue/faults")
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for i, p := range procs {
			t.Logf("broker %d's log:\n%s", i, p.log())
			// What its queue holds, by the statistics request.
			if c, err := gostomp.Dial("tcp", p.addr); err == nil {
				if r, err := c.Subscribe("/temp-queue/stats", gostomp.AckAuto); err == nil {
					c.Send("/queue/ActiveMQ.Statistics.Destination.faults", "", nil, gostomp.SendOpt.Header("reply-to", "/temp-queue/stats"))
					select {
					case m := <-r.C:
						t.Logf("broker %d's queue: %s", i, m.Body)
					case <-time.After(5 * time.Second):
					}
				}
				c.Disconnect()
			}
		}
	})
	time.Sleep(time.Second)

	// The stream's leader, killed, then back.
	nc, err := nats.Connect(natsURLs(nodes))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	l := streamLeader(t, nc, nodes, "FAULTS")
	l.kill()
	t.Logf("killed the stream leader %s", l.name)
	time.Sleep(2 * time.Second)
	l.start()
	restart()
	h.progress(t, "after the leader's kill")

	// Another node frozen for 3 s.
	l = streamLeader(t, nc, nodes, "FAULTS")
	other := nodes[0]
	if other == l {
		other = nodes[1]
	}
	other.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(3 * time.Second)
	other.cmd.Process.Signal(syscall.SIGCONT)
	restart()
	h.progress(t, "after a node's SIGSTOP")

	// The cluster cut off from both brokers for twice the lease.
	nt.Cut()
	time.Sleep(2 * ttl)
	nt.Heal()
	time.Sleep(ttl)
	restart()
	h.progress(t, "after the partition")

	// The master killed while a NATS node is down: the standby serves
	// within the lease TTL and a second.
	down := nodes[2]
	down.kill()
	h.progress(t, "with a NATS node down") // its leaderships have moved
	restart()
	m := -1
	for deadline := time.Now().Add(30 * time.Second); m < 0; time.Sleep(50 * time.Millisecond) {
		for i, p := range procs {
			if c, err := gostomp.Dial("tcp", p.addr); err == nil {
				c.Disconnect()
				m = i
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no master serving within 30s")
		}
	}
	procs[m].cmd.Process.Kill()
	procs[m].cmd.Wait()
	took := time.Duration(0)
	for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		if c, err := gostomp.Dial("tcp", procs[1-m].addr); err == nil {
			c.Disconnect()
			took = time.Since(start)
			break
		}
		if time.Since(start) > 30*time.Second {
			procs[1-m].cmd.Process.Signal(syscall.SIGQUIT) // its goroutines, into its log
			time.Sleep(time.Second)
			t.Fatalf("the standby did not serve within 30s of the master's kill")
		}
	}
	t.Logf("with %s down, the master killed: the standby served %s later (lease TTL %s)", down.name, took.Round(time.Millisecond), ttl)
	if took > ttl+time.Second+time.Second {
		t.Errorf("the standby took %s to serve, want within the lease TTL and a second (%s), and a second's slack", took, ttl+time.Second)
	}
	down.start()
	restart()
	h.progress(t, "after the master's kill")

	h.check(t)
}

// progress waits until the load moves again (more SENDs receipted), up to
// 60 s, and logs where it stands.
func (h *history) progress(t *testing.T, when string) {
	t.Helper()
	before, _ := h.counts()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		now, seen := h.counts()
		if now >= before+20 {
			t.Logf("%s: %d receipted, %d seen", when, now, seen)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no SEND receipted within 60s (%d so far)", when, now)
		}
	}
}

// exited reports whether the process has ended (reaped, or a zombie
// nobody has waited for yet).
func (p *serveProc) exited() bool {
	if p.cmd.ProcessState != nil {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...: the state follows the last ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) == 0 || f[0] == "Z" || f[0] == "X"
}
