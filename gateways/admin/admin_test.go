// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	gostomp "github.com/go-stomp/stomp/v3"

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

// TestJournalAndFrameMetrics: frames by command, and the journal's append
// and fsync latency and group-commit sizes as Prometheus histograms, after
// real receipted SENDs on the wal journal.
func TestJournalAndFrameMetrics(t *testing.T) {
	b := brokertest.Start(t, brokertest.Options{})
	c, err := gostomp.Dial("tcp", b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := c.Send("/queue/m", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatal(err)
		}
	}
	c.Disconnect()
	if _, err := b.Core.Maintain(true); err != nil {
		t.Fatal(err)
	}
	h := admin.Handler(admin.Source{Broker: func() *core.Broker { return b.Core }, Frames: b.Server.Frames}, admin.Options{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	m := rec.Body.String()
	for _, want := range []string{`cairn_frames_received_total{command="SEND"} 10`, `cairn_frames_received_total{command="CONNECT"} 1`,
		`cairn_journal_append_seconds_bucket{le="+Inf"}`, `cairn_journal_fsync_seconds_count`, `cairn_journal_group_commit_records_bucket{le="1"}`,
		`cairn_journal_replay_seconds`, `cairn_journal_bytes`, `cairn_journal_snapshots_total `, `cairn_journal_snapshot_age_seconds `,
		`cairn_journal_compactions_total`, `cairn_journal_compacted_bytes_total`} {
		if !strings.Contains(m, want) {
			t.Errorf("no %s in /metrics", want)
		}
	}
	for _, line := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(line, "cairn_journal_append_seconds_count "); ok {
			if n, _ := strconv.Atoi(v); n < 10 {
				t.Errorf("%s appends counted after 10 receipted SENDs", v)
			}
		}
	}
}

// TestGrafanaDashboard: every metric the example dashboard
// (deploy/grafana/cairn.json) queries is one /metrics exports.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/grafana/cairn.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil || len(d.Panels) == 0 {
		t.Fatalf("the dashboard does not parse: %v", err)
	}
	b := brokertest.Start(t, brokertest.Options{})
	b.Core.Send(context.Background(), &core.Message{Destination: core.Destination{Kind: core.Queue, Name: "q"}, Persistent: true, Priority: 4, Body: []byte("x")})
	h := admin.Handler(admin.Source{Broker: func() *core.Broker { return b.Core }, Frames: b.Server.Frames, Connections: func() int { return 0 },
		Role:  func() (string, uint64) { return "master", 1 },
		Links: func() []admin.Link { return []admin.Link{{Name: "link 0", Up: true}} }}, admin.Options{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	exported := rec.Body.String()
	names := regexp.MustCompile(`cairn_[a-z_]+`)
	// Series that exist only once there is something to count.
	conditional := map[string]bool{"cairn_topic_dropped_messages_total": true}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, n := range names.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count"), "_sum")
				if !strings.Contains(exported, "# TYPE "+base+" ") && !conditional[base] {
					t.Errorf("panel %q queries %s, which /metrics does not export", p.Title, n)
				}
			}
		}
	}
}
