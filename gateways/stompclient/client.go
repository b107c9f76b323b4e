// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package stompclient is a failover-aware STOMP client for Go, built on
// go-stomp's client: it connects to the first broker of a list that
// answers, and when the connection is lost it reconnects across the list
// (a master/standby group lists every member; only the master listens),
// resubscribes every subscription, and sends again every SEND whose
// RECEIPT had not come back.
//
// Delivery is at least once. A SEND sent again after a lost connection may
// have been stored the first time, and is then stored twice. A message
// delivered on a lost connection and not yet acknowledged is delivered again
// (with redelivered:true) after the reconnection; its Ack on the old
// connection returns ErrStale.
package stompclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
)

// Options configures a Client.
type Options struct {
	// Addrs are the brokers' STOMP addresses (host:port), tried in order.
	Addrs []string
	// Login, Passcode and Host go in CONNECT.
	Login, Passcode, Host string
	// ConnectTimeout bounds one connection attempt (TCP and CONNECT) to one
	// address (default 2s).
	ConnectTimeout time.Duration
	// ReceiptTimeout is how long a RECEIPT may take before the connection
	// is taken for lost and the SEND is sent again (default 10s).
	ReceiptTimeout time.Duration
	// HeartBeat is the heart-beat interval asked for both ways (default
	// 10s; negative: none). A dead broker host is noticed within about two.
	HeartBeat time.Duration
	// RetryMin and RetryMax bound the back-off between rounds over Addrs
	// when none answers (defaults 50ms and 2s).
	RetryMin, RetryMax time.Duration
	// Logger receives connection events (default slog.Default()).
	Logger *slog.Logger
	// OnConnect, if set, is called after every connection, with the address.
	OnConnect func(addr string)
}

func (o *Options) fill() error {
	if len(o.Addrs) == 0 {
		return errors.New("stompclient: no addresses")
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 2 * time.Second
	}
	if o.ReceiptTimeout <= 0 {
		o.ReceiptTimeout = 10 * time.Second
	}
	if o.HeartBeat == 0 {
		o.HeartBeat = 10 * time.Second
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 50 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Host == "" {
		o.Host = "/"
	}
	return nil
}

// Errors.
var (
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("stompclient: closed")
	// ErrStale is returned by Ack and Nack for a message that came on a
	// connection since lost: the broker delivers it again.
	ErrStale = errors.New("stompclient: message came on a lost connection; it will be redelivered")
)

// Stats counts what a Client has done.
type Stats struct {
	Connects int64 // connections made, the first included
	Resends  int64 // SENDs sent again after a lost connection
}

// Client is a STOMP connection that survives the loss of its broker. It is
// safe for concurrent use.
type Client struct {
	opts Options

	mu      sync.Mutex
	conn    *gostomp.Conn // nil while disconnected
	nc      net.Conn
	addr    string
	gen     uint64        // connection generation, bumped on each connection
	next    int           // index in Addrs to try first
	dialing bool          // a dial loop runs
	ready   chan struct{} // closed when a connection is up (or the client closed)
	closed  bool
	quit    chan struct{}
	wg      sync.WaitGroup

	connects, resends atomic.Int64
	id                string       // names this client's SENDs for duplicate suppression
	sends             atomic.Int64 // numbers them
}

// Dial connects to the first address that answers, trying the list until
// ctx ends.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	c := &Client{opts: opts, ready: make(chan struct{}), quit: make(chan struct{}), id: hex.EncodeToString(rnd[:])}
	if _, _, err := c.current(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Addr is the address of the broker connected to now ("" while
// reconnecting).
func (c *Client) Addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addr
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	return Stats{Connects: c.connects.Load(), Resends: c.resends.Load()}
}

// current returns the live connection, waiting for one (and starting the
// dial loop) if there is none.
func (c *Client) current(ctx context.Context) (*gostomp.Conn, uint64, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, 0, ErrClosed
		}
		if c.conn != nil {
			conn, gen := c.conn, c.gen
			c.mu.Unlock()
			return conn, gen, nil
		}
		if !c.dialing {
			c.dialing = true
			c.wg.Add(1)
			go c.dialLoop()
		}
		ready := c.ready
		c.mu.Unlock()
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}

// broken retires connection generation gen, if it is still the current one.
func (c *Client) broken(gen uint64, why error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.conn == nil {
		return
	}
	c.opts.Logger.Info("stompclient: connection lost; reconnecting", "addr", c.addr, "err", why)
	c.nc.Close() // unblocks go-stomp wherever it waits
	c.conn, c.nc, c.addr = nil, nil, ""
}

// dialLoop connects to the first address that answers, in rounds over the
// list with a growing pause between rounds, until it connects or the
// client is closed.
func (c *Client) dialLoop() {
	defer c.wg.Done()
	pause := c.opts.RetryMin
	for {
		c.mu.Lock()
		start := c.next
		c.mu.Unlock()
		for i := range c.opts.Addrs {
			k := (start + i) % len(c.opts.Addrs)
			addr := c.opts.Addrs[k]
			nc, conn, err := c.connect(addr)
			if err != nil {
				c.opts.Logger.Debug("stompclient: connect failed", "addr", addr, "err", err)
				continue
			}
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				nc.Close()
				return
			}
			c.conn, c.nc, c.addr = conn, nc, addr
			c.gen++
			c.next = (k + 1) % len(c.opts.Addrs) // if this one fails, try the others first
			c.dialing = false
			close(c.ready)
			c.ready = make(chan struct{})
			c.mu.Unlock()
			c.connects.Add(1)
			c.opts.Logger.Info("stompclient: connected", "addr", addr)
			if c.opts.OnConnect != nil {
				c.opts.OnConnect(addr)
			}
			return
		}
		select {
		case <-c.quit:
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, c.opts.RetryMax)
	}
}

