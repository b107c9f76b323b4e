// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package brokerbench is a load generator for any STOMP broker: producers
// and consumers over real connections (go-stomp), every message stamped
// with its producer, sequence and send time, so that the run reports
// throughput, end-to-end latency percentiles, and whether anything was lost
// or delivered twice.
package brokerbench

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
)

// Options describe one scenario.
type Options struct {
	Addr        string
	Login       string
	Passcode    string
	Host        string // CONNECT host header (RabbitMQ: the virtual host, "/")
	Producers   int
	Consumers   int
	Size        int           // message body bytes (at least 24)
	Count       int           // messages in all producers together; 0: run for Duration
	Duration    time.Duration // used when Count is 0
	Destination string        // /queue/... or /topic/...
	Persistent  bool
	Receipt     bool   // each SEND waits for its RECEIPT
	AckMode     string // auto, client or client-individual
	Prefetch    int    // activemq.prefetchSize; 0: the broker's default
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

func (o *Options) dial() (*gostomp.Conn, error) {
	opts := []func(*gostomp.Conn) error{gostomp.ConnOpt.HeartBeat(0, 0), gostomp.ConnOpt.AcceptVersion(gostomp.V12),
		gostomp.ConnOpt.RcvReceiptTimeout(30 * time.Second), gostomp.ConnOpt.WriteBufferSize(64 << 10), gostomp.ConnOpt.ReadBufferSize(64 << 10),
		gostomp.ConnOpt.ReadChannelCapacity(4096), gostomp.ConnOpt.WriteChannelCapacity(4096)}
	if o.Login != "" {
		opts = append(opts, gostomp.ConnOpt.Login(o.Login, o.Passcode))
	}
	if o.Host != "" {
		opts = append(opts, gostomp.ConnOpt.Host(o.Host))
	}
	return gostomp.Dial("tcp", o.Addr, opts...)
}

// Run runs the scenario against the broker at o.Addr.
func Run(ctx context.Context, o Options) (Result, error) {
	var res Result
	if err := o.fill(); err != nil {
		return res, err
	}
	// Idle connections first, with the broker's memory before and after.
	if o.Idle > 0 {
		res.IdleConns = o.Idle
		res.RSSBeforeKiB = rss(o.BrokerPID)
		idle, err := openIdle(o)
		defer func() {
			for _, c := range idle {
				c.Close()
			}
		}()
		if err != nil {
			return res, err
		}
		time.Sleep(time.Second) // let the broker settle
		res.RSSAfterKiB = rss(o.BrokerPID)
		if res.RSSBeforeKiB > 0 {
			res.KiBPerIdle = float64(res.RSSAfterKiB-res.RSSBeforeKiB) / float64(o.Idle)
		}
	}
	topic := strings.HasPrefix(o.Destination, "/topic/")
	// Consumers.
	type consumer struct {
		c   *gostomp.Conn
		sub *gostomp.Subscription
	}
	var cons []consumer
	for range o.Consumers {
		c, err := o.dial()
		if err != nil {
			return res, fmt.Errorf("consumer connect: %w", err)
		}
		defer c.MustDisconnect()
		mode := map[string]gostomp.AckMode{"auto": gostomp.AckAuto, "client": gostomp.AckClient, "client-individual": gostomp.AckClientIndividual}[o.AckMode]
		var subOpts []func(*frame.Frame) error
		if o.Prefetch > 0 {
			subOpts = append(subOpts, gostomp.SubscribeOpt.Header("activemq.prefetchSize", strconv.Itoa(o.Prefetch)))
		}
		if o.Selector != "" {
			subOpts = append(subOpts, gostomp.SubscribeOpt.Header("selector", o.Selector))
		}
		sub, err := c.Subscribe(o.Destination, mode, subOpts...)
		if err != nil {
			return res, fmt.Errorf("subscribe: %w", err)
		}
		cons = append(cons, consumer{c, sub})
	}
	if topic && len(cons) > 0 {
		// A subscription is in place once the broker has seen it; a
		// receipted send on each consumer's connection flushes it there.
		for _, c := range cons {
			if err := c.c.Send("/queue/bench-sync", "text/plain", nil, gostomp.SendOpt.Receipt); err != nil {
				return res, err
			}
		}
	}
	var (
		sent, received, dups atomic.Int64
		lastRecv             atomic.Int64 // unix nanos of the last delivery
		seenMu               sync.Mutex
		seen                 = make(map[uint64]int32)
		latMu                sync.Mutex
		lats                 []time.Duration
	)
	producersDone := make(chan struct{})
	var cwg sync.WaitGroup
	for _, cn := range cons {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			var local []time.Duration
			defer func() {
				latMu.Lock()
				lats = append(lats, local...)
				latMu.Unlock()
			}()
			idleSince := time.Time{}
			for {
				var m *gostomp.Message
				select {
				case m = <-cn.sub.C:
				case <-time.After(100 * time.Millisecond):
					select {
					case <-producersDone:
						if idleSince.IsZero() {
							idleSince = time.Now()
						}
						if time.Since(idleSince) > o.Drain || (o.Count > 0 && received.Load() >= expected(o, topic)) {
							return
						}
					default:
					}
					continue
				}
				if m == nil || m.Err != nil {
					return
				}
				idleSince = time.Time{}
				if len(m.Body) >= 24 {
					at := int64(binary.LittleEndian.Uint64(m.Body))
					key := binary.LittleEndian.Uint64(m.Body[8:])<<32 | binary.LittleEndian.Uint64(m.Body[16:])
					local = append(local, time.Duration(time.Now().UnixNano()-at))
					seenMu.Lock()
					seen[key]++
					if seen[key] > 1 && !topic {
						dups.Add(1)
					}
					seenMu.Unlock()
				}
				received.Add(1)
				lastRecv.Store(time.Now().UnixNano())
				if o.AckMode != "auto" {
					cn.c.Ack(m)
				}
				if o.Count > 0 && received.Load() >= expected(o, topic) {
					select {
					case <-producersDone:
						return
					default:
					}
				}
			}
		}()
	}
	start := time.Now()
	deadline := start.Add(o.Duration)
	var pwg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for p := range o.Producers {
		c, err := o.dial()
		if err != nil {
			return res, fmt.Errorf("producer connect: %w", err)
		}
		n := 0
		if o.Count > 0 {
			n = o.Count / o.Producers
			if p < o.Count%o.Producers {
				n++
			}
		}
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			// A graceful DISCONNECT waits for its receipt, so every SEND
			// before it has been taken by the broker (go-stomp queues
			// unreceipted SENDs; MustDisconnect would drop what is queued).
			defer func() {
				if err := c.Disconnect(); err != nil {
					firstErr.CompareAndSwap(nil, &err)
				}
			}()
			for i := 0; ctx.Err() == nil; i++ {
				if o.Count > 0 && i >= n || o.Count == 0 && time.Now().After(deadline) {
					return
				}
				// A new body each time: go-stomp queues an unreceipted
				// SEND and writes it later, holding on to the slice.
				body := make([]byte, o.Size)
				binary.LittleEndian.PutUint64(body, uint64(time.Now().UnixNano()))
				binary.LittleEndian.PutUint64(body[8:], uint64(p))
				binary.LittleEndian.PutUint64(body[16:], uint64(i))
				err := send(c, o, body)
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				sent.Add(1)
			}
		}()
	}
	pwg.Wait()
	sendSecs := time.Since(start).Seconds()
	close(producersDone)
	cwg.Wait()
	secs := time.Since(start).Seconds()
	res.Sent, res.Received, res.Duplicates = sent.Load(), received.Load(), dups.Load()
	res.Seconds = secs
	res.SentPerSec = float64(res.Sent) / sendSecs
	if len(cons) > 0 {
		// Up to the last delivery: the drain wait after it is not throughput.
		if last := lastRecv.Load(); last > 0 {
			res.RecvPerSec = float64(res.Received) / time.Duration(last-start.UnixNano()).Seconds()
		}
		res.Expected = res.Sent
		if topic {
			res.Expected = res.Sent * int64(len(cons))
		}
		// Lost: sent messages no consumer received.
		switch {
		case o.Producers == 0: // draining: of the Count there, how many did not come
			res.Expected = int64(o.Count)
			res.Lost = max(0, res.Expected-int64(len(seen)))
		case !topic:
			res.Lost = res.Sent - int64(len(seen))
		default:
			res.Lost = max(0, res.Expected-res.Received)
		}
	}
	slices.Sort(lats)
	res.P50Ms, res.P99Ms, res.P999Ms = pct(lats, 0.50), pct(lats, 0.99), pct(lats, 0.999)
	if e := firstErr.Load(); e != nil {
		res.ErrorsOrFirst = (*e).Error()
		return res, *e
	}
	return res, nil
}

