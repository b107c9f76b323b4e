// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"
)

var (
	natsOnce  sync.Once
	natsBin   string
	natsBuild error
)

// natsServer builds nats-server from the module go.mod pins (v2.15.2),
// once per test run, beside the cairn binary.
func natsServer(t *testing.T) string {
	t.Helper()
	natsOnce.Do(func() {
		natsBin = filepath.Join(filepath.Dir(binary(t)), "nats-server")
		if out, err := exec.Command("go", "build", "-o", natsBin, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
			natsBuild = fmt.Errorf("build nats-server: %v\n%s", err, out)
		}
	})
	if natsBuild != nil {
		t.Fatal(natsBuild)
	}
	return natsBin
}

// natsNode is one nats-server process of a cluster.
type natsNode struct {
	t                 *testing.T
	cmd               *exec.Cmd
	name, client, log string
	conf              string
	wrap              func(string, ...string) *exec.Cmd
}

// start runs the node (again, on the same store, after a kill).
func (n *natsNode) start() {
	n.t.Helper()
	n.cmd = n.wrap(natsServer(n.t), "-c", n.conf, "-l", n.log)
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
}

// kill ends the node with SIGKILL and waits for it.
func (n *natsNode) kill() {
	n.cmd.Process.Signal(syscall.SIGCONT)
	n.cmd.Process.Kill()
	n.cmd.Wait()
}

// startNATSCluster runs three nats-server processes with JetStream,
// routed to one another on loopback, each with its own store.
func startNATSCluster(t *testing.T, syncAlways bool) []*natsNode {
	t.Helper()
	var clients, routes []string
	for range 3 {
		clients, routes = append(clients, freeAddr(t)), append(routes, freeAddr(t))
	}
	return natsCluster(t, syncAlways, clients, routes, exec.Command)
}

// natsCluster runs three nats-server processes on the client and route
// addresses given, each started by wrap (exec.Command, or one that runs it
// in a network namespace).
func natsCluster(t *testing.T, syncAlways bool, clients, routes []string, wrap func(string, ...string) *exec.Cmd) []*natsNode {
	t.Helper()
	dir := t.TempDir()
	var nodes []*natsNode
	for i := range 3 {
		var peers []string
		for j, r := range routes {
			if j != i {
				peers = append(peers, "nats-route://"+r)
			}
		}
		host, port, _ := net.SplitHostPort(clients[i])
		rhost, rport, _ := net.SplitHostPort(routes[i])
		sync := ""
		if syncAlways {
			sync = "sync_interval: always\n"
		}
		conf := fmt.Sprintf("server_name: n%d\nhost: %s\nport: %s\njetstream {\n  store_dir: %q\n  %s}\ncluster {\n  name: cairn\n  host: %s\n  port: %s\n  routes: [%s]\n}\n",
			i, host, port, filepath.Join(dir, fmt.Sprint("store", i)), sync, rhost, rport, strings.Join(peers, ", "))
		cf := filepath.Join(dir, fmt.Sprintf("n%d.conf", i))
		os.WriteFile(cf, []byte(conf), 0o600)
		n := &natsNode{t: t, name: fmt.Sprint("n", i), client: clients[i], log: filepath.Join(dir, fmt.Sprintf("n%d.log", i)), conf: cf, wrap: wrap}
		n.start()
		t.Cleanup(func() {
			if n.cmd.ProcessState == nil {
				n.kill()
			}
		})
		nodes = append(nodes, n)
	}
	return nodes
}

// streamLeader is the node that leads the stream now, waiting up to 30 s
// for the cluster to have one.
func streamLeader(t *testing.T, nc *nats.Conn, nodes []*natsNode, stream string) *natsNode {
	t.Helper()
	js, err := njs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := js.Stream(ctx, stream)
		cancel()
		if err != nil || s.CachedInfo().Cluster == nil {
			continue
		}
		for _, n := range nodes {
			if n.name == s.CachedInfo().Cluster.Leader {
				return n
			}
		}
	}
	t.Fatalf("stream %s: no leader within 30s", stream)
	return nil
}

func natsURLs(nodes []*natsNode) string {
	var u []string
	for _, n := range nodes {
		u = append(u, "nats://"+n.client)
	}
	return strings.Join(u, ",")
}

// TestServeOnRealNATSCluster: cairn serve on a three-node cluster of real
// nats-server processes (built from the pinned module), the journal
// replicated three ways, with sync_interval always. SIGKILL, under
// receipted load, of the nats-server that leads the lease bucket (the worst
// node to lose: no renewal lands until the others elect a leader, 4-9 s):
// the master keeps its lease at the default TTL, the SENDs go on (the
// stream keeps a quorum), and every receipted message is delivered once.
func TestServeOnRealNATSCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-node NATS cluster (-short skips it)")
	}
	nodes := startNATSCluster(t, true)
	p := launchServe(t, t.TempDir(), "--journal", "jetstream", "--nats", natsURLs(nodes), "--stream", "REAL3", "--replicas", "3")
	// The cluster forms and elects a meta leader first: the broker retries until it can.
	p.waitLog(t, "cairn listening", 90*time.Second)
	nc, err := nats.Connect(natsURLs(nodes))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	victim := streamLeader(t, nc, nodes, "KV_CAIRN_LEASES")
	c, err := gostomp.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	const total = 300
	for i := range total {
		if i == total/3 {
			t.Logf("killing %s, the lease bucket's leader", victim.name)
			if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Send("/queue/real", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatalf("SEND %d with one of three nats-servers killed: %v\n%s", i, err, p.log())
		}
	}
	got := drain(t, p.addr, "/queue/real")
	for i := range total {
		if n := got[fmt.Sprint(i)]; n != 1 {
			t.Fatalf("message %d delivered %d times", i, n)
		}
	}
}
