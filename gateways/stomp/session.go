// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/core/selector"
	"github.com/cairnmq/cairn/journal"
)

// writeTimeout drops a client that reads nothing for this long.
const writeTimeout = 30 * time.Second

var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}

// session is one client connection.
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
	num       uint64          // the connection's number: Message.Origin, for noLocal
	temps     map[string]bool // temporary queues this connection named: deleted when it ends
	txs       map[string]*transaction
	burst     burst

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

// outItem is a frame for the writer: a built one, a delivery it builds, a
// barrier, or (none of these) a heart-beat. A barrier is closed once
// everything queued before it is written and its auto acks have landed.
type outItem struct {
	f       *frame.Frame
	d       core.Delivery
	sub     *subscription
	barrier chan struct{}
}

// subscription is a STOMP subscription: the broker's subscription and the
// client's id for it.
type subscription struct {
	ss      *session
	id      string
	destStr string
	wild    bool         // a wildcard: MESSAGE frames name each message's destination
	mode    core.AckMode // the SUBSCRIBE's ack mode
	core    Subscription // nil for a browse
	gone    atomic.Bool  // unsubscribed: its deliveries still queued are not written
	mu      sync.Mutex

	// Until open, deliveries wait here: the SUBSCRIBE's RECEIPT goes out
	// only once the subscription is registered (so it misses nothing sent
	// after), and before any MESSAGE of it.
	holding atomic.Bool
	held    []outItem // under mu
}

// Deliver implements core.Consumer: it queues the MESSAGE without blocking.
func (s *subscription) Deliver(d core.Delivery) {
	if !s.hold(d) {
		s.ss.push(outItem{d: d, sub: s})
	}
}

// DeliverLater implements core.LaterConsumer: it queues the MESSAGE for
// Flush, without starting a writer.
func (s *subscription) DeliverLater(d core.Delivery) {
	if !s.hold(d) {
		s.ss.pushLater(outItem{d: d, sub: s})
	}
}

// Flush implements core.LaterConsumer (see session.flushNow).
func (s *subscription) Flush() { s.ss.flushNow() }

// hold keeps d while the subscription is not yet open, and reports
// whether it did.
func (s *subscription) hold(d core.Delivery) bool {
	if !s.holding.Load() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.holding.Load() {
		return false
	}
	s.held = append(s.held, outItem{d: d, sub: s})
	return true
}

// open ends the hold once the subscription is registered: the RECEIPT
// asked for goes out first, then what was delivered meanwhile.
func (s *subscription) open(receipt string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if receipt != "" {
		s.ss.push(outItem{f: frame.New(frame.RECEIPT, frame.ReceiptId, receipt)})
	}
	for _, it := range s.held {
		s.ss.push(it)
	}
	s.held = nil
	s.holding.Store(false)
}

// close ends the broker's subscription, if any (a browse has none).
func (s *subscription) close() {
	if s.core != nil {
		s.core.Close()
	}
}

// burst holds unreceipted, untransacted SENDs and ACKs read back to back.
// They are carried out together when the client pauses (nothing more is
// buffered), before any other frame, or when the burst is large: one
// journal append for the sends and one per subscription for the acks,
// instead of one each. Nothing in a burst was promised durable (no
// receipt), and order is kept: sends in order, acks in order.
type burst struct {
	sends []*core.Message
	bytes int
	acks  map[Subscription][]uint64
	subs  []Subscription // acks' subscriptions, in first-ack order
}

const (
	burstBytes  = 1 << 20
	burstFrames = 1024
)

func (b *burst) size() int {
	n := len(b.sends)
	for _, a := range b.acks {
		n += len(a)
	}
	return n
}

// flush carries out the burst.
func (ss *session) flush() error {
	b := &ss.burst
	if len(b.sends) > 0 {
		err := ss.srv.broker.SendMany(context.Background(), b.sends)
		clear(b.sends)
		b.sends, b.bytes = b.sends[:0], 0
		if err != nil {
			return ss.brokerError(err)
		}
	}
	var first error
	for _, s := range b.subs {
		if err := s.AckMany(context.Background(), b.acks[s]); err != nil && first == nil {
			first = ss.brokerError(err)
		}
		delete(b.acks, s)
	}
	b.subs = b.subs[:0]
	return first
}

type transaction struct {
	sends []*core.Message
	acks  []Ack
}

func newSession(s *Server, c net.Conn) *session {
	n := s.nextID.Add(1)
	ss := &session{srv: s, conn: c, r: newReader(c, s.opts.Limits), version: "1.2", num: n, id: s.idPrefix + strconv.FormatUint(n, 10),
		subs: map[string]*subscription{}, written: make(chan struct{})} // the other maps are made on first use
	ss.drained.L = &ss.outMu
	ss.r.budget, ss.r.done = s.budget, ss.written
	return ss
}

// push queues an item for the writer, unless the session is closing.
func (ss *session) push(it outItem) bool {
	ss.outMu.Lock()
	if ss.closing {
		ss.outMu.Unlock()
		return false
	}
	ss.out = append(ss.out, it)
	ss.wakeLocked()
	ss.outMu.Unlock()
	return true
}

// pushLater queues an item for flushNow, unless the session is closing.
// It starts no writer: flushNow (or whichever writer runs first) writes it.
func (ss *session) pushLater(it outItem) {
	ss.outMu.Lock()
	if !ss.closing {
		ss.out = append(ss.out, it)
	}
	ss.outMu.Unlock()
}

