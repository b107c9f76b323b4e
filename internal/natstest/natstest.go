// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package natstest starts real nats-servers in-process for tests: one
// JetStream node, or a 3-node cluster routed over loopback. Only test code
// imports it, so only test binaries link nats-server.
package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// StartServer starts one JetStream server on a free loopback port; it is
// shut down when the test ends.
func StartServer(t testing.TB) *server.Server {
	t.Helper()
	return StartServerWith(t, nil)
}

// StartServerWith is StartServer with the server's options changed by
// configure (unless nil) before it starts.
func StartServerWith(t testing.TB, configure func(*server.Options)) *server.Server {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
	if configure != nil {
		configure(opts)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// StartCluster starts three routed JetStream servers and waits for a meta
// leader. A cluster that does not come up (a port taken between FreePort
// and the listen, on a busy machine) is shut down and started again on
// other ports, three times at most.
func StartCluster(t testing.TB) []*server.Server {
	t.Helper()
	var err error
	for range 3 {
		var servers []*server.Server
		if servers, err = startCluster(t); err == nil {
			t.Cleanup(func() {
				for _, s := range servers {
					s.Shutdown()
					s.WaitForShutdown()
				}
			})
			return servers
		}
		t.Logf("nats cluster: %v; starting again", err)
	}
	t.Fatal(err)
	return nil
}

func startCluster(t testing.TB) ([]*server.Server, error) {
	ports := make([]int, 3)
	for i := range ports {
		ports[i] = FreePort(t)
	}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: "127.0.0.1:" + strconv.Itoa(p)})
	}
	var servers []*server.Server
	stop := func() {
		for _, s := range servers {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
	for i := range 3 {
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: -1, JetStream: true,
			StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "cairn", Host: "127.0.0.1", Port: ports[i]},
			Routes:  routes,
		})
		if err != nil {
			stop()
			return nil, err
		}
		go s.Start()
		servers = append(servers, s)
	}
	for _, s := range servers {
		if !s.ReadyForConnections(30 * time.Second) {
			stop()
			return nil, fmt.Errorf("server %s not ready in 30s", s.Name())
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range servers {
			if s.JetStreamIsLeader() {
				return servers, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return nil, fmt.Errorf("no JetStream meta leader in 60s")
}

// FreePort returns a loopback port nobody listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// URLs is the servers' client URLs, comma-separated, as nats.Connect takes them.
func URLs(servers ...*server.Server) string {
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	return strings.Join(urls, ",")
}

// Connect connects to servers, reconnecting forever; closed when the test ends.
func Connect(t testing.TB, servers ...*server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(URLs(servers...), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Requests counts the messages published to a subject (a JetStream API's
// requests, say), for tests of how many round trips an operation makes.
type Requests struct {
	nc  *nats.Conn
	sub *nats.Subscription
}

// CountRequests starts counting what is published to subject through the
// server nc is connected to; the count stops when the test ends.
func CountRequests(t testing.TB, nc *nats.Conn, subject string) *Requests {
	t.Helper()
	// A synchronous subscription only queues what arrives, so Count can
	// read an exact figure (a callback may still be behind when asked).
	sub, err := nc.SubscribeSync(subject)
	if err == nil {
		err = sub.SetPendingLimits(-1, -1)
	}
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	return &Requests{nc: nc, sub: sub}
}

// Count is how many were published since counting started, by nc or
// through its server. A round trip to the server first makes sure that
// everything nc published before the call has been counted.
func (r *Requests) Count(t testing.TB) int {
	t.Helper()
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	n, _, err := r.sub.Pending()
	if err != nil {
		t.Fatal(err)
	}
	return n
}
