// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// The connection: its state, its reader loop, its deadlines, its end.

package stomp

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
)

// session is one client connection. Its states, in order:
//
//   - unconnected: accepted, counted against MaxUnconnected and the
//     address's share, until CONNECT (or ConnectTimeout);
//   - connected: CONNECT answered (connected is set, the session counts
//     against MaxConnections); the reader carries out frames in order;
//   - closing: closeAfter was called (an ERROR, DISCONNECT, the client
//     gone, the server shutting down): nothing more is queued, and the
//     writer writes what is and closes the connection;
//   - closed: the writer is done (written is closed) and endSession has
//     closed the subscriptions and dropped open transactions.
type session struct {
	srv  *Server
	conn net.Conn
	r    *reader
	id   string
	addr string // the source address it counts against (Server.byAddr)

	// Owned by the reader goroutine (serve).
	version   string
	connected bool
	readEvery time.Duration // the client's heart-beat interval; 0: none
	connectBy time.Time     // CONNECT must have arrived by then
	framing   bool          // a frame is being read (its deadline is the frame's)
	frameSet  time.Time     // when the read deadline was last set for frames; zero: it is not a frame's
	subs      map[string]*subscription
	browsers  map[string]bool // ids of finished browses, until UNSUBSCRIBE
	clientID  string          // CONNECT client-id: names durable subscriptions
	user      string          // the authenticated user ("": anonymous)
	groups    []string        // its groups, for authorization
	num       uint64          // the connection's number: Message.Origin, for noLocal
	temps     map[string]bool // temporary queues this connection named: deleted when it ends
	txs       map[string]*transaction
	burst     burst

	// What Server.Conns shows of it, from any goroutine.
	info   atomic.Pointer[ConnInfo] // set at CONNECT
	nsubs  atomic.Int32
	frames [len(frameCommands)]atomic.Uint64 // frames read, by command (frameCommands)

	// The writer role: whoever sets writing writes everything queued in
	// out, then gives the role up when nothing more is. A delivery (pushed
	// by a queue's goroutine) starts a writer goroutine; a frame the reader
	// answers with (a RECEIPT, say) is written by the reader itself when no
	// writer runs, so a receipted SEND costs no goroutine hand-off.
	outMu     sync.Mutex
	out       []outItem
	spare     []outItem       // the previous batch's array, for the next
	closing   bool            // no more frames are queued; the writer drains and closes
	writing   bool            // someone holds the writer role
	sendEvery time.Duration   // our heart-beat interval
	wroteAt   time.Time       // last write
	beats     *time.Timer     // sends heart-beats while nothing else is written
	acks      sync.WaitGroup  // auto acks being journaled
	pend      []byte          // what writeNow could not write at once: the writer writes it first,
	pendAcks  []outItem       // then auto-acks these deliveries, which are in pend
	barriers  []chan struct{} // owned by the writer role: composed barriers (see unsubscribe), closed once written and acked
	replies   int             // frames the reader queued since the writer last took the queue
	drained   sync.Cond       // on outMu: the writer took the queue, or the session is closing
	written   chan struct{}   // closed when the writer has finished
}

func newSession(s *Server, c net.Conn) *session {
	n := s.nextID.Add(1)
	ss := &session{srv: s, conn: c, r: newReader(c, s.opts.Limits), version: "1.2", num: n, id: s.idPrefix + strconv.FormatUint(n, 10),
		subs: map[string]*subscription{}, written: make(chan struct{})} // the other maps are made on first use
	ss.drained.L = &ss.outMu
	ss.r.budget, ss.r.done = s.budget, ss.written
	return ss
}

