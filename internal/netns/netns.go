// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package netns makes a network a test can cut: a network namespace of
// its own (a second "host") joined to the test's namespace by a veth pair,
// with an address at each end. A process started in it (Command) is
// reached at Remote; the test's side is Local. Cut stops the pair's
// traffic without closing anything (the far end's link goes down, so
// packets are dropped and TCP connections on both sides stay open,
// retransmitting, as across a failed switch); Heal brings it back and the
// connections carry on.
//
// It needs root (CAP_NET_ADMIN) and iproute2's ip: without them a test
// skips, or fails under CAIRN_REQUIRE_NETNS.
package netns

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

// Net is one namespace joined to the test's by a veth pair.
type Net struct {
	Name          string // the namespace
	Local, Remote string // the addresses of the test's end and the namespace's end
	local, remote string // the veth ends' names
	t             testing.TB
}

var serial atomic.Uint32

// New makes a namespace and its veth pair, addressed in 10.207.N.0/30; the
// test's cleanup removes them (and kills what Command started in it, if
// the test did not).
func New(t testing.TB) *Net {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		missing(t, "iproute2's ip", err)
	}
	if os.Geteuid() != 0 {
		missing(t, "root (network namespaces need CAP_NET_ADMIN)", fmt.Errorf("euid %d", os.Geteuid()))
	}
	n := serial.Add(1) % 250
	id := fmt.Sprintf("%d%d", os.Getpid()%10000, n)
	nt := &Net{Name: "cairn-t" + id, local: "ct" + id + "a", remote: "ct" + id + "b", t: t,
		Local: fmt.Sprintf("10.207.%d.1", n), Remote: fmt.Sprintf("10.207.%d.2", n)}
	steps := [][]string{
		{"netns", "add", nt.Name},
		{"link", "add", nt.local, "type", "veth", "peer", "name", nt.remote},
		{"link", "set", nt.remote, "netns", nt.Name},
		{"addr", "add", nt.Local + "/30", "dev", nt.local},
		{"link", "set", nt.local, "up"},
		{"netns", "exec", nt.Name, "ip", "addr", "add", nt.Remote + "/30", "dev", nt.remote},
		{"netns", "exec", nt.Name, "ip", "link", "set", nt.remote, "up"},
		{"netns", "exec", nt.Name, "ip", "link", "set", "lo", "up"},
	}
	t.Cleanup(nt.remove)
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			if len(s) > 1 && s[0] == "netns" && s[1] == "add" {
				missing(t, "network namespaces", fmt.Errorf("ip %s: %v: %s", strings.Join(s, " "), err, out))
			}
			t.Fatalf("ip %s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	return nt
}

// Command is name with args, to be run in the namespace.
func (nt *Net) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", nt.Name, name}, args...)...)
}

// Cut stops all traffic between the namespace and the test's side.
func (nt *Net) Cut() { nt.ip("netns", "exec", nt.Name, "ip", "link", "set", nt.remote, "down") }

// Heal lets it flow again.
func (nt *Net) Heal() { nt.ip("netns", "exec", nt.Name, "ip", "link", "set", nt.remote, "up") }

func (nt *Net) ip(args ...string) {
	nt.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		nt.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// remove deletes the pair and the namespace. Processes the test started in
// it are the test's to end (by their PIDs); deleting the namespace does
// not kill them.
func (nt *Net) remove() {
	exec.Command("ip", "link", "del", nt.local).Run()
	exec.Command("ip", "netns", "del", nt.Name).Run()
}

func missing(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CAIRN_REQUIRE_NETNS") != "" {
		t.Fatalf("%s: %v", what, err)
	}
	t.Skipf("%s not available (%v): the partition test is skipped", what, err)
}
