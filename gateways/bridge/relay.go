// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package bridge

import (
	"context"
	"strconv"
	"strings"
	"sync"

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
	"expires": true, "timestamp": true,
}

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
	g     *Gateway
	l     *link
	id    string
	dest  core.Destination
	opts  core.SubscribeOptions
	c     core.Consumer
	extra []string // more SUBSCRIBE headers (a durable subscription's name)

	mu     sync.Mutex
	live   map[uint64]string // delivered, not acknowledged: seq -> upstream ack id
	order  []uint64          // delivery order, for cumulative acks
	stale  map[uint64]bool   // delivered on a connection since lost: upstream gives them again
	closed bool
}

func newRelay(g *Gateway, l *link, id string, dest core.Destination, opts core.SubscribeOptions, c core.Consumer, extra []string) *relay {
	return &relay{g: g, l: l, id: id, dest: dest, opts: opts, c: c, extra: extra, live: map[uint64]string{}, stale: map[uint64]bool{}}
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

func (r *relay) message(f *frame.Frame) {
	m, ackID, redelivered := r.g.messageOf(f)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.live[m.Seq] = ackID
	r.order = append(r.order, m.Seq)
	delete(r.stale, m.Seq)
	r.mu.Unlock()
	r.c.Deliver(core.Delivery{Msg: m, Redelivered: redelivered})
}

// lost marks what was delivered as stale: upstream gives it back (marked
// redelivered) to this or another consumer, and a local ack of it now is
// dropped, not an error.
func (r *relay) lost() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for seq := range r.live {
		r.stale[seq] = true
	}
	clear(r.live)
	r.order = r.order[:0]
}

// take removes what an ack of seq acknowledges (in client mode, every
// earlier delivery) and returns the upstream ack id of seq; ok false if
// seq is not live (stale reports one lost with a connection).
func (r *relay) take(seq uint64) (id string, ok, stale bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok = r.live[seq]
	if !ok {
		stale = r.stale[seq]
		delete(r.stale, seq)
		return "", false, stale
	}
	if r.opts.Mode != core.AckClient {
		delete(r.live, seq)
		if len(r.live) == 0 {
			r.order = r.order[:0]
		}
		return id, true, false
	}
	i := 0
	for ; i < len(r.order); i++ {
		o := r.order[i]
		delete(r.live, o)
		if o == seq {
			i++
			break
		}
	}
	r.order = r.order[i:]
	return id, true, false
}

// ackFrame takes seq and returns the upstream frame (ACK or NACK) for it.
func (r *relay) ackFrame(seq uint64, command string) (*frame.Frame, bool) {
	id, ok, _ := r.take(seq)
	if !ok {
		return nil, false
	}
	return frame.New(command, frame.Id, id), true
}

// Ack implements stomp.Subscription: it returns once upstream has
// confirmed the ACK.
func (r *relay) Ack(ctx context.Context, seq uint64) error {
	f, ok := r.ackFrame(seq, frame.ACK)
	if !ok {
		return r.unknown(seq)
	}
	return r.g.await(ctx, r.l.request(f, false))
}

// unknown is the answer to an ack of seq that is not live: nil when seq
// was lost with a connection (upstream gives it again), else core's.
func (r *relay) unknown(seq uint64) error {
	r.mu.Lock()
	stale := r.stale[seq]
	delete(r.stale, seq)
	r.mu.Unlock()
	if stale {
		return nil
	}
	return core.ErrUnknownAck
}

// AckMany implements stomp.Subscription: the ACKs go without receipts.
func (r *relay) AckMany(ctx context.Context, seqs []uint64) error {
	var err error
	for _, seq := range seqs {
		if f, ok := r.ackFrame(seq, frame.ACK); ok {
			r.l.send(f) // lost with the connection: upstream redelivers it
		} else if e := r.unknown(seq); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// AutoAck implements stomp.Subscription.
func (r *relay) AutoAck(ctx context.Context, seqs []uint64) error { return r.AckMany(ctx, seqs) }

// Nack implements stomp.Subscription: upstream counts the redelivery.
func (r *relay) Nack(seq uint64) error {
	f, ok := r.ackFrame(seq, frame.NACK)
	if !ok {
		return r.unknown(seq)
	}
	r.l.send(f)
	return nil
}

// NackWait implements stomp.Subscription: it returns once upstream has
// the NACK (and so the redelivery count) durably.
func (r *relay) NackWait(seq uint64) error {
	f, ok := r.ackFrame(seq, frame.NACK)
	if !ok {
		return r.unknown(seq)
	}
	return r.g.await(context.Background(), r.l.request(f, false))
}

// Has implements stomp.Subscription.
func (r *relay) Has(seq uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.live[seq]
	return ok || r.stale[seq]
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
}
