// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cairnmq/cairn/journal"
)

// RedeliveryPolicy says what becomes of a message given back (NACKed, or
// delivered to a consumer that went away without acknowledging it): it is
// delivered again after a delay, and once it has been given back more than
// MaxRedeliveries times it moves to a dead-letter queue instead. ActiveMQ's
// STOMP NACK sends a message straight to its DLQ; this counts and retries.
type RedeliveryPolicy struct {
	// MaxRedeliveries is how many times a message is delivered again; the
	// next give-back moves it to the DLQ. Negative: no limit. (ActiveMQ's
	// maximumRedeliveries, default 6.)
	MaxRedeliveries int
	// InitialDelay is the wait before the first redelivery (0: at once).
	InitialDelay time.Duration
	// BackOff multiplies the delay for each later redelivery (1 or 0: the
	// same delay every time).
	BackOff float64
	// MaxDelay caps the delay (0: no cap).
	MaxDelay time.Duration
	// DeadLetterQueue is the queue dead letters go to (default
	// "ActiveMQ.DLQ"). With IndividualDLQ it is "DLQ.<queue name>" instead,
	// ActiveMQ's individualDeadLetterStrategy.
	DeadLetterQueue string
	IndividualDLQ   bool
}

// DefaultRedelivery is the policy of a queue no rule names: ActiveMQ's
// limit of 6, no delay, the shared ActiveMQ.DLQ.
var DefaultRedelivery = RedeliveryPolicy{MaxRedeliveries: 6, DeadLetterQueue: "ActiveMQ.DLQ"}

// RedeliveryRule gives the queues whose names match Pattern a policy.
// Patterns are ActiveMQ's: "." separates name segments, "*" matches one
// segment, ">" the rest ("orders.>", "*.retry", "payments").
type RedeliveryRule struct {
	Pattern string
	Policy  RedeliveryPolicy
}

// delay is the wait before redelivery number n (1-based).
func (p RedeliveryPolicy) delay(n uint32) time.Duration {
	if p.InitialDelay <= 0 || n == 0 {
		return 0
	}
	d := float64(p.InitialDelay)
	if p.BackOff > 1 {
		d *= math.Pow(p.BackOff, float64(n-1))
	}
	if p.MaxDelay > 0 && d > float64(p.MaxDelay) {
		return p.MaxDelay
	}
	if d > float64(math.MaxInt64) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(d)
}

// dlq is the dead-letter queue for queue name.
func (p RedeliveryPolicy) dlq(name string) string {
	if p.IndividualDLQ {
		return "DLQ." + name
	}
	if p.DeadLetterQueue == "" {
		return DefaultRedelivery.DeadLetterQueue
	}
	return p.DeadLetterQueue
}

// redeliveryPolicy is the policy of queue name: the first rule that
// matches, else DefaultRedelivery.
func (b *Broker) redeliveryPolicy(name string) RedeliveryPolicy {
	for _, r := range b.opts.Redelivery {
		if MatchDestination(r.Pattern, name) {
			return r.Policy
		}
	}
	return DefaultRedelivery
}

// Headers a dead letter carries, beside the original's.
const (
	// HeaderOriginalDestination is where a dead letter was sent (ActiveMQ's
	// STOMP header name).
	HeaderOriginalDestination = "original-destination"
	// HeaderDLQCause says why it was moved (ActiveMQ's property name).
	HeaderDLQCause = "dlqDeliveryFailureCause"
	// HeaderOriginalMessageID is the message-id it had.
	HeaderOriginalMessageID = "original-message-id"
	// HeaderRedeliveries is how many times it had been given back.
	HeaderRedeliveries = "redelivery-count"
)

// delayed is a queue's messages waiting out a redelivery delay, soonest
// first.
type delayed []*entry

func (h delayed) Len() int           { return len(h) }
func (h delayed) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h delayed) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayed) Push(x any)        { *h = append(*h, x.(*entry)) }
func (h *delayed) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// hold puts e aside until due; the loop's timer brings it back.
func (q *queue) hold(e *entry, due time.Time) {
	e.due = due
	heap.Push(&q.delayed, e)
	q.armDelay()
}

