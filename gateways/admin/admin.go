// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package admin is the HTTP side of a node: health for probes and load
// balancers (/livez, /healthz, /readyz) and Prometheus metrics (/metrics),
// answered without a login, as scrapers and probes expect. The admin API
// (JSON, under /api/v1/, api.go) and the web console (/console/,
// console.go) take a login when the node has users.
package admin

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/gateways/auth"
	"github.com/cairnmq/cairn/gateways/stomp"
	"github.com/cairnmq/cairn/journal"
)

// Source is what the handler reads, at each request.
type Source struct {
	// Ready says whether the node serves clients now, and if not, why.
	Ready func() (bool, string)
	// Broker is the broker to report on, nil when there is none yet (a
	// standby) or none at all (a gateway).
	Broker func() *core.Broker
	// Connections is the number of open client connections; Conns lists
	// the connected ones, and CloseConn closes one by its session id (nil
	// where the node cannot).
	Connections func() int
	Conns       func() []stomp.ConnInfo
	CloseConn   func(id string) bool
	// Frames is how many frames clients sent, by command.
	Frames func() map[string]uint64
	// Role is the node's role ("master", "standby", "gateway", …) and
	// epoch, for the cairn_role gauge.
	Role func() (string, uint64)
	// Links, for a gateway, is each upstream link's state.
	Links func() []Link
}

// Link is one gateway link, as metrics, the API and the console show it.
type Link struct {
	Name      string  `json:"name"`
	Upstream  string  `json:"upstream"`
	Up        bool    `json:"up"`
	LastError string  `json:"last_error,omitempty"`
	Connects  int     `json:"connects"`
	CanaryRTT float64 `json:"canary_rtt_seconds"`
	Stalls    int     `json:"stalls"`
	// SubscriptionStalls: subscriptions the watchdog found stalled.
	SubscriptionStalls int    `json:"subscription_stalls"`
	FramesIn           uint64 `json:"frames_in"`
	FramesOut          uint64 `json:"frames_out"`
	BytesIn            uint64 `json:"body_bytes_in"`
	BytesOut           uint64 `json:"body_bytes_out"`
	Waiting            int    `json:"waiting"`
	Subscribed         int    `json:"subscriptions"`
}

// Options shape the metrics and the API.
type Options struct {
	// MaxQueues caps the queues reported one by one (default 1,000, the
	// deepest first); the rest are summed into destination="_other".
	// Negative: no per-queue series at all.
	MaxQueues int
	// Users, if set, authenticates the admin API (HTTP Basic): only users
	// in AdminGroup (default "admins") may use it. Without, the API is
	// open, and its caller must serve it on loopback only.
	Users      *auth.Users
	AdminGroup string
	// APIRefused, if set, is why the API is not served here: it answers
	// 403 with it (an address off loopback with no users to log in).
	APIRefused string
	// Samples, if set, draws the console's charts (NewSampler).
	Samples *Sampler
}

// Handler serves /livez, /healthz, /readyz and /metrics for src, without a
// login, and the admin API under /api/v1/ (api.go).
func Handler(src Source, o Options) http.Handler {
	if o.MaxQueues == 0 {
		o.MaxQueues = 1000
	}
	if o.AdminGroup == "" {
		o.AdminGroup = "admins"
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &collector{src: src, o: o})
	mux := http.NewServeMux()
	live := func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }
	mux.HandleFunc("/livez", live)
	mux.HandleFunc("/healthz", live)
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ok, why := src.Ready()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready: "+why)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	api, console, amqXML := newAPI(src, o)
	mux.Handle("/api/", api)
	mux.Handle("/console/", console)
	mux.Handle("/admin/xml/", amqXML)
	return mux
}

