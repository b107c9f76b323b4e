// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package clustertest starts master/standby groups of broker nodes
// (replication/node) on one journal, in the test's process, in the spirit
// of hashicorp/raft's MakeCluster: start them, find the master, kill or
// freeze it, wait for the next. Tests that must prove what a process does
// (signals, exit statuses, a frozen process waking) start `cairn serve`
// instead.
package clustertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnmq/cairn/internal/logtest"
	"github.com/cairnmq/cairn/internal/natstest"
	"github.com/cairnmq/cairn/replication/node"
)

// Config says what journal a cluster shares and how its nodes differ from
// node.NewOptions.
type Config struct {
	// Journal is node.JournalWAL (one directory, the default) or
	// node.JournalJetStream (one stream on an in-process NATS server).
	Journal string
	// LeaseTTL defaults to one second, so that takeovers are quick.
	LeaseTTL time.Duration
	// Configure, if set, adjusts each node's options before it starts.
	Configure func(i int, o *node.Options)
}

// Cluster is a group of nodes on one journal.
type Cluster struct {
	t    testing.TB
	cfg  Config
	data string // the wal's directory (wal)
	nats string // the NATS server's URL (jetstream)

	mu    sync.Mutex
	nodes []*Member
}

// Member is one node of a cluster, running until it stops.
type Member struct {
	*node.Node
	Index  int
	Log    *logtest.Buffer
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	waited atomic.Bool // a test has seen what Run returned
}

// Make starts n nodes on one journal; one of them becomes master. They
// are stopped, and their logs shown on failure, when the test ends.
func Make(t testing.TB, n int, cfg Config) *Cluster {
	t.Helper()
	if cfg.Journal == "" {
		cfg.Journal = node.JournalWAL
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = time.Second
	}
	c := &Cluster{t: t, cfg: cfg, data: t.TempDir()}
	if err := os.Chmod(c.data, 0o700); err != nil {
		t.Fatal(err)
	}
	if cfg.Journal == node.JournalJetStream {
		c.nats = natstest.StartServer(t).ClientURL()
	}
	t.Cleanup(c.shutdown)
	for range n {
		c.Add()
	}
	return c
}

// Add starts one more node on the cluster's journal.
func (c *Cluster) Add() *Member {
	c.t.Helper()
	c.mu.Lock()
	i := len(c.nodes)
	c.mu.Unlock()
	o := node.NewOptions()
	o.Listen = "127.0.0.1:0"
	o.Journal = c.cfg.Journal
	o.LeaseTTL = c.cfg.LeaseTTL
	o.Data = c.data
	if c.cfg.Journal == node.JournalJetStream {
		o.Data = filepath.Join(c.data, fmt.Sprint("node", i)) // status reports only
		o.NATS, o.Stream = c.nats, "CLUSTER"
	}
	o.ID = fmt.Sprintf("node%d", i)
	o.Broker.SnapshotEvery = 1000
	m := &Member{Index: i, Log: &logtest.Buffer{}, done: make(chan struct{})}
	o.Logger = slog.New(slog.NewTextHandler(m.Log, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", i)
	if c.cfg.Configure != nil {
		c.cfg.Configure(i, &o)
	}
	nd, err := node.New(o)
	if err != nil {
		c.t.Fatal(err)
	}
	m.Node = nd
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		m.err = nd.Run(ctx)
	}()
	c.mu.Lock()
	c.nodes = append(c.nodes, m)
	c.mu.Unlock()
	return m
}

// Nodes are the cluster's members, in the order they were started.
func (c *Cluster) Nodes() []*Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Member(nil), c.nodes...)
}

// Master waits up to timeout for a running member to be master and
// returns it; it fails the test if there is none, or more than one.
func (c *Cluster) Master(timeout time.Duration) *Member {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var masters []*Member
		for _, m := range c.Nodes() {
			if m.Running() && m.Addr() != nil {
				select {
				case <-m.Master():
					masters = append(masters, m)
				default:
				}
			}
		}
		switch {
		case len(masters) > 1:
			// A deposed master may take a moment to notice; give it one.
			if time.Now().After(deadline) {
				c.t.Fatalf("%d masters at once:\n%s", len(masters), c.Logs())
			}
		case len(masters) == 1:
			return masters[0]
		case time.Now().After(deadline):
			c.t.Fatalf("no master within %s:\n%s", timeout, c.Logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Logs is every member's log, for a failure message.
func (c *Cluster) Logs() string {
	var s string
	for _, m := range c.Nodes() {
		s += fmt.Sprintf("--- node%d (%s)\n%s", m.Index, m.Role(), m.Log.String())
	}
	return s
}

// Kill stops the member as SIGKILL would (node.Node.Kill) and waits for
// its Run to return.
func (m *Member) Kill() {
	m.Node.Kill()
	<-m.done
}

// WaitLog waits up to timeout for the member to log s.
func (m *Member) WaitLog(t testing.TB, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !m.Log.Has(s) {
		if time.Now().After(deadline) {
			t.Fatalf("node%d did not log %q within %s:\n%s", m.Index, s, timeout, m.Log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Running reports whether the member's Run has not returned.
func (m *Member) Running() bool {
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// Stop ends the member as SIGTERM would (drain, final snapshot, release)
// and returns what Run returned.
func (m *Member) Stop() error {
	m.cancel()
	return m.Wait(30 * time.Second)
}

// Wait waits up to timeout for Run to return and returns its error.
func (m *Member) Wait(timeout time.Duration) error {
	select {
	case <-m.done:
		m.waited.Store(true)
		return m.err
	case <-time.After(timeout):
		return fmt.Errorf("node%d still running after %s", m.Index, timeout)
	}
}

// Done is closed when Run has returned.
func (m *Member) Done() <-chan struct{} { return m.done }

func (c *Cluster) shutdown() {
	var wg sync.WaitGroup
	for _, m := range c.Nodes() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := m.waited.Load()
			m.cancel()
			if err := m.Wait(30 * time.Second); err != nil && !seen && !errors.Is(err, node.ErrKilled) && !errors.Is(err, node.ErrFenced) {
				c.t.Errorf("node%d: %v", m.Index, err)
			}
		}()
	}
	wg.Wait()
	if c.t.Failed() {
		c.t.Logf("cluster logs:\n%s", c.Logs())
	}
}
