// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package bridge

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/gateways/stomp"
)

// Options configure a Gateway.
type Options struct {
	// Upstream lists the producer tier's brokers, host:port, tried in
	// turn: a master and its standbys.
	Upstream []string
	// Login, Passcode and Host go on every upstream CONNECT.
	Login, Passcode, Host string
	// TLS, if set, is used for every upstream connection (the upstream's
	// TLS listener; its ServerName defaults to each address's host).
	TLS *tls.Config
	// Links is how many upstream connections carry the local clients'
	// queue subscriptions and SENDs (default 4): each local connection
	// uses one, so that its transactions are one upstream transaction.
	Links int
	// HeartBeat is asked of every upstream connection both ways (default
	// 5s; 0: none).
	HeartBeat time.Duration
	// Wait bounds how long an operation waits for an upstream connection,
	// a RECEIPT or a CONNECTED (default 10s); past it the client gets
	// ERROR code:upstream-unavailable.
	Wait time.Duration
	// CanaryEvery is how often each link sends a canary through upstream
	// and back (default: HeartBeat, or 5s; negative: none); one not back
	// within three intervals marks the link stalled, and it reconnects.
	CanaryEvery time.Duration
	// MaxHops bounds a chain of gateways: this one may sit behind at most
	// MaxHops-1 others (default 3). A chain that would loop back to this
	// gateway is refused whatever its length.
	MaxHops int
	// PersistentByDefault mirrors the upstream's setting: a SEND without a
	// persistent header is relayed without one, and upstream decides.
	PersistentByDefault bool
	// Logger receives link events (default slog.Default()).
	Logger *slog.Logger
}

