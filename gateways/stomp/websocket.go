// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// STOMP over WebSocket (ActiveMQ's ws transport, what stompjs and Spring's
// broker relay speak): each WebSocket connection is one STOMP connection,
// served by the same session code as TCP.

package stomp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// wsSubprotocols are STOMP's WebSocket subprotocols, the newest first.
var wsSubprotocols = []string{"v12.stomp", "v11.stomp", "v10.stomp"}

// WebSocketHandler serves STOMP over WebSocket on any path: a connection
// asking for v10.stomp, v11.stomp or v12.stomp (or none, as some clients
// do) becomes a session with the server's limits, logins and ERRORs.
// Frames may come split across messages or packed several to one; text
// and binary messages are both read; what is written goes as text, or as
// binary where it is not UTF-8 (a binary body).
func (s *Server) WebSocketHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: wsSubprotocols,
			// Browsers send an Origin; a STOMP endpoint is for any page that
			// may log in, as ActiveMQ's ws transport is.
			InsecureSkipVerify: true})
		if err != nil {
			s.opts.Logger.Warn("stomp: WebSocket upgrade refused", "addr", r.RemoteAddr, "err", err)
			return
		}
		c.SetReadLimit(int64(s.opts.Limits.MaxBodyBytes) + int64(s.opts.Limits.MaxHeaders*s.opts.Limits.MaxHeaderBytes) + 1<<16)
		conn := newWSConn(c, r)
		s.start(conn)
		<-conn.done // the handler's return would end the connection
	})
}

// ServeWebSocket serves STOMP over WebSocket on ln until Close.
func (s *Server) ServeWebSocket(ln net.Listener) error {
	hs := &http.Server{Handler: s.WebSocketHandler(), ReadHeaderTimeout: s.opts.ConnectTimeout}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return errors.New("stomp: server closed")
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	err := hs.Serve(ln)
	if errors.Is(err, net.ErrClosed) || errors.Is(err, http.ErrServerClosed) {
		s.mu.Lock()
		closing := s.closing
		s.mu.Unlock()
		if closing {
			return nil
		}
	}
	return err
}

// wsConn is a WebSocket connection as the byte stream a session reads and
// writes: the messages' payloads one after another.
type wsConn struct {
	c             *websocket.Conn
	local, remote net.Addr
	ctx           context.Context
	cancel        context.CancelFunc
	done          chan struct{}
	closeOnce     sync.Once
	mu            sync.Mutex
	readDeadline  time.Time
	writeDeadline time.Time
	r             io.Reader          // the message being read
	rDone         context.CancelFunc // ends the context r is read under, once it is read
	waiting       context.CancelFunc // ends the wait for the next message, while there is one
	out           []byte             // written, not yet a whole frame (the writer's only)
}

func newWSConn(c *websocket.Conn, r *http.Request) *wsConn {
	ctx, cancel := context.WithCancel(context.Background())
	w := &wsConn{c: c, ctx: ctx, cancel: cancel, done: make(chan struct{}), remote: wsAddr(r.RemoteAddr)}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		w.local = la
	} else {
		w.local = wsAddr("")
	}
	return w
}

// wsAddr is a remote address as net/http gives it (host:port).
type wsAddr string

func (a wsAddr) Network() string { return "websocket" }
func (a wsAddr) String() string  { return string(a) }

func (w *wsConn) deadlineCtx(d time.Time) (context.Context, context.CancelFunc) {
	if d.IsZero() {
		return context.WithCancel(w.ctx)
	}
	return context.WithDeadline(w.ctx, d)
}