// armDelay sets the timer for the soonest delayed message.
func (q *queue) armDelay() {
	if len(q.delayed) == 0 {
		return
	}
	wait := time.Until(q.delayed[0].due)
	if q.delayTimer == nil {
		q.delayTimer = time.AfterFunc(wait, func() { q.post(q.release) })
	} else {
		q.delayTimer.Reset(wait)
	}
}

// release moves the messages whose delay is over back to pending.
func (q *queue) release() {
	now := time.Now()
	for len(q.delayed) > 0 && !q.delayed[0].due.After(now) {
		e := heap.Pop(&q.delayed).(*entry)
		e.due = time.Time{}
		q.pending.push(e)
	}
	q.armDelay()
	q.dispatch()
}

// deadLetter moves e to the policy's dead-letter queue: one journal batch
// acknowledges it here and enqueues its copy there, with headers saying
// where it came from and why. It reports false if the journal refused (e
// stays where the caller put it).
func (q *queue) deadLetter(e *entry, dlq, cause string) bool {
	m := e.msg
	h := make([]string, 0, len(m.Header)+8)
	h = append(h, m.Header...)
	h = append(h, HeaderOriginalDestination, m.Destination.String(), HeaderDLQCause, cause,
		HeaderOriginalMessageID, m.ID(), HeaderRedeliveries, fmt.Sprint(e.redeliveries))
	dm := &Message{Destination: Destination{Queue, dlq}, Persistent: m.Persistent, Priority: m.Priority,
		Timestamp: m.Timestamp, Header: h, Body: m.Body} // dead letters do not expire (ActiveMQ's default)
	if m.Persistent && q.b.checkSpace() != nil {
		return false // kept, and moved once the journal has room again
	}
	q.b.stamp(dm)
	if m.Persistent {
		recs := []journal.Record{
			{Type: evAck, Data: encodeAck(q.dest, []uint64{m.Seq})},
			{Type: evEnqueue, Data: encodeEnqueue(dm)},
		}
		if _, _, err := q.b.log.Append(context.Background(), recs); err != nil {
			q.b.opts.Logger.Error("journal: move to the dead-letter queue", "queue", q.name, "dlq", dlq, "err", err)
			return false
		}
	}
	q.b.opts.Logger.Info("moved to the dead-letter queue", "queue", q.name, "message", m.ID(), "dlq", dlq, "cause", cause)
	q.deadLettered++
	q.account(m, -1)
	q.b.queue(dlq).enqueue(dm)
	return true
}

// ParseRedeliveryRule reads a rule written as
// "PATTERN=max:N,delay:D,backoff:F,max-delay:D,dlq:NAME" (dlq:individual
// for DLQ.<queue>); keys left out keep DefaultRedelivery's values.
func ParseRedeliveryRule(s string) (RedeliveryRule, error) {
	pattern, spec, ok := strings.Cut(s, "=")
	if !ok || pattern == "" {
		return RedeliveryRule{}, fmt.Errorf("redelivery rule %q: want PATTERN=key:value,... (e.g. orders.>=max:3,delay:1s,backoff:2,dlq:individual)", s)
	}
	r := RedeliveryRule{Pattern: pattern, Policy: DefaultRedelivery}
	for _, kv := range strings.Split(spec, ",") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, ":")
		var err error
		switch k {
		case "max":
			r.Policy.MaxRedeliveries, err = strconv.Atoi(v)
		case "delay":
			r.Policy.InitialDelay, err = time.ParseDuration(v)
		case "backoff":
			r.Policy.BackOff, err = strconv.ParseFloat(v, 64)
		case "max-delay":
			r.Policy.MaxDelay, err = time.ParseDuration(v)
		case "dlq":
			if v == "individual" {
				r.Policy.IndividualDLQ = true
			} else if v == "" {
				err = errors.New("empty queue name")
			} else {
				r.Policy.DeadLetterQueue = v
			}
		default:
			err = errors.New("unknown key (max, delay, backoff, max-delay, dlq)")
		}
		if err != nil {
			return RedeliveryRule{}, fmt.Errorf("redelivery rule %q: %s: %v", s, k, err)
		}
	}
	return r, nil
}
