// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package bridge

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/cairnmq/cairn/gateways/stomp"
)

// upstreamLimits bound what a link reads: generous, since upstream
// checked what it was sent, but bounded all the same.
var upstreamLimits = stomp.Limits{MaxHeaders: 10000, MaxHeaderBytes: 1 << 20, MaxBodyBytes: 256 << 20}

// errLinkLost fails what waited on an upstream connection that went down
// before answering.
var errLinkLost = errors.New("the upstream connection was lost")

// upstreamSub is what an upstream subscription delivers to: a relayed
// queue subscription, a topic's fan-out, a browse.
type upstreamSub interface {
	// subscribeFrame is the SUBSCRIBE to send on every (re)connect; nil
	// for one that ends with its connection (a browse).
	subscribeFrame() *frame.Frame
	// message takes one MESSAGE. It must not block.
	message(f *frame.Frame)
	// lost says the connection went down: what it delivered is stale.
	lost()
}

// waiter is one frame whose RECEIPT (or ERROR) someone waits for.
type waiter struct {
	seq    uint64       // issue order, for resends
	rid    string       // its receipt id
	sent   bool         // it went out on a connection (upstream may have it)
	f      *frame.Frame // sent again on every reconnect until answered (a SEND); nil: not
	done   chan error   // gets nil (RECEIPT), an *upstreamError (ERROR) or errLinkLost
	then   func(error)  // if set, called instead (nobody waits on done)
	answer sync.Once
}

func (w *waiter) finish(err error) {
	w.answer.Do(func() {
		if w.then != nil {
			w.then(err)
			return
		}
		w.done <- err
	})
}

// fatalError is one that retrying cannot cure (a loop of gateways).
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }

// upstreamError is an ERROR frame the upstream broker sent.
type upstreamError struct{ code, message string }

func (e *upstreamError) Error() string { return "upstream: " + e.message }

// link is one upstream STOMP connection, kept up across the upstream list
// (failover), with its own reader and writer on go-stomp's frame package:
// its reader never waits on a consumer (MESSAGEs go to subscriptions that
// queue them without blocking) and acks never wait on its reader, so it
// cannot deadlock as go-stomp's client does at a high prefetch.
type link struct {
	g       *Gateway
	name    string
	connect []string // extra CONNECT headers (a durable subscriber's client-id)

	mu       sync.Mutex
	up       chan struct{} // closed while connected; replaced when the connection goes
	conn     net.Conn
	out      []*frame.Frame // queued for the writer
	wake     chan struct{}
	subs     map[string]upstreamSub
	waiters  map[string]*waiter // by receipt id
	nextID   uint64
	closed   bool
	addr     string // the upstream connected to, for status
	connects int    // successful connections, for status
	since    time.Time
	lastErr  string

	// Health, for status: counted by the reader and writer.
	framesIn, framesOut atomic.Uint64
	bytesIn, bytesOut   atomic.Uint64
	lastIn              atomic.Int64 // Unix nanoseconds of the last frame read
	cairn               atomic.Bool  // the upstream last connected to is Cairn (its server header)
	canary              *canary
	watchdog            *watchdog

	done chan struct{} // closed when run returns
}

func newLink(g *Gateway, name string, connect ...string) *link {
	l := &link{g: g, name: name, connect: connect, up: make(chan struct{}), wake: make(chan struct{}, 1),
		subs: map[string]upstreamSub{}, waiters: map[string]*waiter{}, done: make(chan struct{}), since: time.Now()}
	if g.opts.CanaryEvery > 0 {
		l.canary = newCanary(l)
		l.subs[l.canary.id] = l.canary
		l.watchdog = newWatchdog(l)
		l.subs[l.watchdog.id] = l.watchdog
	}
	go l.run()
	return l
}

func (l *link) logger() *slog.Logger { return l.g.opts.Logger }

// cairnUpstream reports whether the broker the link last connected to is
// Cairn (a broker, or a gateway in front of one), by its server header.
func (l *link) cairnUpstream() bool { return l.cairn.Load() }

// id returns a fresh id for a subscription, receipt or transaction.
func (l *link) id(prefix string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nextID++
	return prefix + strconv.FormatUint(l.nextID, 10)
}

// waitUp waits until the link is connected, up to the gateway's wait.
func (l *link) waitUp(timeout time.Duration) error {
	l.mu.Lock()
	up, closed := l.up, l.closed
	l.mu.Unlock()
	if closed {
		return errClosed
	}
	select {
	case <-up:
		return nil
	case <-time.After(timeout):
		return errUnavailable(timeout)
	}
}

