// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package bridge

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/cairnmq/cairn/core"
)

// destinationString is how upstream names d: a temporary destination of a
// local connection is reached there as a remote one.
func destinationString(d core.Destination) string {
	if rest, ok := strings.CutPrefix(d.Name, "$temp:"); ok {
		return "/remote-temp-" + d.Kind.String() + "/" + rest
	}
	return d.String()
}

// Headers of an upstream MESSAGE that the local listener writes itself.
var messageOnly = map[string]bool{
	frame.Destination: true, frame.MessageId: true, frame.Subscription: true, frame.Ack: true,
	frame.ContentLength: true, "redelivered": true, "persistent": true, "priority": true,
	"expires": true, "timestamp": true, originHeader: true,
}

// originHeader marks a topic message a gateway relays with the gateway and
// the local connection that sent it (gateway-id:connection), so that the
// gateway's own activemq.noLocal subscribers can leave it out when upstream
// sends it back; gateways never pass it on to their clients.
const originHeader = "cairn-gateway-origin"

// messageOf turns an upstream MESSAGE into the message a local client is
// given, and returns what acknowledges it upstream. A Cairn upstream's
// message-id is kept (its sequence is the message's identity on every
// gateway); another broker's gets a local sequence.
func (g *Gateway) messageOf(f *frame.Frame) (m *core.Message, ackID string, redelivered bool) {
	h := f.Header
	id := h.Get(frame.MessageId)
	ackID = h.Get(frame.Ack)
	if ackID == "" {
		ackID = id
	}
	m = &core.Message{Priority: 4, Body: f.Body}
	if seq, ok := core.ParseID(id); ok {
		m.Seq = seq
	} else {
		m.Seq = g.nextSeq.Add(1)
	}
	if d, err := core.ParseDestination(h.Get(frame.Destination)); err == nil {
		m.Destination = d
	}
	m.Persistent = h.Get("persistent") == "true"
	if p, err := strconv.Atoi(h.Get("priority")); err == nil && p >= 0 && p <= 9 {
		m.Priority = uint8(p)
	}
	if o, ok := strings.CutPrefix(h.Get(originHeader), g.id+":"); ok {
		m.Origin, _ = strconv.ParseUint(o, 10, 64)
	}
	m.Expires, _ = strconv.ParseInt(h.Get("expires"), 10, 64)
	m.Timestamp, _ = strconv.ParseInt(h.Get("timestamp"), 10, 64)
	for i := range h.Len() {
		k, v := h.GetAt(i)
		if !messageOnly[k] {
			m.Header = append(m.Header, k, v)
		}
	}
	return m, ackID, h.Get("redelivered") == "true"
}

// relay is a local queue (or durable topic) subscription relayed upstream
// as a subscription of its own: upstream dispatches to it as to any of its
// consumers, so prefetch, priority, selectors, exclusive consumers and
// message groups hold unchanged, and a message is upstream's until the
// local consumer's acknowledgement is confirmed there.
type relay struct {
	g       *Gateway
	l       *link
	id      string
	dest    core.Destination
	opts    core.SubscribeOptions
	c       core.Consumer
	extra   []string // more SUBSCRIBE headers (a durable subscription's name)
	release func()   // called once when it closes (a durable's link)

	mu     sync.Mutex
	live   map[uint64]string // delivered upstream, not acknowledged: seq -> upstream ack id
	order  []uint64          // delivery order, for cumulative acks
	closed bool
	// The client's prefetch holds across a failover: what the client was
	// given on a lost connection still counts against it (given) until
	// it acknowledges it, and what upstream delivers again meanwhile waits
	// here (held) rather than go past the prefetch.
	given       int             // given to the client, not yet acknowledged by it
	lastMessage time.Time       // when upstream last delivered to it (or it subscribed), for the watchdog
	held        []core.Delivery // delivered upstream, not yet given
	stale       map[uint64]bool // given on a lost connection: its ack is dropped (upstream redelivers it)
	twice       map[uint64]int  // given again before the client acked the stale copy: acks owed
}

