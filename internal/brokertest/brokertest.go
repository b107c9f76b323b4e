// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package brokertest runs a Cairn broker in-process for tests: a journal
// (wal unless the test brings another), the core broker and a STOMP
// listener on loopback.
package brokertest

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/gateways/stomp"
	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/wal"
)

// Options configure Start. The zero value is a broker on a new temporary
// directory, listening on a free loopback port, logging nothing.
type Options struct {
	Dir     string // the journal's directory (default: a new t.TempDir())
	Addr    string // where to listen (default 127.0.0.1:0); retried for 5 s while taken
	Journal wal.Options
	// Open, if not nil, opens the journal instead of wal.Open(Dir,
	// Journal): a JetStream log, say. Stop closes what it returns.
	Open   func(t testing.TB) journal.Log
	Core   core.Options
	Server stomp.Options
	// Wrap, if not nil, wraps the listener (to set socket options on the
	// connections it accepts, say).
	Wrap func(net.Listener) net.Listener
}

// Broker is a running broker.
type Broker struct {
	Addr   string
	Core   *core.Broker
	Log    journal.Log
	Server *stomp.Server
	done   bool
}

var quiet = slog.New(slog.DiscardHandler)

// Start starts a broker; the test's cleanup stops it (Stop) unless the
// test did.
func Start(t testing.TB, o Options) *Broker {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	for _, lg := range []**slog.Logger{&o.Journal.Logger, &o.Core.Logger, &o.Server.Logger} {
		if *lg == nil {
			*lg = quiet
		}
	}
	var l journal.Log
	if o.Open != nil {
		l = o.Open(t)
	} else {
		var err error
		if l, err = wal.Open(o.Dir, o.Journal); err != nil {
			t.Fatal(err)
		}
	}
	o.Core.Journal = l
	b, err := core.Open(o.Core)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	var ln net.Listener
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if ln, err = net.Listen("tcp", o.Addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Close()
			l.Close()
			t.Fatal(err)
		}
	}
	if o.Wrap != nil {
		ln = o.Wrap(ln)
	}
	k := &Broker{Addr: ln.Addr().String(), Core: b, Log: l, Server: stomp.NewServer(stomp.CoreBroker(b), o.Server)}
	go k.Server.Serve(ln)
	t.Cleanup(k.Stop)
	return k
}

// Stop closes the listener, draining its connections for up to 5 s, then
// the broker and its journal.
func (k *Broker) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	k.close(ctx)
}

// Crash stops the broker without draining: connections drop at once.
func (k *Broker) Crash() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	k.close(ctx)
}

func (k *Broker) close(ctx context.Context) {
	if k.done {
		return
	}
	k.done = true
	k.Server.Close(ctx)
	k.Core.Close()
	k.Log.Close()
}