func (c *Client) connect(addr string) (net.Conn, *gostomp.Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, c.opts.ConnectTimeout)
	if err != nil {
		return nil, nil, err
	}
	nc.SetDeadline(time.Now().Add(c.opts.ConnectTimeout))
	opts := []func(*gostomp.Conn) error{
		gostomp.ConnOpt.Host(c.opts.Host),
		gostomp.ConnOpt.RcvReceiptTimeout(c.opts.ReceiptTimeout),
		gostomp.ConnOpt.UnsubscribeReceiptTimeout(c.opts.ReceiptTimeout),
		gostomp.ConnOpt.MsgSendTimeout(c.opts.ReceiptTimeout),
		gostomp.ConnOpt.Logger(debugLogger{c.opts.Logger}),
	}
	if c.opts.Login != "" {
		opts = append(opts, gostomp.ConnOpt.Login(c.opts.Login, c.opts.Passcode))
	}
	if c.opts.HeartBeat > 0 {
		opts = append(opts, gostomp.ConnOpt.HeartBeat(c.opts.HeartBeat, c.opts.HeartBeat))
	} else {
		opts = append(opts, gostomp.ConnOpt.HeartBeat(0, 0))
	}
	conn, err := gostomp.Connect(nc, opts...)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	nc.SetDeadline(time.Time{})
	return nc, conn, nil
}

// DedupHeader is set on every SEND (unless the caller sets it) to an id
// unique to the SEND and kept when it is sent again; see core.DedupHeader.
const DedupHeader = "_AMQ_DUPL_ID"

// permanent lists the ERROR codes (Cairn's) that sending again cannot cure.
var permanent = map[string]bool{
	"malformed-frame": true, "frame-too-large": true, "too-many-headers": true, "header-too-large": true,
	"missing-header": true, "bad-header": true, "bad-destination": true, "unknown-transaction": true,
}

