// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp

import (
	"context"

	"github.com/cairnmq/cairn/core"
)

// Broker is everything the listener asks of what it serves: a broker that
// owns messages (core.Broker, through CoreBroker), or a node that relays
// them to one (the gateway tier). A client must not be able to tell which.
// Errors are core's (core.ErrStoreFull, core.ErrUnknownAck, …): the
// listener maps them to ERROR codes (codes.go).
type Broker interface {
	// PersistentByDefault says whether a SEND without a persistent header
	// is persistent.
	PersistentByDefault() bool
	// AutoAckWaits says whether Subscription.AutoAck may block on I/O, in
	// which case the listener calls it off its writer's path.
	AutoAckWaits() bool
	// SendMany stores and dispatches messages nobody waits for (no
	// receipt), in order; SendConfirmed those a RECEIPT waits for, calling
	// confirmed once they are durable, before it dispatches them.
	SendMany(ctx context.Context, msgs []*core.Message) error
	SendConfirmed(ctx context.Context, msgs []*core.Message, confirmed func()) error
	// Commit carries out a transaction's sends and acknowledgements
	// atomically.
	Commit(ctx context.Context, sends []*core.Message, acks []Ack) error
	// Subscribe starts deliveries of dest (a queue or topic, wildcards
	// allowed) to c; SubscribeDurable of a topic, kept while c is away.
	Subscribe(dest core.Destination, opts core.SubscribeOptions, c core.Consumer) (Subscription, error)
	// A durable subscription made by a user (opts.Owner) is that user's:
	// another's SUBSCRIBE or removal of it is refused (core.ErrDurableOwned).
	SubscribeDurable(ctx context.Context, clientID, name string, topic core.Destination, opts core.SubscribeOptions, c core.Consumer) (Subscription, error)
	UnsubscribeDurable(ctx context.Context, clientID, name, user string) error
	// Browse returns what queue holds, taking nothing.
	Browse(queue string) ([]*core.Message, bool)
	// DeleteQueue removes a queue and what it holds (a connection's
	// temporary queues when it ends).
	DeleteQueue(ctx context.Context, name string) error
}

// Subscription is one subscription's acknowledgements. A message is named
// by its Seq (core.Message.Seq; its message-id is core.FormatID of it).
type Subscription interface {
	// Ack acknowledges seq (in client mode, and every earlier delivery),
	// durably when it returns nil; AckMany several that nobody waits for;
	// AutoAck deliveries written to an auto-ack subscriber.
	Ack(ctx context.Context, seq uint64) error
	AckMany(ctx context.Context, seqs []uint64) error
	AutoAck(ctx context.Context, seqs []uint64) error
	// Nack gives seq back for redelivery; NackWait returns once that is
	// durable.
	Nack(seq uint64) error
	NackWait(seq uint64) error
	// Has says whether seq is delivered and unacknowledged here.
	Has(seq uint64) bool
	// Close ends the subscription: what it holds unacknowledged goes back.
	Close()
}

// Ack is one acknowledgement inside a transaction.
type Ack struct {
	Sub Subscription
	Seq uint64
}

// CoreBroker serves b, the broker that owns its messages.
func CoreBroker(b *core.Broker) Broker { return coreBroker{b} }

type coreBroker struct{ *core.Broker }

func (c coreBroker) Subscribe(dest core.Destination, opts core.SubscribeOptions, cons core.Consumer) (Subscription, error) {
	s, err := c.Broker.Subscribe(dest, opts, cons)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (c coreBroker) SubscribeDurable(ctx context.Context, clientID, name string, topic core.Destination, opts core.SubscribeOptions, cons core.Consumer) (Subscription, error) {
	s, err := c.Broker.SubscribeDurable(ctx, clientID, name, topic, opts, cons)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (c coreBroker) UnsubscribeDurable(ctx context.Context, clientID, name, user string) error {
	return c.Broker.UnsubscribeDurableAs(ctx, clientID, name, user)
}

func (c coreBroker) Commit(ctx context.Context, sends []*core.Message, acks []Ack) error {
	var txAcks []core.TxAck
	if len(acks) > 0 {
		txAcks = make([]core.TxAck, len(acks))
		for i, a := range acks {
			txAcks[i] = core.TxAck{Sub: a.Sub.(*core.Subscription), Seq: a.Seq}
		}
	}
	return c.Broker.Commit(ctx, sends, txAcks)
}