func newRelay(g *Gateway, l *link, id string, dest core.Destination, opts core.SubscribeOptions, c core.Consumer, extra []string) *relay {
	return &relay{g: g, l: l, id: id, dest: dest, opts: opts, c: c, extra: extra, lastMessage: time.Now(),
		live: map[uint64]string{}, stale: map[uint64]bool{}, twice: map[uint64]int{}}
}

// start subscribes upstream and waits for its receipt, so that the local
// RECEIPT means subscribed upstream too.
func (r *relay) start() error {
	if err := r.l.waitUp(r.g.opts.Wait); err != nil {
		return err
	}
	w := r.l.subscribe(r.id, r)
	if err := r.g.await(context.Background(), w); err != nil {
		r.l.removeSub(r.id, nil)
		return err
	}
	return nil
}

func (r *relay) subscribeFrame() *frame.Frame {
	ack := "client-individual"
	if r.opts.Mode == core.AckClient {
		ack = "client" // cumulative upstream too: the relay is one for one
	}
	f := frame.New(frame.SUBSCRIBE, frame.Id, r.id, frame.Destination, destinationString(r.dest), frame.Ack, ack)
	if r.opts.Prefetch > 0 {
		f.Header.Add("activemq.prefetchSize", strconv.Itoa(r.opts.Prefetch))
	}
	if r.opts.Priority != 0 {
		f.Header.Add("activemq.priority", strconv.Itoa(r.opts.Priority))
	}
	if r.opts.Exclusive {
		f.Header.Add("activemq.exclusive", "true")
	}
	if r.opts.Selector != nil {
		f.Header.Add("selector", r.opts.Selector.String())
	}
	for i := 0; i+1 < len(r.extra); i += 2 {
		f.Header.Add(r.extra[i], r.extra[i+1])
	}
	return f
}

// limit is the client's prefetch (upstream's default when it named none).
func (r *relay) limit() int {
	if r.opts.Prefetch > 0 {
		return r.opts.Prefetch
	}
	return 1000
}

func (r *relay) message(f *frame.Frame) {
	m, ackID, redelivered := r.g.messageOf(f)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.live[m.Seq] = ackID
	r.order = append(r.order, m.Seq)
	r.lastMessage = time.Now()
	d := core.Delivery{Msg: m, Redelivered: redelivered}
	if r.given >= r.limit() || len(r.held) > 0 {
		r.held = append(r.held, d)
		r.mu.Unlock()
		return
	}
	r.giveLocked(d)
	r.mu.Unlock()
}

// giveLocked hands d to the client. A copy of a message the client still
// holds from a lost connection owes one more ack.
func (r *relay) giveLocked(d core.Delivery) {
	if r.stale[d.Msg.Seq] {
		delete(r.stale, d.Msg.Seq)
		r.twice[d.Msg.Seq]++
	}
	r.given++
	r.c.Deliver(d) // does not block
}

// acknowledgedLocked notes that the client acknowledged n of what it was
// given, and gives it what waited for room.
func (r *relay) acknowledgedLocked(n int) {
	r.given = max(0, r.given-n)
	for len(r.held) > 0 && r.given < r.limit() {
		d := r.held[0]
		r.held[0] = core.Delivery{}
		r.held = r.held[1:]
		r.giveLocked(d)
	}
}

// lost marks what the client was given as stale: upstream gives it back
// (marked redelivered) to this or another consumer, and the client's ack
// of it is dropped, not an error. What waited here is simply gone.
func (r *relay) lost() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.held {
		delete(r.live, d.Msg.Seq)
	}
	r.held = nil
	for seq := range r.live {
		r.stale[seq] = true
	}
	clear(r.live)
	r.order = r.order[:0]
}