// send queues f for the writer if the link is up, and reports whether it
// did.
func (l *link) send(f *frame.Frame) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sendLocked(f)
}

func (l *link) sendLocked(f *frame.Frame) bool {
	if l.conn == nil {
		return false
	}
	l.out = append(l.out, f)
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return true
}

// request sends f with a receipt and returns the waiter for it. A
// resendable f (a SEND carrying a duplicate-suppression id) is kept while
// the link is down and sent again on every reconnect until answered; any
// other fails with errLinkLost when the connection goes.
func (l *link) request(f *frame.Frame, resendable bool) *waiter {
	return l.requestThen(f, resendable, nil)
}

// requestThen is request with then called on the answer instead of the
// waiter's channel (no goroutine waits). then may run with the link's lock
// held: it must not call back into the link.
func (l *link) requestThen(f *frame.Frame, resendable bool, then func(error)) *waiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nextID++
	rid := "r" + strconv.FormatUint(l.nextID, 10)
	f.Header.Set(frame.Receipt, rid)
	w := &waiter{seq: l.nextID, rid: rid, done: make(chan error, 1), then: then}
	if resendable {
		w.f = f
	}
	if l.closed {
		w.finish(errClosed)
		return w
	}
	l.waiters[rid] = w
	w.sent = l.sendLocked(f)
	if !w.sent && !resendable {
		delete(l.waiters, rid)
		w.finish(errLinkLost)
	}
	return w
}

// withdraw stops waiting for w and sending it again (its client gave up
// waiting), and reports whether it had gone out on a connection, so that
// upstream may have stored it: an answer that is not a RECEIPT must say
// so. If it is still queued for the writer, it is taken back unsent.
func (l *link) withdraw(w *waiter) (sent bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.waiters[w.rid] != w {
		return false // answered meanwhile
	}
	delete(l.waiters, w.rid)
	if i := slices.Index(l.out, w.f); i >= 0 && w.f != nil {
		l.out = slices.Delete(l.out, i, i+1)
		// Not on this connection; it may still have gone on a former one.
	}
	return w.sent
}

// addSub registers s under id and subscribes it now if the link is up
// (and on every reconnect).
func (l *link) addSub(id string, s upstreamSub) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.subs[id] = s
	if f := s.subscribeFrame(); f != nil {
		l.sendLocked(f)
	}
}

// subscribe registers s under id and sends its SUBSCRIBE with a receipt,
// in one step, so that neither a MESSAGE for it nor a reconnect's
// resubscription can come between.
func (l *link) subscribe(id string, s upstreamSub) *waiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nextID++
	rid := "r" + strconv.FormatUint(l.nextID, 10)
	w := &waiter{seq: l.nextID, done: make(chan error, 1)}
	f := s.subscribeFrame()
	f.Header.Set(frame.Receipt, rid)
	l.subs[id] = s
	if l.closed || !l.sendLocked(f) {
		w.finish(errLinkLost)
		return w
	}
	l.waiters[rid] = w
	return w
}

// reconnect ends the link's connection (it connects again, resubscribes
// and resends, as after any loss), for why.
func (l *link) reconnect(why string) {
	l.mu.Lock()
	c := l.conn
	l.mu.Unlock()
	if c != nil {
		l.logger().Warn("gateway: reconnecting the link", "link", l.name, "reason", why)
		c.Close()
	}
}

// removeSub forgets id and sends f (its UNSUBSCRIBE), if not nil.
func (l *link) removeSub(id string, f *frame.Frame) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.subs, id)
	if f != nil {
		l.sendLocked(f)
	}
}

