// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package stomp is Cairn's STOMP 1.0/1.1/1.2 listener, speaking the
// dialect of ActiveMQ Classic: frames in, core operations out, deliveries
// back as MESSAGE frames. It uses go-stomp's frame types, with its own
// reader (limits checked before allocating) and writer (one write per
// burst of frames, not per frame).
//
// Each connection has a reader goroutine, which runs the client's commands
// in order, and a writer goroutine, which drains the connection's outbound
// queue. Deliveries are queued without blocking the destination that makes
// them; a subscription's prefetch bounds how many wait.
package stomp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnmq/cairn/core"
)

// Options configure a Server.
type Options struct {
	Limits
	// MaxConnections bounds open connections (default 10,000). A client
	// over it gets an ERROR frame and is closed.
	MaxConnections int
	// ConnectTimeout closes a connection that sends no CONNECT in time
	// (default 10s).
	ConnectTimeout time.Duration
	// HeartBeat is the smallest interval the server sends and accepts
	// heart-beats at (default 1s); a client asking for faster gets this.
	HeartBeat time.Duration
	// HeartBeatGrace multiplies the client's send interval into the read
	// timeout (default 2: a client that promised a heart-beat every 10s is
	// dropped after 20s of silence).
	HeartBeatGrace float64
	// ServerName is sent in CONNECTED (default "Cairn").
	ServerName string
	// Logger receives connection events (default slog.Default()).
	Logger *slog.Logger
}

func (o *Options) fill() {
	o.Limits.fill()
	if o.MaxConnections <= 0 {
		o.MaxConnections = 10000
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.HeartBeat <= 0 {
		o.HeartBeat = time.Second
	}
	if o.HeartBeatGrace < 1 {
		o.HeartBeatGrace = 2
	}
	if o.ServerName == "" {
		o.ServerName = "Cairn"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Server accepts STOMP connections for a broker.
type Server struct {
	opts   Options
	broker *core.Broker

	mu       sync.Mutex
	ln       net.Listener
	sessions map[*session]struct{}
	closing  bool
	conns    atomic.Int64
	wg       sync.WaitGroup
	nextID   atomic.Uint64
	idPrefix string // "cairn-<random>-": session ids differ across servers and restarts
}

// NewServer returns a server for broker b.
func NewServer(b *core.Broker, opts Options) *Server {
	opts.fill()
	var r [4]byte
	rand.Read(r[:])
	return &Server{opts: opts, broker: b, sessions: map[*session]struct{}{}, idPrefix: "cairn-" + hex.EncodeToString(r[:]) + "-"}
}

// Serve accepts connections on ln until Close. It returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return errors.New("stomp: server closed")
	}
	s.ln = ln
	s.mu.Unlock()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait and go on.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.opts.Logger.Warn("stomp: accept", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.start(c)
	}
}

func (s *Server) start(c net.Conn) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.Close()
		return
	}
	over := len(s.sessions) >= s.opts.MaxConnections
	ss := newSession(s, c)
	if !over {
		s.sessions[ss] = struct{}{}
	}
	s.wg.Add(1)
	s.mu.Unlock()
	s.conns.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.conns.Add(-1)
		if over {
			ss.refuse(perr("too-many-connections", "the server has %d connections, its limit", s.opts.MaxConnections))
			return
		}
		ss.serve()
		s.mu.Lock()
		delete(s.sessions, ss)
		s.mu.Unlock()
	}()
}

// Addr is the listening address, once Serve has been called.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Connections is the number of open connections.
func (s *Server) Connections() int { return int(s.conns.Load()) }

// Close stops accepting and closes every connection: each client gets an
// ERROR frame (code shutting-down) after its queued frames, and its
// unacknowledged deliveries go back to their queues. It waits for the
// connections to finish, or for ctx.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	if s.ln != nil {
		s.ln.Close()
	}
	for ss := range s.sessions {
		ss.shutdown()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