var (
	descQueueDepth    = prometheus.NewDesc("cairn_queue_messages", "Messages a queue holds: waiting, delayed and in flight.", []string{"destination"}, nil)
	descQueuePaged    = prometheus.NewDesc("cairn_queue_paged_messages", "Messages of a queue held in the journal only (paged out of memory).", []string{"destination"}, nil)
	descQueueInFlight = prometheus.NewDesc("cairn_queue_in_flight_messages", "Messages of a queue delivered and not yet acknowledged.", []string{"destination"}, nil)
	descEnqueued      = prometheus.NewDesc("cairn_queue_enqueued_messages_total", "Messages sent to a queue since the broker started.", []string{"destination"}, nil)
	descDequeued      = prometheus.NewDesc("cairn_queue_dequeued_messages_total", "Messages acknowledged from a queue since the broker started.", []string{"destination"}, nil)
	descExpired       = prometheus.NewDesc("cairn_queue_expired_messages_total", "Messages of a queue that expired since the broker started.", []string{"destination"}, nil)
	descDead          = prometheus.NewDesc("cairn_queue_dead_lettered_messages_total", "Messages of a queue moved to a dead-letter queue since the broker started.", []string{"destination"}, nil)
	descConsumers     = prometheus.NewDesc("cairn_queue_consumers", "Consumers subscribed to a queue.", []string{"destination"}, nil)
	descMemory        = prometheus.NewDesc("cairn_queue_memory_bytes", "Bytes of a queue's messages held in memory.", []string{"destination"}, nil)
	descJournal       = prometheus.NewDesc("cairn_queue_journal_bytes", "Bytes of a queue's messages in the journal.", []string{"destination"}, nil)
	descQueues        = prometheus.NewDesc("cairn_queues", "Queues the broker has.", nil, nil)
	descTopics        = prometheus.NewDesc("cairn_topics", "Topics the broker has.", nil, nil)
	descMemoryUsed    = prometheus.NewDesc("cairn_memory_messages_bytes", "Bytes of messages the broker holds in memory (queues' and topics'), against its memory limit.", nil, nil)
	descMemoryLimit   = prometheus.NewDesc("cairn_memory_limit_bytes", "The broker's memory limit for messages (0: none).", nil, nil)
	descTopicDropped  = prometheus.NewDesc("cairn_topic_dropped_messages_total", "Messages a topic's subscribers lost for being too slow (its oldest held messages, past their backlog or memory share); topics that lost none are left out.", []string{"destination"}, nil)
	descTopicMemory   = prometheus.NewDesc("cairn_topic_memory_bytes", "Bytes of messages topic subscribers hold (in flight and in backlogs), each once.", nil, nil)
	descFrames        = prometheus.NewDesc("cairn_frames_received_total", "STOMP frames clients sent, by command (heart-beats not counted).", []string{"command"}, nil)
	descJournalAppend = prometheus.NewDesc("cairn_journal_append_seconds", "Journal appends, from the call to the confirmation (durable under sync always).", nil, nil)
	descJournalSync   = prometheus.NewDesc("cairn_journal_fsync_seconds", "Syncs of the journal's group commits.", nil, nil)
	descJournalGroup  = prometheus.NewDesc("cairn_journal_group_commit_records", "Records written by each group commit.", nil, nil)
	descJournalBytes  = prometheus.NewDesc("cairn_journal_bytes", "Bytes the journal takes, about (on disk; in the stream on JetStream).", nil, nil)
	descSnapshots     = prometheus.NewDesc("cairn_journal_snapshots_total", "Snapshots maintenance took since the broker opened.", nil, nil)
	descSnapshotAge   = prometheus.NewDesc("cairn_journal_snapshot_age_seconds", "Time since the last snapshot this broker took (absent before its first).", nil, nil)
	descCompactions   = prometheus.NewDesc("cairn_journal_compactions_total", "Compactions that freed journal segments since the broker opened.", nil, nil)
	descCompactFreed  = prometheus.NewDesc("cairn_journal_compacted_bytes_total", "Journal bytes compactions freed since the broker opened.", nil, nil)
	descReplay        = prometheus.NewDesc("cairn_journal_replay_seconds", "How long the start-up replay of the journal took.", nil, nil)
	descConnections   = prometheus.NewDesc("cairn_connections", "Open client connections.", nil, nil)
	descRole          = prometheus.NewDesc("cairn_role", "1 for the node's current role; its epoch as a label.", []string{"role", "epoch"}, nil)
	descLinkUp        = prometheus.NewDesc("cairn_gateway_link_up", "1 while a gateway link is connected upstream.", []string{"link"}, nil)
	descLinkConnects  = prometheus.NewDesc("cairn_gateway_link_connects_total", "Times a gateway link connected upstream.", []string{"link"}, nil)
	descLinkStalls    = prometheus.NewDesc("cairn_gateway_link_stalls_total", "Times a gateway link was found stalled by its canary and reconnected.", []string{"link"}, nil)
	descSubStalls     = prometheus.NewDesc("cairn_gateway_subscription_stalls_total", "Times the watchdog found a subscription of a gateway link stalled and subscribed it again.", []string{"link"}, nil)
	descLinkRTT       = prometheus.NewDesc("cairn_gateway_link_canary_rtt_seconds", "The last canary round trip through the upstream.", []string{"link"}, nil)
	descLinkFrames    = prometheus.NewDesc("cairn_gateway_link_frames_total", "Frames a gateway link moved.", []string{"link", "direction"}, nil)
	descLinkBytes     = prometheus.NewDesc("cairn_gateway_link_body_bytes_total", "Body bytes a gateway link moved.", []string{"link", "direction"}, nil)
	descLinkSubs      = prometheus.NewDesc("cairn_gateway_link_subscriptions", "Subscriptions a gateway link carries upstream.", []string{"link"}, nil)
	descLinkWaiting   = prometheus.NewDesc("cairn_gateway_link_waiting_requests", "Requests (SENDs, ACKs with receipts) a gateway link waits to have answered.", []string{"link"}, nil)
)

