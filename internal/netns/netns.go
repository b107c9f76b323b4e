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
	"path/filepath"
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

// LAN is several namespaces ("hosts") on one bridge in the test's
// namespace, each reachable from the test at Addr(name), and each able to
// reach the others by name (/etc/netns/NAME/hosts, which ip netns exec
// puts over /etc/hosts).
type LAN struct {
	t      testing.TB
	bridge string
	hosts  map[string]*lanHost
}

type lanHost struct {
	ns, addr, veth string
}

// NewLAN makes a namespace per name, all on one bridge in 10.208.N.0/24
// (the test's own end is .254); the test's cleanup removes them.
func NewLAN(t testing.TB, names ...string) *LAN {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		missing(t, "iproute2's ip", err)
	}
	if os.Geteuid() != 0 {
		missing(t, "root (network namespaces need CAP_NET_ADMIN)", fmt.Errorf("euid %d", os.Geteuid()))
	}
	n := serial.Add(1) % 250
	id := fmt.Sprintf("%d%d", os.Getpid()%10000, n)
	l := &LAN{t: t, bridge: "cb" + id, hosts: map[string]*lanHost{}}
	t.Cleanup(l.remove)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			if len(args) > 1 && args[0] == "link" && args[1] == "add" && len(l.hosts) == 0 {
				missing(t, "network namespaces and bridges", fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out))
			}
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("link", "add", l.bridge, "type", "bridge")
	ip("addr", "add", fmt.Sprintf("10.208.%d.254/24", n), "dev", l.bridge)
	ip("link", "set", l.bridge, "up")
	var hosts strings.Builder
	hosts.WriteString("127.0.0.1 localhost\n")
	for i, name := range names {
		h := &lanHost{ns: fmt.Sprintf("cairn-l%s-%d", id, i), addr: fmt.Sprintf("10.208.%d.%d", n, i+1), veth: fmt.Sprintf("cl%s%da", id, i)}
		l.hosts[name] = h
		peer := fmt.Sprintf("cl%s%db", id, i)
		ip("netns", "add", h.ns)
		ip("link", "add", h.veth, "type", "veth", "peer", "name", peer)
		ip("link", "set", h.veth, "master", l.bridge)
		ip("link", "set", h.veth, "up")
		ip("link", "set", peer, "netns", h.ns)
		ip("netns", "exec", h.ns, "ip", "addr", "add", h.addr+"/24", "dev", peer)
		ip("netns", "exec", h.ns, "ip", "link", "set", peer, "up")
		ip("netns", "exec", h.ns, "ip", "link", "set", "lo", "up")
		fmt.Fprintf(&hosts, "%s %s\n", h.addr, name)
	}
	for _, h := range l.hosts {
		dir := filepath.Join("/etc/netns", h.ns)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(hosts.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// Addr is host name's address.
func (l *LAN) Addr(name string) string { return l.hosts[name].addr }

// Command is a command to run on host name.
func (l *LAN) Command(host, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", l.hosts[host].ns, name}, args...)...)
}

func (l *LAN) remove() {
	for _, h := range l.hosts {
		exec.Command("ip", "link", "del", h.veth).Run()
		exec.Command("ip", "netns", "del", h.ns).Run()
		os.RemoveAll(filepath.Join("/etc/netns", h.ns))
	}
	exec.Command("ip", "link", "del", l.bridge).Run()
}