// wakeLocked starts a writer unless one is running (it will see what was
// queued before it gives up the role). outMu is held.
func (ss *session) wakeLocked() {
	if !ss.writing {
		ss.writing = true
		go ss.writeLoop()
	}
}

// reply queues a frame from the reader goroutine. If no writer runs, the
// reader takes the role and writes it at once; whatever is queued while it
// writes goes to a writer goroutine. A client that does not read blocks
// only its own reader this way, up to writeTimeout.
func (ss *session) reply(f *frame.Frame) {
	if !ss.queueReply(f, true) {
		return
	}
	switch final, idle := ss.writeOnce(); {
	case final:
		ss.finished()
	case !idle:
		go ss.writeLoop()
	}
}

// queueReply queues f for the writer, or, when no writer runs, takes the
// writer role for the caller (true), with f queued if queue is set.
func (ss *session) queueReply(f *frame.Frame, queue bool) (writer bool) {
	ss.outMu.Lock()
	defer ss.outMu.Unlock()
	if ss.closing {
		return false
	}
	if ss.writing {
		ss.out = append(ss.out, outItem{f: f})
		ss.replies++ // holdBack bounds these
		return false
	}
	ss.writing = true
	if queue {
		ss.out = append(ss.out, outItem{f: f})
	}
	return true
}

// replyNow is reply for a frame written where others may wait on the
// reader: a SEND's RECEIPT, written while its queue is held for the
// message's dispatch. It never waits on the socket (see writeNow).
func (ss *session) replyNow(f *frame.Frame) {
	if ss.r.rc == nil {
		ss.push(outItem{f: f})
		return
	}
	if ss.queueReply(f, false) {
		ss.writeNow([]outItem{{f: f}})
	}
}

// flushNow writes what is queued (deliveries queued with pushLater) on the
// caller's goroutine, when no writer runs: a producer's goroutine that
// dispatched a message itself (core.Broker.SendConfirmed) writes it to the
// consumer too, with no hand-off to a writer goroutine. It never waits on
// the socket.
func (ss *session) flushNow() {
	ss.outMu.Lock()
	if ss.writing || len(ss.out) == 0 {
		ss.outMu.Unlock()
		return
	}
	if ss.closing || ss.r.rc == nil {
		ss.wakeLocked()
		ss.outMu.Unlock()
		return
	}
	ss.writing = true
	batch := ss.out
	ss.out, ss.spare = ss.spare[:0], nil
	ss.outMu.Unlock()
	ss.writeNow(batch)
}

// writeNow writes batch as the writer role's holder with one write that
// does not wait: what the socket does not take goes to a writer goroutine
// (all of it, for a client that has stopped reading), and so do the auto
// acks of the deliveries in it.
func (ss *session) writeNow(batch []outItem) {
	nb := nbWriter{rc: ss.r.rc}
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(&nb)
	// Compose only while the socket takes what is written: for a client
	// that has stopped reading, what is left is one buffer's worth (and one
	// frame), not a copy of every frame the batch holds.
	autoAcks, n := ss.composeUntil(bw, batch, nil, func() bool { return len(nb.rest) > 0 })
	bw.Flush()
	bw.Reset(nil)
	writers.Put(bw)
	if n < len(batch) {
		ss.outMu.Lock()
		rest := make([]outItem, 0, len(batch)-n+len(ss.out))
		rest = append(append(rest, batch[n:]...), ss.out...) // ahead of what came since
		clear(batch[n:])
		ss.out = rest
		ss.outMu.Unlock()
	}
	if len(nb.rest) == 0 && n == len(batch) {
		ss.autoAck(autoAcks)
		ss.releaseBarriers()
		if _, idle := ss.written1(batch); !idle {
			go ss.writeLoop()
		}
		return
	}
	ss.outMu.Lock()
	if nb.n > 0 {
		ss.wroteAt = time.Now()
	}
	ss.pend, ss.pendAcks = nb.rest, autoAcks
	ss.outMu.Unlock()
	go ss.writeLoop() // with the role
}

// nbWriter writes to a connection's descriptor without ever waiting: from
// the first write the socket does not take whole, it keeps what is left.
type nbWriter struct {
	rc   syscall.RawConn
	n    int    // bytes written
	rest []byte // bytes not written, in order
}

func (w *nbWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(w.rest) == 0 {
		k := 0
		w.rc.Write(func(fd uintptr) bool {
			for k < len(p) {
				m, err := syscall.Write(int(fd), p[k:])
				if err == syscall.EINTR {
					continue
				}
				if err != nil || m <= 0 {
					break // would block, or failed: the writer goroutine finds out
				}
				k += m
			}
			return true // never wait here
		})
		w.n += k
		p = p[k:]
	}
	w.rest = append(w.rest, p...)
	return n, nil
}

// holdBack stops the reader while too many of its frames wait for the
// writer (a client that sends receipted frames and reads nothing): its
// connection then reads no more, as when the reader itself waits on the
// socket, rather than piling replies up in memory.
func (ss *session) holdBack() {
	ss.outMu.Lock()
	for ss.replies >= maxQueuedReplies && !ss.closing {
		ss.drained.Wait()
	}
	ss.outMu.Unlock()
}

const maxQueuedReplies = 1024

// beat runs every half heart-beat interval: if nothing was written for an
// interval, it queues a heart-beat.
func (ss *session) beat() {
	ss.outMu.Lock()
	defer ss.outMu.Unlock()
	if ss.closing {
		return
	}
	if !ss.writing && time.Since(ss.wroteAt) >= ss.sendEvery {
		ss.out = append(ss.out, outItem{})
		ss.wakeLocked()
	}
	ss.beats.Reset(ss.sendEvery / 2)
}

