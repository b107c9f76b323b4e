// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/gateways/auth"
	"github.com/go-stomp/stomp/v3/frame"
)

// StatisticsPrefix names statistics requests, as ActiveMQ's
// statisticsBrokerPlugin does: a SEND to
// /queue/ActiveMQ.Statistics.Destination.<queue> with a reply-to is
// answered with one non-persistent message to the reply-to describing
// <queue>, its figures as headers (ActiveMQ's names: size, enqueueCount,
// dequeueCount, expiredCount, inflightCount, consumerCount, producerCount,
// memoryUsage; and cairn-pending, cairn-paged, cairn-delayed) and as a
// JSON object in the body. It takes read access to the queue. STOMP
// clients read queue depths this way without the HTTP API, and a gateway's
// per-subscription watchdog asks its upstream so (gateways/bridge).
const StatisticsPrefix = "ActiveMQ.Statistics.Destination."

// queueStatser is a Broker that can answer statistics requests itself
// (the core broker). A gateway cannot: its requests go upstream as any
// SEND does, and upstream answers.
type queueStatser interface {
	QueueStats(name string) (core.Stats, bool)
}

// statisticsRequest reports whether d is a statistics request that this
// listener answers, and for which queue.
func (ss *session) statisticsRequest(dests []core.Destination) (string, bool) {
	if len(dests) != 1 || dests[0].Kind != core.Queue {
		return "", false
	}
	name, ok := strings.CutPrefix(dests[0].Name, StatisticsPrefix)
	if !ok || name == "" {
		return "", false
	}
	_, ok = ss.srv.broker.(queueStatser)
	return name, ok
}

// answerStatistics sends queue's statistics to the SEND's reply-to.
func (ss *session) answerStatistics(f *frame.Frame, queue string, receipt *string) error {
	q := core.Destination{Kind: core.Queue, Name: queue}
	if err := ss.allowed(auth.Read, q); err != nil {
		return err
	}
	replyTo := f.Header.Get("reply-to")
	if replyTo == "" {
		return perr(CodeBadHeader, "a statistics request (%s...) needs a reply-to", StatisticsPrefix)
	}
	to, err := ss.parseDestination(replyTo)
	if err != nil {
		return err
	}
	if err := ss.allowed(auth.Write, to); err != nil {
		return err
	}
	st, _ := ss.srv.broker.(queueStatser).QueueStats(queue)
	figures := []struct {
		name  string
		value int64
	}{
		{"size", int64(st.Depth())}, {"enqueueCount", int64(st.Enqueued)}, {"dequeueCount", int64(st.Dequeued)},
		{"expiredCount", int64(st.Expired)}, {"inflightCount", int64(st.InFlight)}, {"consumerCount", int64(st.Consumers)},
		{"producerCount", int64(st.Producers)}, {"memoryUsage", st.MemoryBytes},
		{"cairn-pending", int64(st.Pending)}, {"cairn-paged", int64(st.Paged)}, {"cairn-delayed", int64(st.Delayed)},
	}
	m := &core.Message{Destination: to, Priority: 4, Origin: ss.num,
		Header: []string{"destinationName", "queue://" + queue, "content-type", "application/json"}}
	body := map[string]any{"destinationName": "queue://" + queue}
	for _, fg := range figures {
		m.Header = append(m.Header, fg.name, strconv.FormatInt(fg.value, 10))
		body[fg.name] = fg.value
	}
	if id := f.Header.Get("correlation-id"); id != "" {
		m.Header = append(m.Header, "correlation-id", id)
	}
	m.Body, _ = json.Marshal(body)
	var confirmed func()
	if id := *receipt; id != "" {
		confirmed = func() { ss.replyNow(frame.New(frame.RECEIPT, frame.ReceiptId, id)) }
		*receipt = ""
	}
	if err := ss.srv.broker.SendConfirmed(context.Background(), []*core.Message{m}, confirmed); err != nil {
		return ss.brokerError(err)
	}
	return nil
}
