// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package bridge

import (
	"context"
	"fmt"
	"net"

	"github.com/cairnmq/cairn/gateways/stomp"
)

// Serve runs a gateway node: g behind a STOMP listener on ln and on the
// listeners in more (TLS, say), with so's limits, until ctx ends; then it drains the local connections (their
// unacknowledged messages go back upstream) and closes g's links. It
// returns nil after a drain, or why the listener stopped. `cairn gateway`
// is New and this function behind flags.
func Serve(ctx context.Context, ln net.Listener, g *Gateway, so stomp.Options, more ...net.Listener) error {
	defer g.Close()
	if so.Logger == nil {
		so.Logger = g.opts.Logger
	}
	so.ConnectedHeaders = g.ConnectedHeaders
	srv := stomp.NewServer(g, so)
	served := make(chan error, 1+len(more))
	for _, l := range append([]net.Listener{ln}, more...) {
		go func() { served <- srv.Serve(l) }()
	}
	g.opts.Logger.Info("cairn gateway listening", "stomp", ln.Addr().String(), "upstream", g.opts.Upstream, "links", g.opts.Links)
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