// finish queues last (if any) as the final frame and tells the writer to
// close the connection once everything queued is written.
func (ss *session) finish(last *frame.Frame) {
	ss.outMu.Lock()
	if !ss.closing {
		if last != nil {
			ss.out = append(ss.out, outItem{f: last})
		}
		ss.closing = true
		ss.drained.Broadcast()
		ss.wakeLocked()
	}
	ss.outMu.Unlock()
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
	ss.finish(errorFrame(err, ""))
	<-ss.written
}

// shutdown closes the session from outside (server shutdown).
func (ss *session) shutdown() {
	ss.finish(errorFrame(perr(CodeShuttingDown, "the server is shutting down"), ""))
	ss.conn.SetReadDeadline(time.Now()) // wake the reader
}

// serve runs the reader: it reads and carries out the client's frames in
// order until the connection ends or a protocol error ends it.
func (ss *session) serve() {
	defer ss.cleanup()
	ss.connectBy = time.Now().Add(ss.srv.opts.ConnectTimeout)
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
				if err := ss.flush(); err != nil {
					ss.finish(errorFrame(err, ""))
					return
				}
			}
			continue // a heart-beat
		}
		done, err := ss.handle(f)
		if err == nil && (done || ss.r.buffered() == 0 || ss.burst.bytes >= burstBytes || ss.burst.size() >= burstFrames) {
			err = ss.flush()
		}
		if err != nil {
			var pe *protocolError
			if !errors.As(err, &pe) {
				ss.srv.opts.Logger.Error("stomp: frame failed", "session", ss.id, "command", f.Command, "err", err)
			}
			ss.finish(errorFrame(err, f.Header.Get(frame.Receipt)))
			return
		}
		if done {
			return
		}
		ss.holdBack()
	}
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
	if ferr := ss.flush(); ferr != nil {
		ss.srv.opts.Logger.Warn("stomp: frames before the connection ended failed", "session", ss.id, "err", ferr)
	}
	var pe *protocolError
	var ne net.Error
	switch {
	case errors.As(err, &pe):
		ss.finish(errorFrame(err, ""))
	case errors.As(err, &ne) && ne.Timeout():
		ss.outMu.Lock()
		closing := ss.closing
		ss.outMu.Unlock()
		switch {
		case closing: // shutdown woke us
		case !ss.connected:
			ss.finish(errorFrame(perr(CodeConnectTimeout, "no CONNECT frame within %v", ss.srv.opts.ConnectTimeout), ""))
		case ss.framing:
			ss.finish(errorFrame(perr(CodeFrameTimeout, "a frame took over %v to arrive", ss.frameTimeout()), ""))
		case ss.readEvery > 0:
			ss.finish(errorFrame(perr(CodeHeartbeatTimeout, "nothing received for %v", ss.heartBeatTimeout()), ""))
		default:
			ss.finish(errorFrame(perr(CodeIdleTimeout, "nothing received for %v", ss.srv.opts.IdleTimeout), ""))
		}
	default: // the client went away (EOF, reset, closed)
		ss.finish(nil)
	}
}

