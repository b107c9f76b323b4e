// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// SEND: destinations, bursts of unreceipted SENDs and ACKs, and the errors the broker answers with.

package stomp

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"unicode"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/gateways/auth"
	"github.com/cairnmq/cairn/journal"
)

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

// runBurst carries out the burst.
func (ss *session) runBurst() error {
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
	if queue, ok := ss.statisticsRequest(dests); ok && f.Header.Get(frame.Transaction) == "" {
		return ss.answerStatistics(f, queue, receipt)
	}
	for _, d := range dests {
		if err := ss.allowed(auth.Write, d); err != nil {
			return err // nothing of a composite SEND is stored
		}
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

// brokerError is the ERROR a client gets for err from the broker. A
// failure of the store gets a fixed message: its detail (file names, the
// I/O error) goes to the log with the session's id, never to a client.
func (ss *session) brokerError(err error) error {
	var coded *Error
	switch {
	case errors.As(err, &coded):
		return perr(coded.Code, "%s", coded.Message)
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
