// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp_test

import (
	"encoding/json"
	"fmt"
	"testing"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/cairnmq/cairn/gateways/stomp"
)

// TestStatisticsRequest: a SEND to ActiveMQ's statistics destination for a
// queue, with a reply-to, is answered there with the queue's figures, as
// ActiveMQ's statisticsBrokerPlugin answers (headers, and a JSON body).
// (Without a reply-to it is ERROR bad-header: TestBadInput.)
func TestStatisticsRequest(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{})
	c := dial(t, n.addr)
	for i := range 3 {
		if err := c.Send("/queue/stats", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := c.Subscribe("/queue/stats", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("activemq.prefetchSize", "1"))
	if err != nil {
		t.Fatal(err)
	}
	recv(t, sub) // one in flight, two waiting
	replies, err := c.Subscribe("/temp-queue/stats", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send("/queue/ActiveMQ.Statistics.Destination.stats", "", nil, gostomp.SendOpt.Receipt,
		gostomp.SendOpt.Header("reply-to", "/temp-queue/stats"), gostomp.SendOpt.Header("correlation-id", "q1")); err != nil {
		t.Fatal(err)
	}
	m := recv(t, replies)
	want := map[string]string{"destinationName": "queue://stats", "size": "3", "inflightCount": "1", "cairn-pending": "2",
		"consumerCount": "1", "enqueueCount": "3", "dequeueCount": "0", "correlation-id": "q1"}
	for k, v := range want {
		if got := m.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	var body map[string]any
	if err := json.Unmarshal(m.Body, &body); err != nil || body["size"] != 3.0 || body["destinationName"] != "queue://stats" {
		t.Errorf("body %s (%v)", m.Body, err)
	}
	// Nothing was stored under the statistics name.
	if _, ok := n.broker.QueueStats("ActiveMQ.Statistics.Destination.stats"); ok {
		t.Error("the request was stored as a message")
	}

}