// serve runs the reader: it reads and carries out the client's frames in
// order until the connection ends or a protocol error ends it.
func (ss *session) serve() {
	defer ss.endSession()
	ss.connectBy = time.Now().Add(ss.srv.opts.ConnectTimeout)
	if tc, ok := ss.conn.(*tls.Conn); ok {
		// The handshake first, within the connect timeout, so that a
		// refused certificate is logged as what it is.
		tc.SetDeadline(ss.connectBy)
		if err := tc.Handshake(); err != nil {
			ss.srv.opts.Logger.Warn("stomp: TLS handshake failed", "session", ss.id, "addr", ss.conn.RemoteAddr().String(), "err", err)
			ss.closeAfter(nil)
			return
		}
		tc.SetDeadline(time.Time{})
	}
	ss.conn.SetReadDeadline(ss.connectBy)
	ss.r.deadline = ss.connectBy
	for {
		if ss.connected && ss.r.buffered() == 0 {
			ss.conn.SetReadDeadline(ss.idleDeadline()) // the wait for the next frame
			ss.frameSet = time.Time{}
		}
		err := ss.r.wait()
		var f *frame.Frame
		if err == nil {
			ss.beginFrame()
			f, err = ss.r.read()
		}
		if err != nil {
			ss.readFailed(err)
			return
		}
		ss.framing = false
		if f == nil {
			if ss.r.buffered() == 0 {
				if err := ss.runBurst(); err != nil {
					ss.closeAfter(errorFrame(err, ""))
					return
				}
			}
			continue // a heart-beat
		}
		ss.frames[commandIndex(f.Command)].Add(1)
		done, err := ss.handle(f)
		if err == nil && (done || ss.r.buffered() == 0 || ss.burst.bytes >= burstBytes || ss.burst.size() >= burstFrames) {
			err = ss.runBurst()
		}
		if err != nil {
			var pe *protocolError
			if !errors.As(err, &pe) {
				ss.srv.opts.Logger.Error("stomp: frame failed", "session", ss.id, "command", f.Command, "err", err)
			}
			// The session is over: its client-id is free before the ERROR
			// goes, as on DISCONNECT before the RECEIPT.
			ss.srv.releaseClientID(ss)
			ss.closeAfter(errorFrame(err, f.Header.Get(frame.Receipt)))
			return
		}
		if done {
			return
		}
		ss.holdBack()
	}
}

