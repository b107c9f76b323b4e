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
//
// The listener serves a Broker (broker.go): core's, through CoreBroker, or
// the gateway tier's. Its files: server.go accepts connections and bounds
// them; session.go is one connection and its reader loop; writer.go the
// writer role, the only code that takes a session's output lock; one file
// per STOMP command or two (connect.go, send.go, subscribe.go, ack.go,
// tx.go); wire.go reads and escapes frames; codes.go lists every ERROR
// code; budget.go bounds the memory of partly read frames.
package stomp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/cairnmq/cairn/gateways/auth"
)

// Options configure a Server.
type Options struct {
	Limits
	// MaxConnections bounds connected clients: those whose CONNECT was
	// answered (default 10,000). A CONNECT over it gets an ERROR frame
	// (code too-many-connections) and the connection is closed.
	MaxConnections int
	// MaxUnconnected bounds connections that have not finished CONNECT
	// (default 1,000), apart from MaxConnections, so that sockets which
	// never send a CONNECT cannot crowd out clients; one address may hold a
	// tenth of it. A socket over either is answered with an ERROR and
	// closed at once.
	MaxUnconnected int
	// MaxPerAddress bounds the connections, connected or not, from one
	// source address (default 1,000; negative: no limit).
	MaxPerAddress int
	// IdleTimeout closes a connected client that negotiated no heart-beat
	// and sent nothing for this long (default 0: never, as ActiveMQ).
	IdleTimeout time.Duration
	// FrameTimeout bounds the time a client takes to send one frame, from
	// its first byte to its last (default 30s; at least the client's
	// heart-beat read timeout): a frame sent a byte at a time, or stalled
	// part way, gets an ERROR (code frame-timeout).
	FrameTimeout time.Duration
	// ReadMemory bounds the bytes of partly read frames across all
	// connections, above the first 4 KiB of each (default 256 MiB). A body
	// waits for room, within FrameTimeout, and is never allocated past it;
	// a frame larger than all of it is refused (frame-too-large).
	ReadMemory int64
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
	// Users, if set, authenticates every CONNECT's login and passcode; a
	// CONNECT without a login is refused unless AllowAnonymous. Without
	// Users every client is anonymous.
	Users interface {
		Check(login, passcode string) (auth.User, error)
		Allowed(groups []string, op auth.Op, kind, name string) bool
		Groups(user string) ([]string, bool)
	}
	AllowAnonymous bool
	// CertUsers makes a verified client certificate (mutual TLS) name its
	// connection's user: the subject's common name, which must be a user
	// of Users when there are Users. CONNECT then needs no login.
	CertUsers bool
	// ConnectedHeaders, if set, gives more headers for every CONNECTED,
	// name then value (a gateway's place in a chain of gateways).
	ConnectedHeaders func() []string
	// Logger receives connection events (default slog.Default()).
	Logger *slog.Logger
}

func (o *Options) fill() {
	o.Limits.fill()
	if o.MaxConnections <= 0 {
		o.MaxConnections = 10000
	}
	if o.MaxUnconnected <= 0 {
		o.MaxUnconnected = 1000
	}
	if o.MaxPerAddress == 0 {
		o.MaxPerAddress = 1000
	}
	if o.FrameTimeout <= 0 {
		o.FrameTimeout = 30 * time.Second
	}
	if o.ReadMemory <= 0 {
		o.ReadMemory = 256 << 20
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
	broker Broker

	mu          sync.Mutex
	lns         []net.Listener // what Serve serves (plain, TLS)
	sessions    map[*session]struct{}
	framesGone  [len(frameCommands)]uint64 // frames read by sessions since ended, by command
	connected   int                        // sessions past CONNECT
	unconnected int                        // sessions before it
	byAddr      map[string]*perAddr        // connections per source address
	closing     bool
	budget      *readBudget
	conns       atomic.Int64
	wg          sync.WaitGroup
	nextID      atomic.Uint64
	idPrefix    string                    // "cairn-<random>-": session ids differ across servers and restarts
	clientIDs   map[string]*session       // connected client-ids (under mu)
	failures    map[string]*loginFailures // recent failed logins by address (under mu)
}

// NewServer returns a server for b (CoreBroker of a core.Broker, or the
// gateway tier's).
func NewServer(b Broker, opts Options) *Server {
	opts.fill()
	var r [4]byte
	rand.Read(r[:])
	return &Server{opts: opts, broker: b, sessions: map[*session]struct{}{}, byAddr: map[string]*perAddr{},
		budget: newReadBudget(opts.ReadMemory), idPrefix: "cairn-" + hex.EncodeToString(r[:]) + "-"}
}

// Serve accepts connections on ln until Close. It returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return errors.New("stomp: server closed")
	}
	s.lns = append(s.lns, ln)
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

// perAddr counts one source address's connections.
type perAddr struct{ total, unconnected int }

// addrOf is the source address a connection counts against: its IP.
func addrOf(c net.Conn) string {
	a := c.RemoteAddr()
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	if a == nil {
		return ""
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host // a WebSocket connection's: its host, as for TCP
	}
	return a.String()
}