// close ends the link: the connection is closed (upstream gives back what
// it had delivered and not been acknowledged) and every waiter fails.
func (l *link) close() {
	l.mu.Lock()
	l.closed = true
	c := l.conn
	for id, w := range l.waiters {
		w.finish(errClosed)
		delete(l.waiters, id)
	}
	l.mu.Unlock()
	if c != nil {
		c.Close()
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
	<-l.done
}

// run keeps the link connected until close: it dials the upstream list in
// turn with back-off, and after each connection is lost tells the
// subscriptions and fails what cannot be sent again.
func (l *link) run() {
	defer close(l.done)
	backoff := 50 * time.Millisecond
	next := 0
	for {
		l.mu.Lock()
		closed := l.closed
		l.mu.Unlock()
		if closed {
			return
		}
		addrs := l.g.opts.Upstream
		addr := addrs[next%len(addrs)]
		c, hb, err := l.dial(addr)
		var fe *fatalError
		if errors.As(err, &fe) {
			l.logger().Error("gateway: refusing the upstream", "link", l.name, "err", fe.err)
			l.g.fail(fe.err)
			return
		}
		if err != nil {
			next++
			if next%len(addrs) == 0 {
				// A full round of the list failed: wait before the next.
				l.logger().Warn("gateway: no upstream answers; retrying", "link", l.name, "upstream", addrs, "err", err, "in", backoff)
				time.Sleep(backoff)
				backoff = min(2*backoff, 2*time.Second)
			}
			continue
		}
		backoff = 50 * time.Millisecond
		l.serve(c, addr, hb)
	}
}

// heartBeats are the intervals agreed on CONNECTED: send is how often this
// side must send something, read how long it may wait for the other's.
type heartBeats struct{ send, read time.Duration }

// connectTimeout bounds one attempt to connect to one upstream, CONNECTED
// included: a broker answers CONNECT within milliseconds, and a frozen one
// (SIGSTOPped: its kernel still accepts the TCP connection) must not hold
// the link from the next address on the list for long.
func connectTimeout(o *Options) time.Duration { return min(o.Wait, 3*time.Second) }

// dial connects to addr and completes CONNECT.
func (l *link) dial(addr string) (net.Conn, heartBeats, error) {
	o := &l.g.opts
	var c net.Conn
	var err error
	if o.TLS != nil {
		cfg := o.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: connectTimeout(o)}, "tcp", addr, cfg)
	} else {
		c, err = net.DialTimeout("tcp", addr, connectTimeout(o))
	}
	if err != nil {
		return nil, heartBeats{}, err
	}
	hbMs := strconv.FormatInt(o.HeartBeat.Milliseconds(), 10)
	f := frame.New(frame.CONNECT, frame.AcceptVersion, "1.2", frame.Host, o.Host, frame.HeartBeat, hbMs+","+hbMs)
	if o.Login != "" {
		f.Header.Add(frame.Login, o.Login)
		f.Header.Add(frame.Passcode, o.Passcode)
	}
	for i := 0; i+1 < len(l.connect); i += 2 {
		f.Header.Add(l.connect[i], l.connect[i+1])
	}
	c.SetDeadline(time.Now().Add(connectTimeout(o)))
	if err := frame.NewWriter(c).Write(f); err != nil {
		c.Close()
		return nil, heartBeats{}, err
	}
	r := frame.NewReader(c)
	var resp *frame.Frame
	for resp == nil {
		if resp, err = r.Read(); err != nil {
			c.Close()
			return nil, heartBeats{}, err
		}
	}
	c.SetDeadline(time.Time{})
	if resp.Command != frame.CONNECTED {
		c.Close()
		return nil, heartBeats{}, fmt.Errorf("upstream %s refused CONNECT: %s", addr, resp.Header.Get("message"))
	}
	if err := l.g.checkPath(addr, resp.Header.Get(PathHeader)); err != nil {
		c.Close()
		return nil, heartBeats{}, &fatalError{err}
	}
	l.cairn.Store(strings.HasPrefix(resp.Header.Get("server"), "Cairn"))
	var hb heartBeats
	if sx, sy, err := frame.ParseHeartBeat(resp.Header.Get(frame.HeartBeat)); err == nil {
		// sx: the server sends every sx; sy: it wants ours every sy.
		if sy > 0 && o.HeartBeat > 0 {
			hb.send = max(sy, o.HeartBeat)
		}
		if sx > 0 && o.HeartBeat > 0 {
			hb.read = 3 * max(sx, o.HeartBeat)
		}
	}
	return c, hb, nil
}