func (o *Options) fill() error {
	if len(o.Upstream) == 0 {
		return errors.New("gateway: no upstream broker")
	}
	if o.Links <= 0 {
		o.Links = 4
	}
	if o.MaxHops <= 0 {
		o.MaxHops = 3
	}
	if o.HeartBeat == 0 {
		o.HeartBeat = 5 * time.Second
	}
	if o.HeartBeat < 0 {
		o.HeartBeat = 0
	}
	if o.Wait <= 0 {
		o.Wait = 10 * time.Second
	}
	switch {
	case o.CanaryEvery == 0 && o.HeartBeat > 0:
		o.CanaryEvery = o.HeartBeat
	case o.CanaryEvery == 0:
		o.CanaryEvery = 5 * time.Second
	case o.CanaryEvery < 0:
		o.CanaryEvery = 0
	}
	if o.Host == "" {
		o.Host = "/"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

var errClosed = errors.New("gateway: closed")

func errUnavailable(waited time.Duration) error {
	return &stomp.Error{Code: stomp.CodeUpstreamUnavailable, Message: fmt.Sprintf("no upstream broker answered within %s", waited)}
}

// Gateway serves clients from an upstream broker: it implements
// stomp.Broker by relaying, and owns no message.
type Gateway struct {
	opts  Options
	id    string // names this gateway's ids upstream (duplicate suppression, transactions)
	links []*link

	topicMu sync.Mutex
	topics  map[topicKey]*topicGroup
	topicN  int

	durMu   sync.Mutex
	durLink map[string]*link // durable subscribers' own connections, by client-id
	durRefs map[string]int   // what uses each: relays, and an UNSUBSCRIBE under way

	linkN atomic.Uint64 // numbers links, for their canaries' topics
	// The chain of gateways behind this one, as its upstream last said
	// (PathHeader), and the first fatal error a link met (a loop).
	pathMu   sync.Mutex
	upPath   string
	fatal    chan struct{}
	fatalErr error
	nextSend atomic.Uint64
	nextSeq  atomic.Uint64 // local sequences for upstream message ids that are not Cairn's
}

// New connects the gateway's links to the upstream (in the background: a
// client that needs one waits up to Options.Wait).
func New(opts Options) (*Gateway, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	var b [6]byte
	rand.Read(b[:])
	g := &Gateway{opts: opts, id: "gw-" + hex.EncodeToString(b[:]), topics: map[topicKey]*topicGroup{}, durLink: map[string]*link{},
		durRefs: map[string]int{}, fatal: make(chan struct{})}
	g.nextSeq.Store(1 << 62) // far from any upstream's own sequences
	for i := range opts.Links {
		g.links = append(g.links, newLink(g, fmt.Sprint("link ", i)))
	}
	return g, nil
}

// Close ends every upstream connection: upstream gives back what was
// delivered through them and not acknowledged.
func (g *Gateway) Close() {
	g.durMu.Lock()
	for _, l := range g.durLink {
		l.close()
	}
	g.durMu.Unlock()
	for _, l := range g.links {
		l.close()
	}
}

// PathHeader is the CONNECTED header in which a gateway names itself and
// the gateways behind it, nearest first, so that a gateway chained behind
// it can refuse a loop or a chain too long.
const PathHeader = "cairn-gateway-path"

// ConnectedHeaders is what the gateway's listener adds to CONNECTED
// (stomp.Options.ConnectedHeaders): its path.
func (g *Gateway) ConnectedHeaders() []string {
	g.pathMu.Lock()
	defer g.pathMu.Unlock()
	path := g.id
	if g.upPath != "" {
		path += "," + g.upPath
	}
	return []string{PathHeader, path}
}

// checkPath takes the path an upstream's CONNECTED named: an error if
// this gateway is in it (a loop) or the chain would pass MaxHops.
func (g *Gateway) checkPath(addr, path string) error {
	if path == "" {
		return nil
	}
	hops := strings.Split(path, ",")
	if slices.Contains(hops, g.id) {
		return fmt.Errorf("gateway loop: upstream %s reaches this gateway (%s) again through %s; point --upstream at the producer tier", addr, g.id, path)
	}
	if len(hops)+1 > g.opts.MaxHops {
		return fmt.Errorf("gateway chain too long: upstream %s is behind %d gateways (%s), and this one makes %d, over the limit of %d", addr, len(hops), path, len(hops)+1, g.opts.MaxHops)
	}
	g.pathMu.Lock()
	g.upPath = path
	g.pathMu.Unlock()
	return nil
}

// fail records a fatal error, once: Fatal is then closed.
func (g *Gateway) fail(err error) {
	g.pathMu.Lock()
	defer g.pathMu.Unlock()
	if g.fatalErr == nil {
		g.fatalErr = err
		close(g.fatal)
	}
}

// Fatal is closed when the gateway cannot go on (its upstream loops back
// to it); Err says why.
func (g *Gateway) Fatal() <-chan struct{} { return g.fatal }

// Err is why Fatal was closed, or nil.
func (g *Gateway) Err() error {
	g.pathMu.Lock()
	defer g.pathMu.Unlock()
	return g.fatalErr
}

// Upstream is the upstream list, in the order it is tried.
func (g *Gateway) Upstream() []string { return append([]string(nil), g.opts.Upstream...) }

// linkFor is the link of the local connection conn.
func (g *Gateway) linkFor(conn uint64) *link { return g.links[conn%uint64(len(g.links))] }

// PersistentByDefault implements stomp.Broker.
func (g *Gateway) PersistentByDefault() bool { return g.opts.PersistentByDefault }

// AutoAckWaits implements stomp.Broker: an auto ack is queued for the
// link's writer and never waits.
func (g *Gateway) AutoAckWaits() bool { return false }

// sendFrame is the upstream SEND of m, with a duplicate-suppression id so
// that sending it again after a failover stores it once.
func (g *Gateway) sendFrame(m *core.Message) *frame.Frame {
	f := frame.New(frame.SEND, frame.Destination, destinationString(m.Destination))
	if m.Persistent {
		f.Header.Add("persistent", "true")
	}
	if m.Priority != 4 {
		f.Header.Add("priority", strconv.Itoa(int(m.Priority)))
	}
	if m.Expires != 0 {
		f.Header.Add("expires", strconv.FormatInt(m.Expires, 10))
	}
	dup := false
	for i := 0; i+1 < len(m.Header); i += 2 {
		if m.Header[i] == originHeader {
			continue // the gateway's to set
		}
		f.Header.Add(m.Header[i], m.Header[i+1])
		dup = dup || m.Header[i] == core.DedupHeader
	}
	if !dup {
		f.Header.Add(core.DedupHeader, g.id+"-"+strconv.FormatUint(g.nextSend.Add(1), 10))
	}
	if m.Destination.Kind == core.Topic && m.Origin != 0 {
		f.Header.Add(originHeader, g.id+":"+strconv.FormatUint(m.Origin, 10))
	}
	f.Body = m.Body
	return f
}

// SendMany implements stomp.Broker: each message is relayed with a
// receipt of the gateway's own, and sent again after a failover until
// upstream has confirmed it; nobody waits here.
func (g *Gateway) SendMany(ctx context.Context, msgs []*core.Message) error {
	for _, m := range msgs {
		dest := m.Destination.String()
		g.linkFor(m.Origin).requestThen(g.sendFrame(m), true, func(err error) {
			if err != nil {
				g.opts.Logger.Warn("gateway: upstream refused a SEND sent without a receipt", "destination", dest, "err", err)
			}
		})
	}
	return nil
}

// SendConfirmed implements stomp.Broker: confirmed runs once upstream has
// confirmed every message (so a RECEIPT from the gateway means what one
// from upstream means).
func (g *Gateway) SendConfirmed(ctx context.Context, msgs []*core.Message, confirmed func()) error {
	ws := make([]*waiter, len(msgs))
	ls := make([]*link, len(msgs))
	for i, m := range msgs {
		ls[i] = g.linkFor(m.Origin)
		ws[i] = ls[i].request(g.sendFrame(m), true)
	}
	for i, w := range ws {
		if err := g.await(ctx, w); err != nil {
			// The client is told no: nothing not yet sent goes later (a
			// SEND it was told failed must not be stored behind its back).
			inDoubt := false
			for j := i; j < len(ws); j++ {
				inDoubt = ls[j].withdraw(ws[j]) || inDoubt
			}
			var se *stomp.Error
			if errors.As(err, &se) && se.Code == stomp.CodeUpstreamUnavailable {
				if inDoubt {
					se.Message += "; it had gone to upstream before the connection was lost, so it may have been stored"
				} else {
					se.Message += "; nothing of it was stored"
				}
			}
			return err
		}
	}
	if confirmed != nil {
		confirmed()
	}
	return nil
}

// await waits for w's answer, up to Options.Wait while the link is down.
func (g *Gateway) await(ctx context.Context, w *waiter) error {
	select {
	case err := <-w.done:
		return upstreamErr(err)
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(g.opts.Wait):
		return errUnavailable(g.opts.Wait)
	}
}

// upstreamErr maps what a link reports to what the listener answers: an
// upstream ERROR keeps its code.
func upstreamErr(err error) error {
	var ue *upstreamError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ue):
		code := stomp.Code(ue.code)
		if code == "" {
			code = stomp.CodeInternalError
		}
		return &stomp.Error{Code: code, Message: ue.message}
	case errors.Is(err, errLinkLost):
		return &stomp.Error{Code: stomp.CodeUpstreamUnavailable, Message: "the upstream connection was lost before it answered; what was asked may or may not have been done"}
	case errors.Is(err, errClosed):
		return core.ErrClosed
	}
	return err
}