// Send sends a SEND with a receipt and returns once the broker confirmed
// it. If the connection is lost first, it reconnects and sends again, until
// ctx ends. headers are name, value pairs ("persistent", "true", ...). An
// ERROR the broker means for the frame itself (a bad destination, a frame
// too large) is returned, not retried.
func (c *Client) Send(ctx context.Context, destination string, body []byte, headers ...string) error {
	if len(headers)%2 != 0 {
		return fmt.Errorf("stompclient: headers come in name, value pairs; got %d strings", len(headers))
	}
	var contentType string
	opts := []func(*frame.Frame) error{gostomp.SendOpt.Receipt}
	named := false
	for i := 0; i < len(headers); i += 2 {
		switch headers[i] {
		case frame.ContentType:
			contentType = headers[i+1]
			continue
		case DedupHeader:
			named = true
		}
		opts = append(opts, gostomp.SendOpt.Header(headers[i], headers[i+1]))
	}
	if !named {
		// The same id on every attempt: a broker that stored the first one
		// (Cairn, ActiveMQ Artemis) confirms the next without storing it.
		opts = append(opts, gostomp.SendOpt.Header(DedupHeader, fmt.Sprintf("%s-%d", c.id, c.sends.Add(1))))
	}
	for attempt := 0; ; attempt++ {
		conn, gen, err := c.current(ctx)
		if err != nil {
			return err
		}
		if attempt > 0 {
			c.resends.Add(1)
		}
		err = conn.Send(destination, contentType, body, opts...)
		if err == nil {
			return nil
		}
		var se gostomp.Error
		if errors.As(err, &se) && se.Frame != nil && permanent[se.Frame.Header.Get("code")] {
			c.broken(gen, err) // go-stomp closes a connection that got an ERROR
			return fmt.Errorf("stompclient: send to %s: %w", destination, err)
		}
		c.broken(gen, err)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// Subscription is a subscription that follows the client across
// reconnections. Messages arrive on C until Unsubscribe or Close.
type Subscription struct {
	C <-chan *gostomp.Message

	c       *Client
	dest    string
	mode    gostomp.AckMode
	opts    []func(*frame.Frame) error
	out     chan *gostomp.Message
	stop    chan struct{}
	ended   chan struct{} // closed when the pump is done
	once    sync.Once
	mu      sync.Mutex
	current *gostomp.Subscription
	gen     uint64 // the connection current is on
}

// Subscribe subscribes to destination and keeps the subscription across
// reconnections. headers are name, value pairs ("activemq.prefetchSize",
// "100", ...).
func (c *Client) Subscribe(destination string, mode gostomp.AckMode, headers ...string) (*Subscription, error) {
	if len(headers)%2 != 0 {
		return nil, fmt.Errorf("stompclient: headers come in name, value pairs; got %d strings", len(headers))
	}
	s := &Subscription{c: c, dest: destination, mode: mode, out: make(chan *gostomp.Message), stop: make(chan struct{}),
		ended: make(chan struct{})}
	s.C = s.out
	for i := 0; i < len(headers); i += 2 {
		s.opts = append(s.opts, gostomp.SubscribeOpt.Header(headers[i], headers[i+1]))
	}
	// Subscribe once now, so that a bad subscription is an error here.
	conn, gen, err := c.current(context.Background())
	if err != nil {
		return nil, err
	}
	gs, err := conn.Subscribe(destination, mode, s.opts...)
	if err != nil {
		c.broken(gen, err)
		return nil, fmt.Errorf("stompclient: subscribe %s: %w", destination, err)
	}
	c.wg.Add(1)
	go s.pump(gs, gen)
	return s, nil
}

// pump forwards messages to C, subscribing again on each new connection.
// It reads go-stomp's channel at once into a queue of its own: go-stomp
// reads RECEIPTs and writes frames on the goroutine that hands out
// MESSAGEs, so an application that waits for a receipt (AckWait) while
// messages back up would stall its own connection. The broker's prefetch
// bounds the queue.
func (s *Subscription) pump(gs *gostomp.Subscription, gen uint64) {
	defer s.c.wg.Done()
	defer close(s.ended)
	defer close(s.out)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
		case <-s.c.quit:
		}
		cancel()
	}()
	type resub struct {
		gs  *gostomp.Subscription
		gen uint64
	}
	again := make(chan resub, 1)
	resubscribe := func() {
		for {
			conn, gen, err := s.c.current(ctx)
			if err != nil {
				return
			}
			gs, err := conn.Subscribe(s.dest, s.mode, s.opts...)
			if err != nil {
				s.c.broken(gen, err)
				continue
			}
			s.c.opts.Logger.Info("stompclient: subscribed again", "destination", s.dest, "addr", s.c.Addr())
			again <- resub{gs, gen}
			return
		}
	}
	var queue []*gostomp.Message
	for {
		s.mu.Lock()
		s.current, s.gen = gs, gen
		s.mu.Unlock()
		var in <-chan *gostomp.Message
		if gs != nil {
			in = gs.C
		}
		var out chan<- *gostomp.Message
		var head *gostomp.Message
		if len(queue) > 0 {
			out, head = s.out, queue[0]
		}
		select {
		case <-ctx.Done():
			s.drain(gs)
			return
		case m, ok := <-in:
			if ctx.Err() != nil {
				if !ok {
					return // the subscription's end, or the connection's
				}
				continue // stopping: drain takes it from here
			}
			if ok && m.Err == nil {
				queue = append(queue, m)
				continue
			}
			err := error(gostomp.ErrClosedUnexpectedly)
			if ok {
				err = m.Err
			}
			s.c.broken(gen, err)
			// What is queued came on the lost connection: the broker
			// delivers it again.
			clear(queue)
			queue = queue[:0]
			gs = nil
			go resubscribe()
		case out <- head:
			queue[0] = nil
			queue = queue[1:]
		case r := <-again:
			gs, gen = r.gs, r.gen
		}
	}
}

// Ack acknowledges m. For a message that came on a connection since lost
// (before or while the ACK is sent) it returns ErrStale: the broker has it
// back and delivers it again.
func (s *Subscription) Ack(m *gostomp.Message) error { return s.settle(m, m.Conn.Ack) }

// settle sends m's ACK or NACK on the connection m came on.
func (s *Subscription) settle(m *gostomp.Message, send func(*gostomp.Message) error) error {
	if !s.c.live(m) {
		return ErrStale
	}
	err := send(m)
	if err != nil && (errors.Is(err, gostomp.ErrClosedUnexpectedly) || !s.c.live(m)) {
		// The connection went while the frame was sent: the message is
		// still unacknowledged on it, so the broker has it back.
		return ErrStale
	}
	return err
}