// handle carries out one frame. done means the session is over (DISCONNECT).
func (ss *session) handle(f *frame.Frame) (done bool, err error) {
	if !ss.connected && f.Command != frame.CONNECT && f.Command != frame.STOMP {
		return false, perr(CodeNotConnected, "%s before CONNECT", f.Command)
	}
	receipt := f.Header.Get(frame.Receipt)
	if !batchable(f) {
		if err := ss.runBurst(); err != nil {
			return false, err
		}
	}
	switch f.Command {
	case frame.CONNECT, frame.STOMP:
		return false, ss.connect(f)
	case frame.SEND:
		err = ss.send(f, &receipt)
	case frame.SUBSCRIBE:
		err = ss.subscribe(f, receipt) // it writes the RECEIPT (see subscription.open)
		receipt = ""
	case frame.UNSUBSCRIBE:
		err = ss.unsubscribe(f)
	case frame.ACK, frame.NACK:
		err = ss.ack(f)
	case frame.BEGIN, frame.COMMIT, frame.ABORT:
		err = ss.transaction(f)
	case frame.DISCONNECT:
		// The client-id is free before the RECEIPT: a client that connects
		// again as soon as it has it is not refused.
		ss.srv.releaseClientID(ss)
		if receipt != "" {
			ss.receipt(receipt)
		}
		ss.closeAfter(nil)
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if receipt != "" {
		ss.receipt(receipt)
	}
	return false, nil
}

// batchable reports whether f may join a burst: a SEND or ACK with no
// receipt and no transaction.
func batchable(f *frame.Frame) bool {
	if f.Command != frame.SEND && f.Command != frame.ACK {
		return false
	}
	_, r := f.Header.Contains(frame.Receipt)
	_, t := f.Header.Contains(frame.Transaction)
	return !r && !t
}

// heartBeatTimeout is how long a client that promised heart-beats may be
// silent between frames; 0 if it promised none.
func (ss *session) heartBeatTimeout() time.Duration {
	return time.Duration(float64(ss.readEvery) * ss.srv.opts.HeartBeatGrace)
}

// idleDeadline is when a connected client that sends nothing next is
// dropped: its heart-beat's grace, or the idle timeout, or never.
func (ss *session) idleDeadline() time.Time {
	switch {
	case ss.readEvery > 0:
		return time.Now().Add(ss.heartBeatTimeout())
	case ss.srv.opts.IdleTimeout > 0:
		return time.Now().Add(ss.srv.opts.IdleTimeout)
	}
	return time.Time{}
}

// frameTimeout bounds one frame, first byte to last: the server's frame
// timeout, or the client's heart-beat timeout where that is longer (a
// client may be that slow between frames, so within one too).
func (ss *session) frameTimeout() time.Duration {
	return max(ss.srv.opts.FrameTimeout, ss.heartBeatTimeout())
}

// beginFrame sets the deadline of the frame about to be read (before
// CONNECT, the connect deadline stands). Frames read back to back share a
// deadline set at most an eighth of the frame timeout before the frame
// began, which saves setting it for each: a frame is cut between 7/8 of
// the timeout and all of it after its first byte.
func (ss *session) beginFrame() {
	ss.framing = true
	if !ss.connected {
		return
	}
	now := time.Now()
	t := ss.frameTimeout()
	if !ss.frameSet.IsZero() && now.Sub(ss.frameSet) < t/8 {
		return
	}
	ss.frameSet = now
	ss.r.deadline = now.Add(t)
	ss.conn.SetReadDeadline(ss.r.deadline)
}

func (ss *session) readFailed(err error) {
	// What the client sent before it went away still counts.
	if ferr := ss.runBurst(); ferr != nil {
		ss.srv.opts.Logger.Warn("stomp: frames before the connection ended failed", "session", ss.id, "err", ferr)
	}
	var pe *protocolError
	var ne net.Error
	switch {
	case errors.As(err, &pe):
		ss.closeAfter(errorFrame(err, ""))
	case errors.As(err, &ne) && ne.Timeout():
		ss.outMu.Lock()
		closing := ss.closing
		ss.outMu.Unlock()
		switch {
		case closing: // shutdown woke us
		case !ss.connected:
			ss.closeAfter(errorFrame(perr(CodeConnectTimeout, "no CONNECT frame within %v", ss.srv.opts.ConnectTimeout), ""))
		case ss.framing:
			ss.closeAfter(errorFrame(perr(CodeFrameTimeout, "a frame took over %v to arrive", ss.frameTimeout()), ""))
		case ss.readEvery > 0:
			ss.closeAfter(errorFrame(perr(CodeHeartbeatTimeout, "nothing received for %v", ss.heartBeatTimeout()), ""))
		default:
			ss.closeAfter(errorFrame(perr(CodeIdleTimeout, "nothing received for %v", ss.srv.opts.IdleTimeout), ""))
		}
	default: // the client went away (EOF, reset, closed)
		ss.closeAfter(nil)
	}
}

// endSession ends the session: subscriptions close (their unacknowledged
// deliveries go back to their queues) and open transactions are dropped.
func (ss *session) endSession() {
	ss.closeAfter(nil)
	// Let the writer flush what is queued (an ERROR frame, say), but not
	// wait long on a client that does not read.
	select {
	case <-ss.written:
	case <-time.After(5 * time.Second):
		ss.conn.Close()
		<-ss.written
	}
	// Auto acks of what was written land before the subscriptions close, so
	// none of those messages is handed to another consumer.
	ss.acks.Wait()
	for _, s := range ss.subs {
		s.close()
	}
	for name := range ss.temps {
		// Refused if another connection consumes from it; then it stays.
		ss.srv.broker.DeleteQueue(context.Background(), name)
	}
	ss.subs, ss.txs = nil, nil
}

// errorFrame builds an ERROR frame for err: a short message and a stable
// code, never a stack trace.
func errorFrame(err error, receipt string) *frame.Frame {
	code, msg := CodeInternalError, "internal error; the server log has the detail" // the caller logs err
	var pe *protocolError
	var more []string
	if errors.As(err, &pe) {
		code, msg, more = pe.code, pe.msg, pe.header
	}
	f := frame.New(frame.ERROR, append([]string{"message", msg, "code", string(code), frame.ContentType, "text/plain"}, more...)...)
	if receipt != "" {
		f.Header.Add(frame.ReceiptId, receipt)
	}
	f.Body = []byte(msg + "\n")
	return f
}

// refuse answers a connection the server will not take, and closes it.
func (ss *session) refuse(err error) {
	ss.closeAfter(errorFrame(err, ""))
	<-ss.written
}

// shutdown closes the session from outside (server shutdown).
func (ss *session) shutdown() {
	ss.closeAfter(errorFrame(perr(CodeShuttingDown, "the server is shutting down"), ""))
	ss.conn.SetReadDeadline(time.Now()) // wake the reader
}

// kick ends the session at an operator's request.
func (ss *session) kick() {
	ss.closeAfter(errorFrame(perr(CodeClosedByAdmin, "an administrator closed this connection"), ""))
	ss.conn.SetReadDeadline(time.Now()) // wake the reader
}

func (ss *session) receipt(id string) {
	ss.reply(frame.New(frame.RECEIPT, frame.ReceiptId, id))
}

func required(f *frame.Frame, key string) (string, error) {
	v, ok := f.Header.Contains(key)
	if !ok || v == "" {
		return "", perr(CodeMissingHeader, "%s needs a %s header", f.Command, key)
	}
	return v, nil
}