// Commit implements stomp.Broker: the transaction is one upstream
// transaction on the local connection's link, under an id of the
// gateway's own.
func (g *Gateway) Commit(ctx context.Context, sends []*core.Message, acks []stomp.Ack) error {
	var l *link
	switch {
	case len(acks) > 0:
		r, ok := acks[0].Sub.(*relay)
		if !ok {
			// Topic deliveries are acknowledged locally: nothing upstream.
			l = g.links[0]
		} else {
			l = r.l
		}
	case len(sends) > 0:
		l = g.linkFor(sends[0].Origin)
	default:
		return nil
	}
	if err := l.waitUp(g.opts.Wait); err != nil {
		return err
	}
	tx := g.id + "-" + l.id("tx")
	frames := []*frame.Frame{frame.New(frame.BEGIN, frame.Transaction, tx)}
	for _, m := range sends {
		f := g.sendFrame(m)
		f.Header.Add(frame.Transaction, tx)
		frames = append(frames, f)
	}
	var local []func()
	for _, a := range acks {
		switch s := a.Sub.(type) {
		case *relay:
			if s.l != l {
				return &stomp.Error{Code: stomp.CodeBadHeader, Message: "a transaction's acknowledgements came through different upstream connections"}
			}
			f, _ := s.ackFrame(a.Seq, frame.ACK)
			if f == nil {
				continue // acknowledged since, or given on a lost connection: upstream gives it again
			}
			f.Header.Add(frame.Transaction, tx)
			frames = append(frames, f)
		default:
			seq, sub := a.Seq, a.Sub
			local = append(local, func() { sub.Ack(ctx, seq) })
		}
	}
	for _, f := range frames {
		if !l.send(f) {
			return upstreamErr(errLinkLost)
		}
	}
	if err := g.await(ctx, l.request(frame.New(frame.COMMIT, frame.Transaction, tx), false)); err != nil {
		return err
	}
	for _, f := range local {
		f()
	}
	return nil
}

