// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// launchServeAt is launchServe on a given address.
func launchServeAt(t *testing.T, data, addr string, args ...string) *serveProc {
	t.Helper()
	p := launchServe(t, data, append([]string{"--listen", addr}, args...)...)
	p.addr = addr
	return p
}

// TestFailoverSoak: consecutive kill -9 failovers of a master with a warm
// standby, under continuous load from producers and consumers on the
// failover client. No receipted message is lost, no message whose ack was
// confirmed is delivered again, and every repeated delivery carries
// redelivered:true. 20 failovers (5 with -short, 200 with -tags soak;
// CAIRN_SOAK_FAILOVERS sets any other number).
func TestFailoverSoak(t *testing.T) {
	rounds := soakFailovers
	if testing.Short() {
		rounds = 5
	}
	if s := os.Getenv("CAIRN_SOAK_FAILOVERS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	data := t.TempDir()
	addrs := []string{freeAddr(t), freeAddr(t)}
	ttl := []string{"--lease-ttl", "2s"}
	procs := []*serveProc{launchServeAt(t, data, addrs[0], ttl...), nil}
	procs[0].waitLog(t, "cairn listening", 20*time.Second)
	procs[1] = launchServeAt(t, data, addrs[1], ttl...)
	procs[1].waitLog(t, "standby: waiting for the journal", 20*time.Second)

	h := startHistory(t, addrs, "/queue/soak")
	cur := 0
	for r := 1; r <= rounds; r++ {
		time.Sleep(200 * time.Millisecond) // load on this master
		master, standby := procs[cur], procs[1-cur]
		if err := master.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		master.cmd.Wait()
		took := connectWhenUp(t, standby.addr, 20*time.Second)
		receipted, seen := h.counts()
		t.Logf("failover %d: the standby on %s served %s after the kill (%d receipted, %d seen so far)", r, standby.addr, took, receipted, seen)
		procs[cur] = launchServeAt(t, data, master.addr, ttl...)
		procs[cur].waitLog(t, "standby: waiting for the journal", 20*time.Second)
		cur = 1 - cur
	}
	receipted, _ := h.counts()
	h.check(t)
	if receipted < 20*rounds {
		t.Fatalf("only %d receipted sends over %d failovers: too little load to mean anything", receipted, rounds)
	}
	t.Logf("%d failovers", rounds)
}