func (w *wsConn) Read(p []byte) (int, error) {
	for {
		w.mu.Lock()
		r, d := w.r, w.readDeadline
		w.mu.Unlock()
		if r == nil {
			if !d.IsZero() && !time.Now().Before(d) {
				return 0, errTimeout
			}
			ctx, cancel := w.deadlineCtx(d)
			w.mu.Lock()
			w.waiting = cancel
			w.mu.Unlock()
			_, mr, err := w.c.Reader(ctx) // text or binary: both carry frames
			w.mu.Lock()
			w.waiting = nil
			w.mu.Unlock()
			if err != nil {
				cancel()
				if ctx.Err() != nil && w.ctx.Err() == nil {
					return 0, errTimeout // a deadline, or SetReadDeadline waking it
				}
				return 0, io.EOF
			}
			// The message is read under the context it began with: ending
			// that context would end the connection.
			w.mu.Lock()
			w.r, r, w.rDone = mr, mr, cancel
			w.mu.Unlock()
		}
		n, err := r.Read(p)
		if err == io.EOF {
			w.mu.Lock()
			w.r = nil
			if w.rDone != nil {
				w.rDone()
				w.rDone = nil
			}
			w.mu.Unlock()
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// Write sends each whole frame in p as a WebSocket message of its own (a
// heart-beat newline too): text, or binary where the frame is not UTF-8.
// A frame the writer's buffer split across two writes is held until it is
// whole.
func (w *wsConn) Write(p []byte) (int, error) {
	w.mu.Lock()
	d := w.writeDeadline
	w.mu.Unlock()
	w.out = append(w.out, p...)
	for {
		n := frameLen(w.out)
		if n == 0 {
			break
		}
		typ := websocket.MessageText
		if !utf8.Valid(w.out[:n]) {
			typ = websocket.MessageBinary
		}
		ctx, cancel := w.deadlineCtx(d)
		err := w.c.Write(ctx, typ, w.out[:n])
		cancel()
		if err != nil {
			return 0, err
		}
		w.out = w.out[n:]
	}
	if len(w.out) == 0 {
		w.out = nil
	}
	return len(p), nil
}

// frameLen is the length of the whole frame (or heart-beat newline) at the
// start of b, or 0 if b does not hold one whole yet. A frame with a
// content-length ends that many bytes after its headers, plus its NUL;
// one without, at its first NUL.
func frameLen(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	if b[0] == '\n' {
		return 1
	}
	end := bytes.Index(b, []byte("\n\n"))
	if end < 0 {
		return 0
	}
	body := end + 2
	for _, line := range bytes.Split(b[:end], []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("content-length:")); ok {
			if n, err := strconv.Atoi(string(v)); err == nil && n >= 0 {
				if len(b) < body+n+1 {
					return 0
				}
				return body + n + 1
			}
		}
	}
	if i := bytes.IndexByte(b[body:], 0); i >= 0 {
		return body + i + 1
	}
	return 0
}

func (w *wsConn) Close() error {
	w.closeOnce.Do(func() {
		w.c.Close(websocket.StatusNormalClosure, "")
		w.cancel()
		close(w.done)
	})
	return nil
}

func (w *wsConn) LocalAddr() net.Addr  { return w.local }
func (w *wsConn) RemoteAddr() net.Addr { return w.remote }

func (w *wsConn) SetDeadline(t time.Time) error {
	w.SetReadDeadline(t)
	return w.SetWriteDeadline(t)
}

// SetReadDeadline bounds the wait for the next message. A deadline in
// the past only makes the next wait return at once (it wakes the reader,
// as on TCP); one that passes while a message is awaited ends the
// WebSocket connection, which the session then ends too.
func (w *wsConn) SetReadDeadline(t time.Time) error {
	w.mu.Lock()
	w.readDeadline = t
	wake := w.waiting
	w.mu.Unlock()
	if wake != nil && !t.IsZero() && !time.Now().Before(t) {
		wake()
	}
	return nil
}

func (w *wsConn) SetWriteDeadline(t time.Time) error {
	w.mu.Lock()
	w.writeDeadline = t
	w.mu.Unlock()
	return nil
}

// errTimeout is a read deadline passing, as a net.Error.
var errTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string   { return "websocket: read deadline passed" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