// AckWait acknowledges m and returns once the broker has confirmed it (the
// ACK goes in a transaction committed with a receipt, as STOMP gives an ACK
// no receipt of its own through go-stomp). After it returns nil, m is never
// delivered again. ErrStale as for Ack.
func (s *Subscription) AckWait(m *gostomp.Message) error {
	if !s.c.live(m) {
		return ErrStale
	}
	tx, err := m.Conn.BeginWithError()
	if err == nil {
		if err = tx.Ack(m); err == nil {
			err = tx.CommitWithReceipt()
		}
	}
	if err != nil {
		// A receipt that did not come means a connection not to trust
		// (and go-stomp cannot take a late one): reconnect.
		s.c.mu.Lock()
		gen := s.c.gen
		s.c.mu.Unlock()
		s.c.broken(gen, err)
	}
	return err
}

// Nack gives m back to the broker, like Ack for a lost connection.
func (s *Subscription) Nack(m *gostomp.Message) error { return s.settle(m, m.Conn.Nack) }

// live reports whether m came on the current connection.
func (c *Client) live(m *gostomp.Message) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return m.Conn != nil && m.Conn == c.conn
}

// drain reads what the broker still delivers to gs once the subscription
// is being ended, until go-stomp closes its channel (the UNSUBSCRIBE's
// RECEIPT came, or the connection went), the client closes, or a receipt
// timeout passes. go-stomp hands MESSAGEs and that RECEIPT to the
// subscription through one 16-slot channel: unread, the RECEIPT cannot get
// through, and the whole connection stalls. What is read here is not
// acknowledged: the broker has it back when the subscription ends.
func (s *Subscription) drain(gs *gostomp.Subscription) {
	if gs == nil {
		return
	}
	select {
	case <-s.stop:
	default:
		return // the client is closing: it disconnects
	}
	timer := time.NewTimer(s.c.opts.ReceiptTimeout + time.Second)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-gs.C:
			if !ok {
				return
			}
		case <-timer.C:
			return
		case <-s.c.quit:
			return
		}
	}
}

// Unsubscribe ends the subscription. It returns once the broker has
// confirmed it (or the connection it was on is gone): while it waits,
// what the broker still delivers is dropped, unacknowledged.
func (s *Subscription) Unsubscribe() error {
	s.once.Do(func() { close(s.stop) })
	s.mu.Lock()
	gs, gen := s.current, s.gen
	s.mu.Unlock()
	s.c.mu.Lock()
	live := s.c.conn != nil && s.c.gen == gen
	s.c.mu.Unlock()
	if gs == nil || !live {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- gs.Unsubscribe() }()
	select {
	case err := <-done:
		return err
	case <-s.ended:
		// The pump saw the channel closed: the RECEIPT came (without one,
		// go-stomp's wait, bounded by ReceiptTimeout, answers first; the
		// pump's drain waits a second longer). go-stomp's Unsubscribe may
		// still be waiting here: it can miss the wake-up of a RECEIPT that
		// comes back at once.
		return nil
	}
}

// Close disconnects and stops every subscription.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.closed = true
	close(c.quit)
	close(c.ready)
	conn, nc := c.conn, c.nc
	c.conn = nil
	c.mu.Unlock()
	var err error
	if conn != nil {
		done := make(chan error, 1)
		go func() { done <- conn.Disconnect() }()
		select {
		case err = <-done:
		case <-time.After(c.opts.ReceiptTimeout):
		}
		nc.Close()
	}
	c.wg.Wait()
	return err
}

// debugLogger sends go-stomp's log lines to slog at debug level: the
// client reports what matters (lost connections, reconnections) itself.
type debugLogger struct{ l *slog.Logger }

func (d debugLogger) Debugf(f string, v ...any)   { d.l.Debug("go-stomp: " + fmt.Sprintf(f, v...)) }
func (d debugLogger) Infof(f string, v ...any)    { d.l.Debug("go-stomp: " + fmt.Sprintf(f, v...)) }
func (d debugLogger) Warningf(f string, v ...any) { d.l.Debug("go-stomp: " + fmt.Sprintf(f, v...)) }
func (d debugLogger) Errorf(f string, v ...any)   { d.l.Debug("go-stomp: " + fmt.Sprintf(f, v...)) }
func (d debugLogger) Debug(m string)              { d.l.Debug("go-stomp: " + m) }
func (d debugLogger) Info(m string)               { d.l.Debug("go-stomp: " + m) }
func (d debugLogger) Warning(m string)            { d.l.Debug("go-stomp: " + m) }
func (d debugLogger) Error(m string)              { d.l.Debug("go-stomp: " + m) }
