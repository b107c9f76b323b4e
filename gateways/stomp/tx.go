// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// BEGIN, COMMIT and ABORT.

package stomp

import (
	"context"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/cairnmq/cairn/core"
)

type transaction struct {
	sends []*core.Message
	acks  []Ack
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
