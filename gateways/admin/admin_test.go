// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package admin_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/gateways/admin"
	"github.com/cairnmq/cairn/internal/brokertest"
)

// TestMetricsCapQueues: past MaxQueues the deepest queues are reported one
// by one and the rest summed as _other; with -1 none are, and the totals
// stay.
func TestMetricsCapQueues(t *testing.T) {
	b := brokertest.Start(t, brokertest.Options{}).Core
	for i := range 5 {
		for range i + 1 {
			m := &core.Message{Destination: core.Destination{Kind: core.Queue, Name: fmt.Sprint("q", i)}, Persistent: true, Priority: 4, Body: []byte("x")}
			if err := b.Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
	}
	scrape := func(max int) string {
		h := admin.Handler(admin.Source{Ready: func() (bool, string) { return true, "" }, Broker: func() *core.Broker { return b }}, admin.Options{MaxQueues: max})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		body, _ := io.ReadAll(rec.Body)
		return string(body)
	}
	m := scrape(2)
	for _, want := range []string{`cairn_queue_messages{destination="/queue/q4"} 5`, `cairn_queue_messages{destination="/queue/q3"} 4`,
		`cairn_queue_messages{destination="_other"} 6`, `cairn_queues 5`} {
		if !strings.Contains(m, want) {
			t.Errorf("MaxQueues 2: no %s", want)
		}
	}
	one := (&core.Message{Body: []byte("x")}).Size()
	if want := fmt.Sprintf("cairn_memory_messages_bytes %d\n", 15*one); !strings.Contains(m, want) {
		t.Errorf("no %q: the 15 messages held in memory", want)
	}
	if strings.Contains(m, `destination="/queue/q0"`) {
		t.Error("MaxQueues 2 reported a shallow queue by name")
	}
	if m := scrape(-1); strings.Contains(m, "cairn_queue_messages") || !strings.Contains(m, "cairn_queues 5") {
		t.Error("MaxQueues -1 still reports queues one by one, or lost the total")
	}
}