func expected(o Options, topic bool) int64 {
	if topic {
		return int64(o.Count) * int64(o.Consumers)
	}
	return int64(o.Count)
}

// SelectorMatchingAll is a three-clause selector every SEND of a run with
// Options.Selector set matches.
const SelectorMatchingAll = "kind = 'order' AND amount > 100 AND region IN ('eu', 'us')"

func send(c *gostomp.Conn, o Options, body []byte) error {
	var opts []func(*frame.Frame) error
	if o.Receipt {
		opts = append(opts, gostomp.SendOpt.Receipt)
	}
	if o.Persistent {
		opts = append(opts, gostomp.SendOpt.Header("persistent", "true"))
	}
	if o.Selector != "" {
		opts = append(opts, gostomp.SendOpt.Header("kind", "order"), gostomp.SendOpt.Header("amount", "150"), gostomp.SendOpt.Header("region", "eu"))
	}
	return c.Send(o.Destination, "application/octet-stream", body, opts...)
}

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, int(float64(len(sorted))*p))
	return float64(sorted[i]) / float64(time.Millisecond)
}

// openIdle opens n raw STOMP connections, each subscribed to its own queue.
func openIdle(o Options) ([]net.Conn, error) {
	var conns []net.Conn
	for i := range o.Idle {
		c, err := net.DialTimeout("tcp", o.Addr, 10*time.Second)
		if err != nil {
			return conns, fmt.Errorf("idle connection %d: %w", i, err)
		}
		conns = append(conns, c)
		login := ""
		if o.Login != "" {
			login = "login:" + o.Login + "\npasscode:" + o.Passcode + "\n"
		}
		host := "localhost"
		if o.Host != "" {
			host = o.Host
		}
		fmt.Fprintf(c, "CONNECT\naccept-version:1.2\nhost:%s\n%sheart-beat:0,0\n\n\x00SUBSCRIBE\nid:0\ndestination:/queue/idle-%d\nack:client-individual\n\n\x00", host, login, i)
	}
	// Read each CONNECTED, so every connection is established on the broker.
	buf := make([]byte, 512)
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := c.Read(buf)
		if err != nil || !strings.HasPrefix(string(buf[:n]), "CONNECTED") {
			return conns, fmt.Errorf("idle connection %d: no CONNECTED (%v)", i, err)
		}
		c.SetReadDeadline(time.Time{})
	}
	return conns, nil
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
