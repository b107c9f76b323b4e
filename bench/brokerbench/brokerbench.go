// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package brokerbench is a load generator for any STOMP broker: producers
// and consumers over real connections (client.go), every message stamped
// with its producer, sequence and send time, so that the run reports
// throughput, end-to-end latency percentiles, and whether anything was lost
// or delivered twice.
package brokerbench

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Options describe one scenario.
type Options struct {
	Addr string
	// ConsumerAddr, if set, is where consumers and idle connections
	// connect, producers staying on Addr: a gateway in front of the broker.
	ConsumerAddr string
	Login        string
	Passcode     string
	Host         string // CONNECT host header (RabbitMQ: the virtual host, "/")
	Producers    int
	Consumers    int
	Size         int           // message body bytes (at least 24)
	Count        int           // messages in all producers together; 0: run for Duration
	Duration     time.Duration // used when Count is 0
	Destination  string        // /queue/... or /topic/...
	Persistent   bool
	Receipt      bool   // each SEND waits for its RECEIPT
	AckMode      string // auto, client or client-individual
	Prefetch     int    // activemq.prefetchSize; 0: the broker's default
	// Selector, if set, is every consumer's selector; every SEND then
	// carries the headers kind:order, amount:150 and region:eu, which
	// SelectorMatchingAll matches.
	Selector string
	// Idle opens this many extra connections, each subscribed to its own
	// queue and silent, before the run (the many-idle-consumers scenario).
	Idle int
	// BrokerPID, if set, is read for the broker's resident memory before and
	// after the idle connections open.
	BrokerPID int
	// Drain is how long consumers wait for stragglers after the producers
	// finish (default 5s).
	Drain time.Duration
	// Client is "lean" (default: this package's own STOMP client, which
	// costs the broker's machine little) or "go-stomp" (go-stomp v3.1.5,
	// what its users get); GoStompChannels, if set, is the depth of both
	// of go-stomp's channels (ConnOpt.Read/WriteChannelCapacity).
	Client          string
	GoStompChannels int
}

// Result is one run's report. JSON names are part of `cairn bench broker --json`.
type Result struct {
	Scenario      string  `json:"scenario,omitempty"`
	Broker        string  `json:"broker,omitempty"`
	Sent          int64   `json:"sent"`
	Received      int64   `json:"received"`
	Expected      int64   `json:"expected"`
	Lost          int64   `json:"lost"`
	Duplicates    int64   `json:"duplicates"`
	Seconds       float64 `json:"seconds"`
	SentPerSec    float64 `json:"sent_per_sec"`
	RecvPerSec    float64 `json:"received_per_sec"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	P999Ms        float64 `json:"p999_ms"`
	IdleConns     int     `json:"idle_connections,omitempty"`
	RSSBeforeKiB  int64   `json:"rss_before_kib,omitempty"`
	RSSAfterKiB   int64   `json:"rss_after_kib,omitempty"`
	KiBPerIdle    float64 `json:"kib_per_idle_connection,omitempty"`
	ErrorsOrFirst string  `json:"error,omitempty"`
}

func (o *Options) fill() error {
	if o.Producers < 0 || o.Producers == 0 && o.Consumers == 0 {
		o.Producers = 1
	}
	// Producers 0 with consumers: drain what is there (Count messages).
	if o.Consumers < 0 {
		o.Consumers = 0
	}
	if o.Size < 24 {
		o.Size = max(o.Size, 24)
	}
	if o.Count <= 0 && o.Duration <= 0 {
		o.Count = 10000
	}
	if o.Destination == "" {
		o.Destination = "/queue/bench"
	}
	if o.AckMode == "" {
		o.AckMode = "auto"
	}
	if o.Drain <= 0 {
		o.Drain = 5 * time.Second
	}
	switch o.AckMode {
	case "auto", "client", "client-individual":
	default:
		return fmt.Errorf("ack mode %q is not auto, client or client-individual", o.AckMode)
	}
	if !strings.HasPrefix(o.Destination, "/queue/") && !strings.HasPrefix(o.Destination, "/topic/") {
		return fmt.Errorf("destination %q must start with /queue/ or /topic/", o.Destination)
	}
	return nil
}

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, int(float64(len(sorted))*p))
	return float64(sorted[i]) / float64(time.Millisecond)
}

// perSource is how many idle connections share one loopback source
// address: the broker limits connections per address (1,000 by default).
const perSource = 500

// idleDialer dials idle connection i. To a loopback broker, connections
// come from 127.0.0.2 onward, perSource from each, as from many hosts.
func idleDialer(addr string, i int) *net.Dialer {
	d := &net.Dialer{Timeout: 10 * time.Second}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err == nil && ip != nil && ip.IsLoopback() && ip.To4() != nil {
		k := 2 + i/perSource
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, byte(k>>8), byte(k))}
	}
	return d
}

// openIdle opens n raw STOMP connections, each subscribed to its own queue.
// consumerAddr is where consumers connect.
func (o *Options) consumerAddr() string {
	if o.ConsumerAddr != "" {
		return o.ConsumerAddr
	}
	return o.Addr
}

// idleWindow bounds the idle connections whose CONNECTED has not come yet:
// a broker gives connections that have not finished CONNECT a budget of
// their own (Cairn: --max-unconnected, a tenth of it per address), and a
// load generator must not look like a flood of bare sockets.
const idleWindow = 50

func openIdle(o Options) ([]net.Conn, error) {
	var conns []net.Conn
	login := ""
	if o.Login != "" {
		login = "login:" + o.Login + "\npasscode:" + o.Passcode + "\n"
	}
	host := "localhost"
	if o.Host != "" {
		host = o.Host
	}
	buf := make([]byte, 512)
	confirmed := 0
	// confirm reads each CONNECTED up to conns[:upTo], so every connection
	// is established on the broker.
	confirm := func(upTo int) error {
		for ; confirmed < upTo; confirmed++ {
			c := conns[confirmed]
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			n, err := c.Read(buf)
			if err != nil || !strings.HasPrefix(string(buf[:n]), "CONNECTED") {
				return fmt.Errorf("idle connection %d: no CONNECTED (%v: %q)", confirmed, err, firstLine(buf[:n]))
			}
			c.SetReadDeadline(time.Time{})
		}
		return nil
	}
	for i := range o.Idle {
		if i-confirmed >= idleWindow {
			if err := confirm(i - idleWindow/2); err != nil {
				return conns, err
			}
		}
		c, err := idleDialer(o.consumerAddr(), i).Dial("tcp", o.consumerAddr())
		if err != nil {
			return conns, fmt.Errorf("idle connection %d: %w", i, err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "CONNECT\naccept-version:1.2\nhost:%s\n%sheart-beat:0,0\n\n\x00SUBSCRIBE\nid:0\ndestination:/queue/idle-%d\nack:client-individual\n\n\x00", host, login, i)
	}
	return conns, confirm(len(conns))
}

// firstLine is b's first line, for an error message.
func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}

// rss is the resident memory of process pid in KiB, or 0.
func rss(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// SelectorMatchingAll is a three-clause selector every SEND of a run with
// Options.Selector set matches.
const SelectorMatchingAll = "kind = 'order' AND amount > 100 AND region IN ('eu', 'us')"