func (s *Server) start(c net.Conn) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.Close()
		return
	}
	ss := newSession(s, c)
	addr := addrOf(c)
	pa := s.byAddr[addr]
	if pa == nil {
		pa = &perAddr{}
	}
	var refusal error
	switch {
	case s.opts.MaxPerAddress > 0 && pa.total >= s.opts.MaxPerAddress:
		refusal = perr(CodeTooManyConnections, "this address has %d connections, the server's limit for one address", pa.total)
	case s.unconnected >= s.opts.MaxUnconnected:
		refusal = perr(CodeTooManyConnections, "the server has %d connections that have not sent CONNECT, its limit", s.unconnected)
	case pa.unconnected >= max(s.opts.MaxUnconnected/10, 1):
		refusal = perr(CodeTooManyConnections, "this address has %d connections that have not sent CONNECT, its limit", pa.unconnected)
	}
	if refusal == nil {
		s.sessions[ss] = struct{}{}
		s.unconnected++
		pa.total++
		pa.unconnected++
		s.byAddr[addr] = pa
		ss.addr = addr
	}
	s.wg.Add(1)
	s.mu.Unlock()
	s.conns.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.conns.Add(-1)
		if refusal != nil {
			ss.refuse(refusal)
			return
		}
		ss.serve()
		s.mu.Lock()
		delete(s.sessions, ss)
		for j := range ss.frames {
			s.framesGone[j] += ss.frames[j].Load()
		}
		s.releaseClientIDLocked(ss)
		pa := s.byAddr[ss.addr]
		if ss.connected {
			s.connected--
		} else {
			s.unconnected--
			pa.unconnected--
		}
		if pa.total--; pa.total == 0 {
			delete(s.byAddr, ss.addr)
		}
		s.mu.Unlock()
	}()
}

// admit moves ss from the connections that have not finished CONNECT to
// the connected ones, unless MaxConnections are, or its client-id is
// connected already (ActiveMQ's InvalidClientIDException). The reader
// calls it before it sets ss.connected.
func (s *Server) admit(ss *session, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connected >= s.opts.MaxConnections {
		return perr(CodeTooManyConnections, "the server has %d connections, its limit", s.connected)
	}
	if clientID != "" {
		if s.clientIDs[clientID] != nil {
			return perr(CodeClientIDInUse, "client-id %q is already connected", clientID)
		}
		if s.clientIDs == nil {
			s.clientIDs = map[string]*session{}
		}
		s.clientIDs[clientID] = ss
	}
	s.connected++
	s.unconnected--
	s.byAddr[ss.addr].unconnected--
	return nil
}

// releaseClientID frees ss's client-id for another connection.
func (s *Server) releaseClientID(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseClientIDLocked(ss)
}

func (s *Server) releaseClientIDLocked(ss *session) {
	if ss.clientID != "" && s.clientIDs[ss.clientID] == ss {
		delete(s.clientIDs, ss.clientID)
	}
}

// Addr is the first listening address, once Serve has been called.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lns) == 0 {
		return nil
	}
	return s.lns[0].Addr()
}

// Connections is the number of open connections.
func (s *Server) Connections() int { return int(s.conns.Load()) }

// frameCommands are the commands frames are counted by (Frames); any other
// is counted as the last, "other".
var frameCommands = [...]string{frame.CONNECT, frame.STOMP, frame.SEND, frame.SUBSCRIBE, frame.UNSUBSCRIBE, frame.ACK, frame.NACK,
	frame.BEGIN, frame.COMMIT, frame.ABORT, frame.DISCONNECT, "other"}

func commandIndex(c string) int {
	switch c {
	case frame.SEND:
		return 2
	case frame.ACK:
		return 5
	}
	for i, k := range frameCommands[:len(frameCommands)-1] {
		if k == c {
			return i
		}
	}
	return len(frameCommands) - 1
}

// Frames is how many frames clients have sent, by command, since the
// server started (heart-beats not counted).
func (s *Server) Frames() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]uint64, len(frameCommands))
	for i, c := range frameCommands {
		n := s.framesGone[i]
		for ss := range s.sessions {
			n += ss.frames[i].Load()
		}
		out[c] = n
	}
	return out
}

// ConnInfo describes one connected client (past CONNECT).
type ConnInfo struct {
	ID       string    `json:"id"`     // the session header CONNECTED gave it
	Remote   string    `json:"remote"` // its address
	User     string    `json:"user,omitempty"`
	ClientID string    `json:"client_id,omitempty"`
	Version  string    `json:"version"` // the STOMP version it speaks
	Since    time.Time `json:"since"`
	// Subscriptions open now, and frames it has sent.
	Subscriptions int    `json:"subscriptions"`
	FramesIn      uint64 `json:"frames_in"`
}

// Conns lists the connected clients, by session id.
func (s *Server) Conns() []ConnInfo {
	s.mu.Lock()
	out := make([]ConnInfo, 0, len(s.sessions))
	for ss := range s.sessions {
		if i := ss.info.Load(); i != nil {
			c := *i
			c.Subscriptions = int(ss.nsubs.Load())
			for j := range ss.frames {
				c.FramesIn += ss.frames[j].Load()
			}
			out = append(out, c)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b ConnInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// CloseConn ends the connection of session id with ERROR closed-by-admin
// (its unacknowledged deliveries go back to their queues), and reports
// whether there was one.
func (s *Server) CloseConn(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ss := range s.sessions {
		if i := ss.info.Load(); i != nil && i.ID == id {
			ss.kick()
			return true
		}
	}
	return false
}

// Close stops accepting and closes every connection: each client gets an
// ERROR frame (code shutting-down) after its queued frames, and its
// unacknowledged deliveries go back to their queues. It waits for the
// connections to finish, or for ctx.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for _, ln := range s.lns {
		ln.Close()
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
