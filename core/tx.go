// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cairnmq/cairn/journal"
)

// TxAck is an acknowledgement made inside a transaction.
type TxAck struct {
	Sub *Subscription
	Seq uint64
}

// resolveAcks names, for each acknowledgement through a wildcard queue
// subscription, the queue's subscription that delivered the message.
func resolveAcks(acks []TxAck) []TxAck {
	var out []TxAck
	for i, a := range acks {
		if a.Sub.fan == nil {
			if out != nil {
				out = append(out, a)
			}
			continue
		}
		if out == nil {
			out = append(make([]TxAck, 0, len(acks)), acks[:i]...)
		}
		if m := a.Sub.fan.owner(a.Seq); m != nil {
			out = append(out, TxAck{Sub: m, Seq: a.Seq})
		}
	}
	if out == nil {
		return acks
	}
	return out
}

// Commit carries out a transaction's sends and acknowledgements as one
// atomic journal batch: after a crash either all of them happened or none.
// When Commit returns nil the batch is durable; then the messages are
// delivered and the acknowledged messages are gone. A transaction whose
// records are more than one journal append may hold (JetStream: 1,000 by
// default) stores nothing and returns an error wrapping ErrTooLarge; its
// acknowledged messages stay delivered and unacknowledged.
func (b *Broker) Commit(ctx context.Context, sends []*Message, acks []TxAck) error {
	if b.isClosed() {
		return ErrClosed
	}
	if err := b.waitForStore(ctx, sends); err != nil {
		return err
	}
	if err := b.waitForMemory(ctx, sends); err != nil {
		return err
	}
	acks = resolveAcks(acks)
	sends = b.withDurableCopies(dropExpired(sends))
	sends, release, err := b.dd.claim(ctx, sends)
	if err != nil {
		return err
	}
	recs := b.enqueueRecords(nil, sends)
	if err := b.checkTxSize(recs, acks); err != nil {
		release(false)
		return err
	}
	if len(recs) > 0 {
		if err := b.checkSpace(); err != nil {
			release(false)
			return err
		}
	}
	// Take the acknowledged deliveries from their subscriptions and out of
	// flight, per queue.
	type held struct {
		q    *queue
		sub  *Subscription
		seqs []uint64
	}
	var holds []held
	for _, a := range acks {
		taken, err := a.Sub.take(a.Seq, a.Sub.mode == AckClient)
		if errors.Is(err, ErrUnknownAck) {
			continue // acknowledged since, outside the transaction
		}
		if a.Sub.t != nil {
			seqs := seqsOf(taken)
			a.Sub.t.post(func() { a.Sub.t.credit(a.Sub, seqs) })
			continue
		}
		seqs := seqsOf(taken)
		var h, persistent []uint64
		a.Sub.q.do(func() { h, persistent = a.Sub.q.ackBegin(a.Sub, seqs) })
		holds = append(holds, held{q: a.Sub.q, sub: a.Sub, seqs: h})
		if len(persistent) > 0 {
			recs = append(recs, journal.Record{Type: evAck, Data: encodeAck(a.Sub.dest, persistent)})
		}
	}
	if len(recs) > 0 {
		var first uint64
		if first, _, err = b.log.Append(ctx, recs); err == nil {
			setIndexes(sends, first) // the enqueues come first in the batch
		}
	}
	release(err == nil)
	for _, h := range holds {
		h.q.post(func() { h.q.ackEnd(h.sub, h.seqs, err) })
	}
	if err != nil {
		return journalError(err)
	}
	b.deliver(sends, nil)
	return nil
}

// checkTxSize refuses, with ErrTooLarge, a transaction whose records would
// be more than one journal append holds: recs, its enqueues, and one
// record for each ack that takes persistent queue messages. It counts
// before any acknowledged message is taken from its subscription, so a
// refused transaction leaves them delivered, to be acknowledged again.
// (An ack that races with one outside the transaction can only take fewer.)
func (b *Broker) checkTxSize(recs []journal.Record, acks []TxAck) error {
	lim := journal.LimitOf(b.log)
	if lim == (journal.BatchLimit{}) {
		return nil
	}
	n, bytes := len(recs), 0
	for i := range recs {
		bytes += journal.FrameSize(&recs[i])
	}
	for _, a := range acks {
		if a.Sub.t != nil {
			continue // a topic's acks are not journaled
		}
		if k := a.Sub.persistentTaken(a.Seq, a.Sub.mode == AckClient); k > 0 {
			n++
			bytes += journal.HeaderSize + 16 + len(a.Sub.dest.Name) + binary.MaxVarintLen64*(k+1) // encodeAck's most
		}
	}
	if err := lim.CheckSize(n, bytes); err != nil {
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	return nil
}