// take removes what the client's ack of seq acknowledges (in client mode,
// every earlier delivery) and returns seq's upstream ack id; ok false if
// seq is not live upstream (forgiven: the client's copy came from a lost
// connection, and the ack is dropped without error).
func (r *relay) take(seq uint64) (id string, ok, forgiven bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.twice[seq] > 0 {
		if r.twice[seq]--; r.twice[seq] == 0 {
			delete(r.twice, seq)
		}
		r.acknowledgedLocked(1)
		return "", false, true
	}
	if r.stale[seq] {
		delete(r.stale, seq)
		r.acknowledgedLocked(1)
		return "", false, true
	}
	id, ok = r.live[seq]
	if !ok {
		return "", false, false
	}
	if r.opts.Mode != core.AckClient {
		delete(r.live, seq)
		if len(r.live) == 0 {
			r.order = r.order[:0]
		}
		r.acknowledgedLocked(1)
		return id, true, false
	}
	// Cumulative: this and every earlier delivery, the stale ones (given
	// before any live one) included.
	n := len(r.stale)
	for _, k := range r.twice {
		n += k
	}
	clear(r.stale)
	clear(r.twice)
	i := 0
	for ; i < len(r.order); i++ {
		o := r.order[i]
		if _, live := r.live[o]; live {
			delete(r.live, o)
			n++
		}
		if o == seq {
			i++
			break
		}
	}
	r.order = r.order[i:]
	r.acknowledgedLocked(n)
	return id, true, false
}

// ackFrame takes seq and returns the upstream frame (ACK or NACK) for it;
// nil with a nil error for an ack that is forgiven (see take), nil and
// core.ErrUnknownAck for one of nothing the client was given.
func (r *relay) ackFrame(seq uint64, command string) (*frame.Frame, error) {
	id, ok, forgiven := r.take(seq)
	switch {
	case ok:
		return frame.New(command, frame.Id, id), nil
	case forgiven:
		return nil, nil
	}
	return nil, core.ErrUnknownAck
}

// Ack implements stomp.Subscription: it returns once upstream has
// confirmed the ACK.
func (r *relay) Ack(ctx context.Context, seq uint64) error {
	f, err := r.ackFrame(seq, frame.ACK)
	if f == nil {
		return err
	}
	return r.g.await(ctx, r.l.request(f, false))
}

// AckMany implements stomp.Subscription: the ACKs go without receipts.
func (r *relay) AckMany(ctx context.Context, seqs []uint64) error {
	var first error
	for _, seq := range seqs {
		f, err := r.ackFrame(seq, frame.ACK)
		if f != nil {
			r.l.send(f) // lost with the connection: upstream redelivers it
		} else if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// AutoAck implements stomp.Subscription.
func (r *relay) AutoAck(ctx context.Context, seqs []uint64) error { return r.AckMany(ctx, seqs) }

// Nack implements stomp.Subscription: upstream counts the redelivery.
func (r *relay) Nack(seq uint64) error {
	f, err := r.ackFrame(seq, frame.NACK)
	if f != nil {
		r.l.send(f)
	}
	return err
}

// NackWait implements stomp.Subscription: it returns once upstream has
// the NACK (and so the redelivery count) durably.
func (r *relay) NackWait(seq uint64) error {
	f, err := r.ackFrame(seq, frame.NACK)
	if f == nil {
		return err
	}
	return r.g.await(context.Background(), r.l.request(f, false))
}

// Has implements stomp.Subscription.
func (r *relay) Has(seq uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.live[seq]
	return ok || r.stale[seq] || r.twice[seq] > 0
}

// Close implements stomp.Subscription: UNSUBSCRIBE upstream gives back
// what it delivered and was not acknowledged.
func (r *relay) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.mu.Unlock()
	r.l.removeSub(r.id, frame.New(frame.UNSUBSCRIBE, frame.Id, r.id))
	if r.release != nil {
		r.release()
	}
}