// cleanup ends the session: subscriptions close (their unacknowledged
// deliveries go back to their queues) and open transactions are dropped.
func (ss *session) cleanup() {
	ss.finish(nil)
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

// writeLoop writes until nothing is queued: a connection with nothing to
// write has no writer goroutine (heart-beats come from a timer). push and
// finish start it. Its last run, once the session is closing and
// everything queued is written, closes the connection and ss.written.
func (ss *session) writeLoop() {
	for {
		final, idle := ss.writeOnce()
		if final {
			ss.finished()
			return
		}
		if idle {
			return
		}
	}
}

// finished ends the writer role for good.
func (ss *session) finished() {
	ss.conn.Close()
	ss.outMu.Lock()
	if ss.beats != nil {
		ss.beats.Stop()
	}
	ss.outMu.Unlock()
	close(ss.written)
}

// writeOnce writes everything queued with one flush, by the holder of the
// writer role. It reports final when the session is over (closing and
// drained, or the connection failed), and idle when it gave the role up
// because nothing more is queued.
func (ss *session) writeOnce() (final, idle bool) {
	ss.outMu.Lock()
	batch, pend, autoAcks := ss.out, ss.pend, ss.pendAcks
	ss.out, ss.spare, ss.pend, ss.pendAcks = ss.spare[:0], nil, nil, nil
	ss.replies = 0
	ss.drained.Broadcast()
	closing := ss.closing
	ss.outMu.Unlock()
	if closing && len(batch) == 0 && len(pend) == 0 {
		return true, false
	}
	// The write buffer is taken from a pool for each burst and given back
	// after it, so an idle connection holds none.
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(ss.conn)
	bw.Write(pend)
	autoAcks = ss.compose(bw, batch, autoAcks)
	ss.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	err := bw.Flush()
	bw.Reset(nil)
	writers.Put(bw)
	if err != nil {
		ss.srv.opts.Logger.Debug("stomp: write", "session", ss.id, "err", err)
		ss.conn.Close() // the reader sees it and cleans up
		ss.drain()
		return true, false
	}
	ss.autoAck(autoAcks)
	ss.releaseBarriers()
	return ss.written1(batch)
}

// releaseBarriers closes the barriers composed so far, once the auto acks
// of what was written before them have landed. Only the writer role's
// holder adds to ss.acks, and it is the caller: the Wait is safe.
func (ss *session) releaseBarriers() {
	if len(ss.barriers) == 0 {
		return
	}
	ss.acks.Wait()
	for _, b := range ss.barriers {
		close(b)
	}
	clear(ss.barriers)
	ss.barriers = ss.barriers[:0]
}

// compose writes batch's frames into w, clearing batch, and returns
// autoAcks with the deliveries to auto-ack subscriptions appended.
func (ss *session) compose(w *bufio.Writer, batch []outItem, autoAcks []outItem) []outItem {
	autoAcks, _ = ss.composeUntil(w, batch, autoAcks, nil)
	return autoAcks
}

// composeUntil is compose that stops after the frame for which full (if
// not nil) reports true, and says how many items it composed (and cleared).
func (ss *session) composeUntil(w *bufio.Writer, batch []outItem, autoAcks []outItem, full func() bool) ([]outItem, int) {
	for i := range batch {
		if full != nil && full() {
			return autoAcks, i
		}
		it := &batch[i]
		switch {
		case it.f != nil:
			writeFrame(w, it.f, ss.version)
		case it.barrier != nil:
			ss.barriers = append(ss.barriers, it.barrier)
		case it.sub != nil && it.sub.gone.Load():
			// Unsubscribed: not written, so not consumed; closing the
			// core subscription gives it back.
		case it.sub != nil:
			ss.writeMessage(w, it)
			if it.sub.core != nil && it.sub.mode == core.AckAuto { // (nil: a browse)
				autoAcks = append(autoAcks, *it)
			}
		default:
			w.WriteByte('\n') // a heart-beat
		}
		*it = outItem{}
	}
	return autoAcks, len(batch)
}

// autoAck acknowledges deliveries written to auto-ack subscriptions: one
// AutoAck (one journal append) per subscription. Nobody waits for an auto
// ack to be durable (a crash before it lands redelivers, marked
// redelivered), and the journal takes them lazily when it can: then they
// are done here, which costs no goroutine; otherwise off the writer's
// path, so that the next burst need not wait for a sync.
func (ss *session) autoAck(autoAcks []outItem) {
	inline := len(autoAcks) > 0 && !ss.srv.broker.AutoAckWaits()
	for len(autoAcks) > 0 {
		sub := autoAcks[0].sub.core
		var seqs []uint64
		rest := autoAcks[:0]
		for _, it := range autoAcks {
			if it.sub.core == sub {
				seqs = append(seqs, it.d.Msg.Seq)
			} else {
				rest = append(rest, it)
			}
		}
		ack := func() {
			err := sub.AutoAck(context.Background(), seqs)
			switch {
			case errors.Is(err, core.ErrUnknownAck):
				// Written to the client, but no longer its to consume:
				// it will be delivered again.
				ss.srv.opts.Logger.Warn("stomp: auto ack of messages no longer delivered to the subscription; they will be delivered again",
					"session", ss.id, "messages", len(seqs), "err", err)
			case err != nil:
				ss.srv.opts.Logger.Error("stomp: auto ack", "session", ss.id, "err", err)
			}
		}
		if inline {
			ack()
		} else {
			ss.acks.Add(1)
			go func() {
				defer ss.acks.Done()
				ack()
			}()
		}
		clear(autoAcks[len(rest):])
		autoAcks = rest
	}
}

// written1 ends a burst written by the writer role's holder: it keeps
// batch's array for the next, and gives the role up (idle) if nothing more
// is queued.
func (ss *session) written1(batch []outItem) (final, idle bool) {
	if cap(batch) > 64 {
		batch = nil // do not hold a large burst's array while idle
	}
	ss.outMu.Lock()
	defer ss.outMu.Unlock()
	ss.spare = batch[:0]
	ss.wroteAt = time.Now()
	if len(ss.out) == 0 && !ss.closing {
		ss.writing = false
		return false, true
	}
	return false, false
}

// drain discards what is queued after the connection failed.
func (ss *session) drain() {
	ss.outMu.Lock()
	ss.closing = true
	ss.drained.Broadcast()
	ss.out = nil
	ss.outMu.Unlock()
}

// writeMessage writes the MESSAGE frame of a delivery, with ActiveMQ's
// headers, straight into w (no frame is built: this is the hot path).
func (ss *session) writeMessage(w *bufio.Writer, it *outItem) {
	m := it.d.Msg
	v := ss.version
	esc := v != "1.0"
	var num [20]byte
	id := m.ID()
	w.WriteString("MESSAGE\n")
	if it.sub.wild {
		writeHeader(w, frame.Destination, m.Destination.String(), v, esc) // the topic it was published to
	} else {
		writeHeader(w, frame.Destination, it.sub.destStr, v, esc)
	}
	writeHeader(w, frame.MessageId, id, v, esc)
	writeHeader(w, frame.Subscription, it.sub.id, v, esc)
	if it.sub.core != nil && it.sub.mode != core.AckAuto && v == "1.2" {
		writeHeader(w, frame.Ack, id, v, esc)
	}
	if it.d.Redelivered {
		w.WriteString("redelivered:true\n")
	}
	if m.Persistent {
		w.WriteString("persistent:true\n")
	}
	w.WriteString("priority:")
	w.Write(strconv.AppendUint(num[:0], uint64(m.Priority), 10))
	w.WriteString("\ntimestamp:")
	w.Write(strconv.AppendInt(num[:0], m.Timestamp, 10))
	w.WriteString("\nexpires:")
	w.Write(strconv.AppendInt(num[:0], m.Expires, 10))
	w.WriteByte('\n')
	for i := 0; i+1 < len(m.Header); i += 2 {
		if v != "1.2" && !deliverable(m.Header[i], m.Header[i+1], v) {
			continue // it cannot reach this client intact
		}
		writeHeader(w, m.Header[i], m.Header[i+1], v, esc)
	}
	w.WriteString("content-length:")
	w.Write(strconv.AppendInt(num[:0], int64(len(m.Body)), 10))
	w.WriteString("\n\n")
	w.Write(m.Body)
	w.WriteByte(0)
}

// handle carries out one frame. done means the session is over (DISCONNECT).
func (ss *session) handle(f *frame.Frame) (done bool, err error) {
	if !ss.connected && f.Command != frame.CONNECT && f.Command != frame.STOMP {
		return false, perr(CodeNotConnected, "%s before CONNECT", f.Command)
	}
	receipt := f.Header.Get(frame.Receipt)
	if !batchable(f) {
		if err := ss.flush(); err != nil {
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
		if receipt != "" {
			ss.receipt(receipt)
		}
		ss.finish(nil)
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

func (ss *session) receipt(id string) {
	ss.reply(frame.New(frame.RECEIPT, frame.ReceiptId, id))
}

var versions = []string{"1.0", "1.1", "1.2"}

func (ss *session) connect(f *frame.Frame) error {
	if ss.connected {
		return perr(CodeAlreadyConnected, "a second CONNECT on one connection")
	}
	version := "1.0"
	if av, ok := f.Header.Contains(frame.AcceptVersion); ok {
		version = ""
		for _, v := range strings.Split(av, ",") {
			v = strings.TrimSpace(v)
			if slices.Contains(versions, v) && v > version {
				version = v
			}
		}
		if version == "" {
			// The specification's negotiation: say what the server speaks.
			return &protocolError{code: CodeBadVersion, msg: fmt.Sprintf("none of the versions %q is supported (1.0, 1.1, 1.2)", av),
				header: []string{frame.Version, strings.Join(versions, ",")}}
		}
	}
	cx, cy := 0, 0
	if hb, ok := f.Header.Contains(frame.HeartBeat); ok && version != "1.0" {
		x, y, err := parseHeartBeat(hb)
		if err != nil {
			return err
		}
		cx, cy = x, y
	}
	// cx: the client sends every cx ms; cy: it wants ours every cy ms.
	min := int(ss.srv.opts.HeartBeat / time.Millisecond)
	send, recv := 0, 0
	if cy > 0 {
		send = max(cy, min)
	}
	if cx > 0 {
		recv = max(cx, min)
	}
	if err := ss.srv.admit(ss); err != nil {
		return err
	}
	ss.version = version
	ss.r.version = version
	ss.connected = true
	ss.clientID = f.Header.Get("client-id")
	ss.readEvery = time.Duration(recv) * time.Millisecond
	resp := frame.New(frame.CONNECTED, frame.Version, version, frame.Session, ss.id,
		frame.Server, ss.srv.opts.ServerName, frame.HeartBeat, fmt.Sprintf("%d,%d", send, recv))
	if r := f.Header.Get(frame.Receipt); r != "" {
		resp.Header.Add(frame.ReceiptId, r)
	}
	if r := f.Header.Get("request-id"); r != "" {
		resp.Header.Add("response-id", r) // as ActiveMQ does
	}
	ss.outMu.Lock()
	ss.sendEvery = time.Duration(send) * time.Millisecond
	if ss.sendEvery > 0 && !ss.closing {
		ss.beats = time.AfterFunc(ss.sendEvery/2, ss.beat)
	}
	ss.outMu.Unlock()
	ss.reply(resp)
	return nil
}

func parseHeartBeat(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, ",")
	x, err1 := strconv.Atoi(strings.TrimSpace(a))
	y, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || x < 0 || y < 0 {
		return 0, 0, perr(CodeMalformedFrame, "heart-beat %q is not two numbers", s)
	}
	return x, y, nil
}

func required(f *frame.Frame, key string) (string, error) {
	v, ok := f.Header.Contains(key)
	if !ok || v == "" {
		return "", perr(CodeMissingHeader, "%s needs a %s header", f.Command, key)
	}
	return v, nil
}

func (ss *session) destination(f *frame.Frame) (core.Destination, string, error) {
	s, err := required(f, frame.Destination)
	if err != nil {
		return core.Destination{}, "", err
	}
	d, err := ss.parseDestination(s)
	return d, s, err
}

// Temporary destinations: /temp-queue/NAME and /temp-topic/NAME belong to
// the connection that names them (they are gone when it closes); another
// connection reaches them as /remote-temp-queue/ID and
// /remote-temp-topic/ID, which is what a reply-to naming one is rewritten
// to, as in ActiveMQ.
var tempPrefixes = []struct {
	prefix string
	kind   core.Kind
	remote bool
}{
	{"/temp-queue/", core.Queue, false}, {"/temp-topic/", core.Topic, false},
	{"/remote-temp-queue/", core.Queue, true}, {"/remote-temp-topic/", core.Topic, true},
}

// parseDestination reads a destination, temporary ones included.
func (ss *session) parseDestination(s string) (core.Destination, error) {
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		return core.Destination{}, perr(CodeBadDestination, "a destination holds a control character (at byte %d)", i)
	}
	for _, t := range tempPrefixes {
		name, ok := strings.CutPrefix(s, t.prefix)
		if !ok {
			continue
		}
		if name == "" {
			return core.Destination{}, perr(CodeBadDestination, "destination %q has no name", s)
		}
		if t.remote {
			scope, local, ok := strings.Cut(name, ":")
			if !ok {
				return core.Destination{}, perr(CodeBadDestination, "destination %q names no connection", s)
			}
			return core.TempDestination(t.kind, scope, local), nil
		}
		d := core.TempDestination(t.kind, ss.id, name)
		if t.kind == core.Queue {
			if ss.temps == nil {
				ss.temps = map[string]bool{}
			}
			ss.temps[d.Name] = true
		}
		return d, nil
	}
	d, err := core.ParseDestination(s)
	if err != nil {
		return core.Destination{}, perr(CodeBadDestination, "%v", err)
	}
	return d, nil
}

// remoteName rewrites a /temp-queue/ or /temp-topic/ of this connection as
// the /remote-temp-... name other connections use.
func (ss *session) remoteName(s string) string {
	if name, ok := strings.CutPrefix(s, "/temp-queue/"); ok {
		return "/remote-temp-queue/" + ss.id + ":" + name
	}
	if name, ok := strings.CutPrefix(s, "/temp-topic/"); ok {
		return "/remote-temp-topic/" + ss.id + ":" + name
	}
	return s
}

// Headers of a SEND that are not carried on as message headers.
var sendOnly = map[string]bool{
	frame.Destination: true, frame.Transaction: true, frame.Receipt: true, frame.ContentLength: true,
	"persistent": true, "priority": true, "expires": true, "timestamp": true, frame.MessageId: true,
	"redelivered": true, frame.Subscription: true, frame.Ack: true,
}

// sendDestinations reads a SEND's destination: one, or a composite of
// several separated by commas ("/queue/a,/topic/b"), each with its prefix.
func (ss *session) sendDestinations(f *frame.Frame) ([]core.Destination, error) {
	s, err := required(f, frame.Destination)
	if err != nil {
		return nil, err
	}
	var out []core.Destination
	for part := range strings.SplitSeq(s, ",") {
		d, err := ss.parseDestination(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// send carries out a SEND. Once the message is durable it writes the
// RECEIPT asked for (and clears *receipt) before the message is handed to
// consumers; otherwise handle writes it.
func (ss *session) send(f *frame.Frame, receipt *string) error {
	dests, err := ss.sendDestinations(f)
	if err != nil {
		return err
	}
	m := &core.Message{Destination: dests[0], Priority: 4, Body: f.Body, Persistent: ss.srv.broker.PersistentByDefault(), Origin: ss.num}
	if p, ok := f.Header.Contains("persistent"); ok {
		m.Persistent = p == "true"
	}
	if p := f.Header.Get("priority"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 9 {
			return perr(CodeBadHeader, "priority %q is not 0-9", p)
		}
		m.Priority = uint8(n)
	}
	if e := f.Header.Get("expires"); e != "" {
		n, err := strconv.ParseInt(e, 10, 64)
		if err != nil || n < 0 {
			return perr(CodeBadHeader, "expires %q is not a time in Unix milliseconds", e)
		}
		m.Expires = n
	}
	if ts := f.Header.Get("timestamp"); ts != "" {
		if n, err := strconv.ParseInt(ts, 10, 64); err == nil {
			m.Timestamp = n
		}
	}
	for i := 0; i < f.Header.Len(); i++ {
		k, v := f.Header.GetAt(i)
		if !sendOnly[k] {
			if k == "reply-to" {
				v = ss.remoteName(v)
			}
			m.Header = append(m.Header, k, v)
		}
	}
	msgs := []*core.Message{m}
	for _, d := range dests[1:] {
		// A composite destination: one copy each, stored in one journal batch.
		c := *m
		c.Destination = d
		msgs = append(msgs, &c)
	}
	if txid := f.Header.Get(frame.Transaction); txid != "" {
		tx := ss.txs[txid]
		if tx == nil {
			return perr(CodeUnknownTransaction, "no transaction %q on this connection", txid)
		}
		tx.sends = append(tx.sends, msgs...)
		return nil
	}
	if batchable(f) {
		ss.burst.sends = append(ss.burst.sends, msgs...)
		ss.burst.bytes += len(m.Body) * len(msgs)
		return nil
	}
	var confirmed func()
	if id := *receipt; id != "" {
		confirmed = func() { ss.replyNow(frame.New(frame.RECEIPT, frame.ReceiptId, id)) }
		*receipt = ""
	}
	if err := ss.srv.broker.SendConfirmed(context.Background(), msgs, confirmed); err != nil {
		return ss.brokerError(err)
	}
	return nil
}

// durableName is a SUBSCRIBE's or UNSUBSCRIBE's durable subscription name:
// ActiveMQ's activemq.subscriptionName, or durable-subscription-name (as
// ActiveMQ Artemis and RabbitMQ's clients send it).
func durableName(f *frame.Frame) string {
	if n := f.Header.Get("activemq.subscriptionName"); n != "" {
		return n
	}
	return f.Header.Get("durable-subscription-name")
}

func (ss *session) durableError(err error) error {
	switch {
	case errors.Is(err, core.ErrDurableInUse):
		return perr(CodeDurableInUse, "%v", err)
	case errors.Is(err, core.ErrNoDurable):
		return perr(CodeUnknownSubscription, "%v", err)
	}
	return ss.brokerError(err)
}

// brokerError is the ERROR a client gets for err from the broker. A
// failure of the store gets a fixed message: its detail (file names, the
// I/O error) goes to the log with the session's id, never to a client.
func (ss *session) brokerError(err error) error {
	switch {
	case errors.Is(err, core.ErrClosed):
		return perr(CodeShuttingDown, "the server is shutting down")
	case errors.Is(err, core.ErrUnknownAck):
		return perr(CodeUnknownAck, "%v", err)
	case errors.Is(err, core.ErrStoreFull):
		return perr(CodeStoreFull, "%v", err)
	case errors.Is(err, core.ErrStoreUnavailable) || errors.Is(err, journal.ErrNoSpace):
		if !errors.Is(err, core.ErrStoreUnavailable) {
			ss.srv.opts.Logger.Warn("stomp: the message store is out of space", "session", ss.id, "err", err)
		}
		return perr(CodeStoreUnavailable, "the message store is out of disk space: persistent messages are refused until it has room; nothing of this one was stored")
	case errors.Is(err, core.ErrTooLarge):
		return perr(CodeTooLarge, "%v; send it in smaller parts", err) // counts and limits, no names
	}
	ss.srv.opts.Logger.Error("stomp: the message store failed", "session", ss.id, "err", err)
	return perr(CodeJournalFailure, "the message store failed; the server log has the detail (session %s)", ss.id)
}

func (ss *session) subID(f *frame.Frame, destStr string) (string, error) {
	id := f.Header.Get(frame.Id)
	if id == "" {
		if ss.version != "1.0" {
			return "", perr(CodeMissingHeader, "%s needs an id header in STOMP %s", f.Command, ss.version)
		}
		id = destStr
	}
	return id, nil
}

func (ss *session) checkSubscribe(f *frame.Frame) error {
	_, destStr, err := ss.destination(f)
	if err != nil {
		return err
	}
	id, err := ss.subID(f, destStr)
	if err != nil {
		return err
	}
	if ss.subs[id] != nil {
		return perr(CodeDuplicateSubscription, "subscription id %q is in use on this connection", id)
	}
	if _, err := core.ParseAckMode(f.Header.Get(frame.Ack)); err != nil {
		return perr(CodeBadHeader, "%v", err)
	}
	return nil
}

// subscribe carries out a SUBSCRIBE. Its RECEIPT, if asked for, goes out
// once the subscription is registered, and before any of its MESSAGEs.
func (ss *session) subscribe(f *frame.Frame, receipt string) error {
	if err := ss.checkSubscribe(f); err != nil {
		return err
	}
	dest, destStr, _ := ss.destination(f)
	id, _ := ss.subID(f, destStr)
	mode, _ := core.ParseAckMode(f.Header.Get(frame.Ack))
	opts := core.SubscribeOptions{Mode: mode}
	if p := f.Header.Get("activemq.prefetchSize"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return perr(CodeBadHeader, "activemq.prefetchSize %q is not a positive number", p)
		}
		opts.Prefetch = n
	}
	if p := f.Header.Get("activemq.priority"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 127 {
			return perr(CodeBadHeader, "activemq.priority %q is not a number from 0 to 127", p)
		}
		opts.Priority = n
	}
	if sel := f.Header.Get("selector"); strings.TrimSpace(sel) != "" {
		// ActiveMQ prefixes STOMP selectors with convert_string_expressions:,
		// which is what Cairn's selectors do anyway; a client may send it too.
		sel = strings.TrimPrefix(sel, "convert_string_expressions:")
		parsed, err := selector.Parse(sel)
		if err != nil {
			return perr(CodeBadSelector, "%v", err)
		}
		opts.Selector = parsed
	}
	if f.Header.Get("activemq.noLocal") == "true" {
		opts.NoLocal, opts.Connection = true, ss.num
	}
	switch x := f.Header.Get("activemq.exclusive"); x {
	case "", "false":
	case "true":
		opts.Exclusive = true
	default:
		return perr(CodeBadHeader, "activemq.exclusive %q is not true or false", x)
	}
	s := &subscription{ss: ss, id: id, destStr: destStr, wild: core.IsWildcard(dest.Name), mode: opts.Mode}
	s.holding.Store(true)
	if dest.Kind == core.Queue && s.wild && (f.Header.Get("browser") == "true" || durableName(f) != "") {
		return perr(CodeBadDestination, "%s: a wildcard queue subscription cannot browse or be durable", destStr)
	}
	if f.Header.Get("browser") == "true" {
		if dest.Kind != core.Queue {
			return perr(CodeBadDestination, "browser:true needs a queue, not %s", s.destStr)
		}
		s.open(receipt)
		return ss.browse(s, dest)
	}
	var cs Subscription
	var err error
	if name := durableName(f); name != "" {
		if ss.clientID == "" {
			return perr(CodeMissingHeader, "a durable subscription (activemq.subscriptionName) needs client-id on CONNECT")
		}
		if dest.Kind != core.Topic {
			return perr(CodeBadDestination, "a durable subscription is for a topic, not %s", destStr)
		}
		cs, err = ss.srv.broker.SubscribeDurable(context.Background(), ss.clientID, name, dest, opts, s)
	} else {
		cs, err = ss.srv.broker.Subscribe(dest, opts, s)
	}
	if err != nil {
		return ss.durableError(err)
	}
	s.core = cs
	ss.subs[id] = s
	s.open(receipt)
	return nil
}

// browse answers a SUBSCRIBE with browser:true (to a queue): a MESSAGE for
// each message the queue holds, taking none, then one with browser:end. ActiveMQ shows a
// browser at most 400 messages by default (maxBrowsePageSize); this shows
// them all.
func (ss *session) browse(s *subscription, dest core.Destination) error {
	msgs, _ := ss.srv.broker.Browse(dest.Name)
	for _, m := range msgs {
		if !ss.push(outItem{d: core.Delivery{Msg: m}, sub: s}) {
			return nil
		}
	}
	end := frame.New(frame.MESSAGE, frame.Destination, s.destStr, frame.Subscription, s.id,
		frame.MessageId, "ID:cairn-browser-end", "browser", "end", frame.ContentLength, "0")
	ss.push(outItem{f: end})
	if ss.browsers == nil {
		ss.browsers = map[string]bool{}
	}
	ss.browsers[s.id] = true // until UNSUBSCRIBE, so that the client may send it
	return nil
}

func (ss *session) unsubscribe(f *frame.Frame) error {
	id := f.Header.Get(frame.Id)
	if id == "" && ss.version == "1.0" {
		id = f.Header.Get(frame.Destination)
	}
	if id == "" {
		return perr(CodeMissingHeader, "UNSUBSCRIBE needs an id header")
	}
	s := ss.subs[id]
	name := durableName(f)
	if s == nil && name == "" {
		if ss.browsers[id] {
			delete(ss.browsers, id)
			return nil
		}
		return perr(CodeUnknownSubscription, "no subscription %q on this connection", id)
	}
	if s != nil {
		delete(ss.subs, id)
		ss.endDeliveries(s)
		s.close()
	}
	if name != "" {
		// With the subscription name, UNSUBSCRIBE ends the durable
		// subscription and drops what was kept for it (as in ActiveMQ).
		if ss.clientID == "" {
			return perr(CodeMissingHeader, "removing a durable subscription needs client-id on CONNECT")
		}
		if err := ss.srv.broker.UnsubscribeDurable(context.Background(), ss.clientID, name); err != nil {
			return ss.durableError(err)
		}
	}
	return nil
}

// endDeliveries stops s's deliveries before its core subscription closes:
// what is still queued for it is not written, and what was written to an
// auto-ack subscription is acknowledged first, so that closing it does not
// hand a message the client has already received to another consumer.
func (ss *session) endDeliveries(s *subscription) {
	s.gone.Store(true)
	if s.core != nil && s.mode != core.AckAuto {
		return // the client acks what it got; the rest is redelivered
	}
	b := make(chan struct{})
	ss.push(outItem{barrier: b})
	select {
	case <-b:
	case <-ss.written: // the writer has finished: no more auto acks start
		ss.acks.Wait()
	}
}

// ack handles ACK and NACK. STOMP 1.2 names the message by id (our MESSAGE
// ack header, the message-id); 1.0 and 1.1 by message-id (and subscription).
func (ss *session) ack(f *frame.Frame) error {
	key := frame.MessageId
	if ss.version == "1.2" {
		key = frame.Id
	}
	idStr, err := required(f, key)
	if err != nil {
		return err
	}
	if ss.version == "1.0" {
		// 1.0 has no escapes, but go-stomp escapes every header whatever
		// the version, so its ACK of ID:cairn-7 reads ID\ccairn-7. Message
		// ids hold no backslash of their own: this reading is unambiguous.
		idStr = strings.Replace(idStr, `ID\c`, "ID:", 1)
	}
	seq, ok := core.ParseID(idStr)
	if !ok {
		return perr(CodeUnknownAck, "%s %q is not a message this broker delivered", key, idStr)
	}
	var candidates []*subscription
	if sid := f.Header.Get(frame.Subscription); sid != "" && ss.version != "1.2" {
		if s := ss.subs[sid]; s != nil {
			candidates = append(candidates, s)
		}
	} else {
		for _, s := range ss.subs {
			candidates = append(candidates, s)
		}
	}
	for _, gs := range candidates {
		s := gs.core
		if s == nil || !s.Has(seq) {
			continue
		}
		if txid := f.Header.Get(frame.Transaction); txid != "" {
			tx := ss.txs[txid]
			if tx == nil {
				return perr(CodeUnknownTransaction, "no transaction %q on this connection", txid)
			}
			if f.Command == frame.NACK {
				return perr(CodeBadHeader, "NACK cannot be part of a transaction")
			}
			tx.acks = append(tx.acks, Ack{Sub: s, Seq: seq})
			return nil
		}
		switch {
		case f.Command == frame.NACK && f.Header.Get(frame.Receipt) != "":
			err = s.NackWait(seq) // the RECEIPT says the count is durable
		case f.Command == frame.NACK:
			err = s.Nack(seq)
		case batchable(f):
			b := &ss.burst
			if b.acks == nil {
				b.acks = map[Subscription][]uint64{}
			}
			if _, ok := b.acks[s]; !ok {
				b.subs = append(b.subs, s)
			}
			b.acks[s] = append(b.acks[s], seq)
		default:
			err = s.Ack(context.Background(), seq)
		}
		if err != nil {
			return ss.brokerError(err)
		}
		return nil
	}
	return perr(CodeUnknownAck, "%s %s is not delivered and unacknowledged on this connection", f.Command, idStr)
}

func (ss *session) transaction(f *frame.Frame) error {
	txid, err := required(f, frame.Transaction)
	if err != nil {
		return err
	}
	switch f.Command {
	case frame.BEGIN:
		if ss.txs[txid] != nil {
			return perr(CodeDuplicateTransaction, "transaction %q is already open", txid)
		}
		if ss.txs == nil {
			ss.txs = map[string]*transaction{}
		}
		ss.txs[txid] = &transaction{}
		return nil
	}
	tx := ss.txs[txid]
	if tx == nil {
		return perr(CodeUnknownTransaction, "no transaction %q on this connection", txid)
	}
	delete(ss.txs, txid)
	if f.Command == frame.ABORT {
		return nil // acks inside it are dropped: the messages stay delivered, to be acked again
	}
	if err := ss.srv.broker.Commit(context.Background(), tx.sends, tx.acks); err != nil {
		return ss.brokerError(err)
	}
	return nil
}