// serve runs one connection: it resubscribes and resends, then reads until
// the connection fails, and cleans up after it.
func (l *link) serve(c net.Conn, addr string, hb heartBeats) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.Close()
		return
	}
	l.conn, l.addr, l.since, l.lastErr = c, addr, time.Now(), ""
	l.connects++
	l.out = l.out[:0]
	for _, s := range l.subs {
		if f := s.subscribeFrame(); f != nil {
			l.out = append(l.out, f)
		}
	}
	var resend []*waiter
	for _, w := range l.waiters {
		if w.f != nil {
			resend = append(resend, w)
		}
	}
	slices.SortFunc(resend, func(a, b *waiter) int { return int(a.seq - b.seq) })
	for _, w := range resend {
		l.out = append(l.out, w.f)
		w.sent = true
	}
	close(l.up)
	l.mu.Unlock()
	if l.connects > 1 || len(resend) > 0 {
		l.logger().Info("gateway: upstream connected", "link", l.name, "upstream", addr, "resubscribed", len(l.subs), "resent", len(resend))
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
	writerDone, stop := make(chan struct{}), make(chan struct{})
	go l.write(c, hb.send, stop, writerDone)
	canaryDone := make(chan struct{})
	var stalled error
	if l.canary != nil {
		go func() {
			defer close(canaryDone)
			if stalled = l.canary.watch(stop); stalled != nil {
				l.logger().Error("gateway: the link is stalled; reconnecting", "link", l.name, "upstream", addr, "reason", stalled)
				c.Close()
			}
		}()
		go l.watchdog.watch(stop)
	} else {
		close(canaryDone)
	}
	err := l.read(c, hb.read)
	c.Close()
	close(stop)
	<-writerDone
	<-canaryDone
	if stalled != nil {
		err = stalled
	}

	l.mu.Lock()
	l.conn, l.since = nil, time.Now()
	if err != nil {
		l.lastErr = err.Error()
	}
	l.up = make(chan struct{})
	for id, w := range l.waiters {
		if w.f == nil {
			w.finish(errLinkLost)
			delete(l.waiters, id)
		}
	}
	subs := make([]upstreamSub, 0, len(l.subs))
	for _, s := range l.subs {
		subs = append(subs, s)
	}
	closed := l.closed
	l.mu.Unlock()
	for _, s := range subs {
		s.lost()
	}
	if !closed {
		l.logger().Warn("gateway: upstream connection lost; reconnecting", "link", l.name, "upstream", addr, "err", err)
	}
}

// write sends what is queued, one write per batch, and a heart-beat when
// nothing was sent for every.
func (l *link) write(c net.Conn, every time.Duration, stop, done chan struct{}) {
	defer close(done)
	bw := bufio.NewWriterSize(c, 64<<10)
	fw := frame.NewWriter(struct{ io.Writer }{bw}) // its own flush per frame lands in bw
	var tick <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every / 2)
		defer t.Stop()
		tick = t.C
	}
	last := time.Now()
	var batch []*frame.Frame
	for {
		select {
		case <-stop:
			return
		case <-l.wake:
		case <-tick:
			if time.Since(last) >= every/2 {
				c.SetWriteDeadline(time.Now().Add(l.g.opts.Wait))
				if _, err := c.Write([]byte{'\n'}); err != nil {
					c.Close()
					return
				}
				last = time.Now()
			}
			continue
		}
		l.mu.Lock()
		if l.conn != c {
			l.mu.Unlock()
			return
		}
		batch, l.out = l.out, batch[:0]
		l.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		c.SetWriteDeadline(time.Now().Add(l.g.opts.Wait))
		for i, f := range batch {
			if err := fw.Write(f); err != nil {
				c.Close()
				return
			}
			l.bytesOut.Add(uint64(len(f.Body)))
			batch[i] = nil
		}
		l.framesOut.Add(uint64(len(batch)))
		if err := bw.Flush(); err != nil {
			c.Close()
			return
		}
		last = time.Now()
	}
}

// read takes frames off the connection until it fails.
func (l *link) read(c net.Conn, timeout time.Duration) error {
	r := stomp.NewFrameReader(c, upstreamLimits)
	for {
		if timeout > 0 {
			c.SetReadDeadline(time.Now().Add(timeout))
		}
		f, err := r.Read()
		if err != nil {
			return err
		}
		l.lastIn.Store(time.Now().UnixNano())
		if f == nil {
			continue // a heart-beat
		}
		l.framesIn.Add(1)
		l.bytesIn.Add(uint64(len(f.Body)))
		switch f.Command {
		case frame.MESSAGE:
			l.mu.Lock()
			s := l.subs[f.Header.Get(frame.Subscription)]
			l.mu.Unlock()
			if s != nil {
				s.message(f)
			}
		case frame.RECEIPT:
			l.answer(f.Header.Get(frame.ReceiptId), nil)
		case frame.ERROR:
			e := &upstreamError{code: f.Header.Get("code"), message: f.Header.Get("message")}
			if rid := f.Header.Get(frame.ReceiptId); rid != "" {
				l.answer(rid, e)
			}
			l.logger().Warn("gateway: upstream sent ERROR; the connection ends", "link", l.name, "code", e.code, "message", e.message)
			return e
		}
	}
}

// answer finishes the waiter of receipt id with err.
func (l *link) answer(id string, err error) {
	l.mu.Lock()
	w := l.waiters[id]
	delete(l.waiters, id)
	l.mu.Unlock()
	if w != nil {
		w.finish(err)
	}
}