// Subscribe implements stomp.Broker. A queue subscription is relayed as
// an upstream subscription of its own, on the local connection's link, so
// that upstream dispatches to it as to any consumer. A topic subscription
// joins the gateway's one upstream subscription of that topic and
// selector, which fans out here.
func (g *Gateway) Subscribe(dest core.Destination, opts core.SubscribeOptions, c core.Consumer) (stomp.Subscription, error) {
	if dest.Kind == core.Topic {
		return g.subscribeTopic(dest, opts, c)
	}
	l := g.linkFor(opts.Connection)
	r := newRelay(g, l, l.id("q"), dest, opts, c, nil)
	if err := r.start(); err != nil {
		return nil, err
	}
	return r, nil
}

// SubscribeDurable implements stomp.Broker: the durable subscription lives
// upstream, on a connection of the client-id's own (upstream owns durable
// subscriptions by client-id, and enforces one subscriber at a time).
func (g *Gateway) SubscribeDurable(ctx context.Context, clientID, name string, topic core.Destination, opts core.SubscribeOptions, c core.Consumer) (stomp.Subscription, error) {
	l := g.durableLink(clientID)
	r := newRelay(g, l, l.id("d"), topic, opts, c, []string{"activemq.subscriptionName", name})
	r.release = func() { g.releaseDurableLink(clientID) }
	if err := r.start(); err != nil {
		r.release()
		return nil, err
	}
	return r, nil
}

// durableLink is the connection of client-id clientID's durable
// subscriptions, made on first use; releaseDurableLink closes it once
// nothing uses it, so that the client's durable subscriptions can move to
// another gateway (upstream allows one connection per client-id).
func (g *Gateway) durableLink(clientID string) *link {
	g.durMu.Lock()
	defer g.durMu.Unlock()
	l := g.durLink[clientID]
	if l == nil {
		l = newLink(g, "durable "+clientID, "client-id", clientID)
		g.durLink[clientID] = l
	}
	g.durRefs[clientID]++
	return l
}

func (g *Gateway) releaseDurableLink(clientID string) {
	g.durMu.Lock()
	var l *link
	if g.durRefs[clientID]--; g.durRefs[clientID] <= 0 {
		l = g.durLink[clientID]
		delete(g.durLink, clientID)
		delete(g.durRefs, clientID)
	}
	g.durMu.Unlock()
	if l != nil {
		go l.close() // it waits for the link's goroutine: not on the caller's
	}
}

// UnsubscribeDurable implements stomp.Broker. Upstream knows the
// gateway's user, not the client's: ownership by user is the upstream's
// business only for clients connected to it directly.
func (g *Gateway) UnsubscribeDurable(ctx context.Context, clientID, name, user string) error {
	l := g.durableLink(clientID)
	defer g.releaseDurableLink(clientID)
	if err := l.waitUp(g.opts.Wait); err != nil {
		return err
	}
	f := frame.New(frame.UNSUBSCRIBE, frame.Id, l.id("u"), "activemq.subscriptionName", name)
	return g.await(ctx, l.request(f, false))
}

// Browse implements stomp.Broker: an upstream browser subscription, read
// to its end.
func (g *Gateway) Browse(queue string) ([]*core.Message, bool) {
	l := g.links[0]
	if l.waitUp(g.opts.Wait) != nil {
		return nil, false
	}
	b := &browser{g: g, done: make(chan struct{})}
	id := l.id("b")
	l.addSub(id, b)
	defer l.removeSub(id, frame.New(frame.UNSUBSCRIBE, frame.Id, id))
	if !l.send(frame.New(frame.SUBSCRIBE, frame.Id, id, frame.Destination, "/queue/"+queue, "browser", "true", frame.Ack, "auto")) {
		return nil, false
	}
	select {
	case <-b.done:
	case <-time.After(g.opts.Wait):
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.msgs, true
}

// DeleteQueue implements stomp.Broker. STOMP has no frame to delete a
// queue: a local connection's temporary queues are left to upstream.
func (g *Gateway) DeleteQueue(ctx context.Context, name string) error { return nil }

// browser collects a browse's MESSAGEs until browser:end.
type browser struct {
	g    *Gateway
	mu   sync.Mutex
	msgs []*core.Message
	once sync.Once
	done chan struct{}
}

func (b *browser) subscribeFrame() *frame.Frame { return nil }
func (b *browser) lost()                        { b.once.Do(func() { close(b.done) }) }
func (b *browser) message(f *frame.Frame) {
	if f.Header.Get("browser") == "end" {
		b.once.Do(func() { close(b.done) })
		return
	}
	m, _, _ := b.g.messageOf(f)
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
}
