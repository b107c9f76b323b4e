// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package bridge

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/cairnmq/cairn/gateways/stomp"
)

// Listeners are what a gateway node serves: STOMP over TCP (or TLS) on
// each of STOMP, STOMP over WebSocket on each of WebSocket.
type Listeners struct {
	STOMP, WebSocket []net.Listener
}

// Serve runs a gateway node: g behind the STOMP listener on lns, with so's
// limits, until ctx ends; then it drains the local connections (their
// unacknowledged messages go back upstream) and closes g's links. It
// returns nil after a drain, or why the listener stopped. `cairn gateway`
// is New and this function behind flags.
func Serve(ctx context.Context, g *Gateway, so stomp.Options, lns Listeners) error {
	defer g.Close()
	if so.Logger == nil {
		so.Logger = g.opts.Logger
	}
	so.ConnectedHeaders = g.ConnectedHeaders
	srv := stomp.NewServer(g, so)
	served := make(chan error, len(lns.STOMP)+len(lns.WebSocket))
	var addrs []string
	for _, l := range lns.STOMP {
		addrs = append(addrs, l.Addr().String())
		go func() { served <- srv.Serve(l) }()
	}
	for _, l := range lns.WebSocket {
		addrs = append(addrs, "ws://"+l.Addr().String())
		go func() { served <- srv.ServeWebSocket(l) }()
	}
	g.opts.Logger.Info("cairn gateway listening", "stomp", strings.Join(addrs, ","), "upstream", g.opts.Upstream, "links", g.opts.Links)
	select {
	case err := <-served:
		return fmt.Errorf("stomp listener: %w", err)
	case <-g.Fatal():
		closeNow(srv)
		return g.Err()
	case <-ctx.Done():
	}
	g.opts.Logger.Info("draining: closing connections", "cause", context.Cause(ctx))
	if err := srv.Close(context.Background()); err != nil {
		g.opts.Logger.Warn("drain", "err", err)
	}
	g.opts.Logger.Info("stopped")
	return nil
}

// closeNow closes every connection without waiting for any to drain.
func closeNow(srv *stomp.Server) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	srv.Close(ctx)
}
