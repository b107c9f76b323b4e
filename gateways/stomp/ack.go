// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// ACK and NACK.

package stomp

import (
	"context"
	"strings"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/cairnmq/cairn/core"
)

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