// collector reads the broker at scrape time: nothing is counted twice
// and the hot paths carry no metric updates.
type collector struct {
	src Source
	o   Options
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	if c.src.Connections != nil {
		gauge(descConnections, float64(c.src.Connections()))
	}
	if c.src.Frames != nil {
		for cmd, n := range c.src.Frames() {
			counter(descFrames, float64(n), cmd)
		}
	}
	if c.src.Role != nil {
		role, epoch := c.src.Role()
		gauge(descRole, 1, role, fmt.Sprint(epoch))
	}
	if c.src.Links != nil {
		for _, l := range c.src.Links() {
			up := 0.0
			if l.Up {
				up = 1
			}
			gauge(descLinkUp, up, l.Name)
			counter(descLinkConnects, float64(l.Connects), l.Name)
			counter(descLinkStalls, float64(l.Stalls), l.Name)
			counter(descSubStalls, float64(l.SubscriptionStalls), l.Name)
			gauge(descLinkRTT, l.CanaryRTT, l.Name)
			counter(descLinkFrames, float64(l.FramesIn), l.Name, "in")
			counter(descLinkFrames, float64(l.FramesOut), l.Name, "out")
			counter(descLinkBytes, float64(l.BytesIn), l.Name, "in")
			counter(descLinkBytes, float64(l.BytesOut), l.Name, "out")
			gauge(descLinkWaiting, float64(l.Waiting), l.Name)
			gauge(descLinkSubs, float64(l.Subscribed), l.Name)
		}
	}
	var b *core.Broker
	if c.src.Broker != nil {
		b = c.src.Broker()
	}
	if b == nil {
		return
	}
	queues := b.Queues()
	gauge(descQueues, float64(len(queues)))
	topics := b.Topics()
	gauge(descTopics, float64(len(topics)))
	for _, tp := range topics {
		if tp.Dropped > 0 {
			counter(descTopicDropped, float64(tp.Dropped), "/topic/"+tp.Name)
		}
	}
	if st, ok := b.JournalStats(); ok {
		histogram := func(d *prometheus.Desc, h journal.HistogramSnapshot) {
			buckets := make(map[float64]uint64, len(h.Bounds))
			for i, bound := range h.Bounds {
				buckets[bound] = h.Buckets[i]
			}
			ch <- prometheus.MustNewConstHistogram(d, h.Count, h.Sum, buckets)
		}
		histogram(descJournalAppend, st.Append)
		histogram(descJournalSync, st.Sync)
		histogram(descJournalGroup, st.GroupRecords)
	}
	gauge(descJournalBytes, float64(b.JournalBytes()))
	gauge(descReplay, b.Recovery().Took.Seconds())
	ms := b.Maintenance()
	counter(descSnapshots, float64(ms.Snapshots))
	if !ms.LastSnapshot.IsZero() {
		gauge(descSnapshotAge, time.Since(ms.LastSnapshot).Seconds())
	}
	counter(descCompactions, float64(ms.Compactions))
	counter(descCompactFreed, float64(ms.FreedBytes))
	mem := b.Memory()
	gauge(descMemoryUsed, float64(mem.Messages))
	gauge(descMemoryLimit, float64(mem.Limit))
	gauge(descTopicMemory, float64(mem.Topics))
	if c.o.MaxQueues < 0 {
		return
	}
	// The deepest queues one by one, the rest summed: a broker with tens
	// of thousands of queues must not make tens of thousands of series.
	if len(queues) > c.o.MaxQueues {
		sortByDepth(queues)
	}
	var other core.Stats
	for i, st := range queues {
		if i >= c.o.MaxQueues {
			other.Pending += st.Pending
			other.Delayed += st.Delayed
			other.InFlight += st.InFlight
			other.Paged += st.Paged
			other.Enqueued += st.Enqueued
			other.Dequeued += st.Dequeued
			other.Expired += st.Expired
			other.DeadLettered += st.DeadLettered
			other.Consumers += st.Consumers
			other.MemoryBytes += st.MemoryBytes
			other.JournalBytes += st.JournalBytes
			continue
		}
		c.queue(gauge, counter, st.Destination.String(), st)
	}
	if len(queues) > c.o.MaxQueues {
		c.queue(gauge, counter, "_other", other)
	}
}

func (c *collector) queue(gauge, counter func(*prometheus.Desc, float64, ...string), name string, st core.Stats) {
	gauge(descQueueDepth, float64(st.Pending+st.Delayed+st.InFlight), name)
	gauge(descQueuePaged, float64(st.Paged), name)
	gauge(descQueueInFlight, float64(st.InFlight), name)
	counter(descEnqueued, float64(st.Enqueued), name)
	counter(descDequeued, float64(st.Dequeued), name)
	counter(descExpired, float64(st.Expired), name)
	counter(descDead, float64(st.DeadLettered), name)
	gauge(descConsumers, float64(st.Consumers), name)
	gauge(descMemory, float64(st.MemoryBytes), name)
	gauge(descJournal, float64(st.JournalBytes), name)
}

// sortByDepth puts the deepest queues first (by name among equals).
func sortByDepth(qs []core.Stats) {
	depth := func(s core.Stats) int { return s.Pending + s.Delayed + s.InFlight }
	slices.SortFunc(qs, func(a, b core.Stats) int {
		if d := depth(b) - depth(a); d != 0 {
			return d
		}
		return strings.Compare(a.Destination.Name, b.Destination.Name)
	})
}
