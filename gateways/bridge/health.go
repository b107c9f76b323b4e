// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package bridge

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
)

// canary proves a link moves messages, not only bytes: every interval it
// sends a small non-persistent message through upstream to a topic of the
// link's own, subscribed on the same link, and times its return. A link
// that is connected, heart-beats and all, but gets a canary back not
// within two intervals is stalled (ActiveMQ's bridges fail exactly so: the
// connection looks healthy and nothing moves), and is reconnected.
type canary struct {
	l     *link
	id    string
	topic string

	mu       sync.Mutex
	sent     map[string]time.Time // canaries out, by their number
	next     int
	lastBack time.Time
	rtt      time.Duration
	stalls   int
	woken    chan struct{}
}

func newCanary(l *link) *canary {
	// A temporary topic of the gateway's own: private upstream, so that no
	// wildcard subscriber (/topic/>) sees canaries.
	return &canary{l: l, id: "canary", topic: "/remote-temp-topic/" + l.g.id + ":canary." + strconv.FormatUint(l.g.linkN.Add(1), 10),
		sent: map[string]time.Time{}, woken: make(chan struct{}, 1)}
}

func (c *canary) subscribeFrame() *frame.Frame {
	return frame.New(frame.SUBSCRIBE, frame.Id, c.id, frame.Destination, c.dest(), frame.Ack, "auto")
}

// dest is where the canary goes. On a Cairn upstream, a temporary topic
// named by the gateway (one per link); on another broker (ActiveMQ), the
// connection's own /temp-topic/, which that broker keeps private to the
// connection as Cairn does.
func (c *canary) dest() string {
	if c.l.cairnUpstream() {
		return c.topic
	}
	return "/temp-topic/cairn-canary"
}

func (c *canary) lost() {
	c.mu.Lock()
	clear(c.sent)
	c.mu.Unlock()
}

func (c *canary) message(f *frame.Frame) {
	n := f.Header.Get("cairn-canary")
	c.mu.Lock()
	if t, ok := c.sent[n]; ok {
		c.rtt, c.lastBack = time.Since(t), time.Now()
		delete(c.sent, n)
	}
	c.mu.Unlock()
}

// watch sends a canary every interval while the connection lasts (until
// stop), and returns an error once one has been out for two intervals: a
// stall is found within three intervals of its start (the first canary it
// swallows leaves at most one interval after it began).
func (c *canary) watch(stop <-chan struct{}) error {
	every := c.l.g.opts.CanaryEvery
	t := time.NewTicker(every / 4)
	defer t.Stop()
	var lastSent time.Time
	for {
		select {
		case <-stop:
			return nil
		case <-t.C:
		}
		c.mu.Lock()
		oldest := time.Time{}
		for _, at := range c.sent {
			if oldest.IsZero() || at.Before(oldest) {
				oldest = at
			}
		}
		if !oldest.IsZero() && time.Since(oldest) > 2*every {
			c.stalls++
			clear(c.sent)
			c.mu.Unlock()
			return fmt.Errorf("a canary sent %s ago has not come back through the upstream (one is sent every %s)", time.Since(oldest).Round(time.Millisecond), every)
		}
		if time.Since(lastSent) < every {
			c.mu.Unlock()
			continue
		}
		lastSent = time.Now()
		c.next++
		n := strconv.Itoa(c.next)
		c.sent[n] = lastSent
		c.mu.Unlock()
		if !c.l.send(frame.New(frame.SEND, frame.Destination, c.dest(), "cairn-canary", n)) {
			return nil // the connection is going anyway
		}
	}
}

// LinkStatus is one upstream link's health.
type LinkStatus struct {
	Name      string    `json:"name"`
	Upstream  string    `json:"upstream"` // the broker it is (or was last) connected to
	Up        bool      `json:"up"`
	Since     time.Time `json:"since"` // when it last connected or went down
	Connects  int       `json:"connects"`
	LastError string    `json:"last_error,omitempty"`
	// Subscriptions carried (relayed queue and durable subscriptions, topic
	// groups) and SENDs and other requests waiting for an answer.
	Subscriptions int `json:"subscriptions"`
	Waiting       int `json:"waiting"`
	// Traffic since the gateway started.
	FramesIn  uint64 `json:"frames_in"`
	FramesOut uint64 `json:"frames_out"`
	BytesIn   uint64 `json:"body_bytes_in"`
	BytesOut  uint64 `json:"body_bytes_out"`
	// LastFrame is when the link last read anything, heart-beats included.
	LastFrame time.Time `json:"last_frame"`
	// The canary's last round trip, when it last came back, and how many
	// times the link was found stalled and reconnected.
	CanaryRTT  time.Duration `json:"canary_rtt_ns"`
	CanaryBack time.Time     `json:"canary_back"`
	Stalls     int           `json:"stalls"`
	// SubscriptionStalls is how many times the watchdog found one of the
	// link's subscriptions stalled and subscribed it again.
	SubscriptionStalls int `json:"subscription_stalls"`
}

// Status reports every link's health.
func (g *Gateway) Status() []LinkStatus {
	links := append([]*link(nil), g.links...)
	g.durMu.Lock()
	for _, l := range g.durLink {
		links = append(links, l)
	}
	g.durMu.Unlock()
	var out []LinkStatus
	for _, l := range links {
		l.mu.Lock()
		s := LinkStatus{Name: l.name, Upstream: l.addr, Up: l.conn != nil, Since: l.since, Connects: l.connects,
			LastError: l.lastErr, Subscriptions: len(l.subs), Waiting: len(l.waiters)}
		l.mu.Unlock()
		if l.canary != nil {
			s.Subscriptions -= 2 // the canary's and the watchdog's own
			l.canary.mu.Lock()
			s.CanaryRTT, s.CanaryBack, s.Stalls = l.canary.rtt, l.canary.lastBack, l.canary.stalls
			l.canary.mu.Unlock()
			s.SubscriptionStalls = l.watchdog.Stalls()
		}
		s.FramesIn, s.FramesOut, s.BytesIn, s.BytesOut = l.framesIn.Load(), l.framesOut.Load(), l.bytesIn.Load(), l.bytesOut.Load()
		if ns := l.lastIn.Load(); ns > 0 {
			s.LastFrame = time.Unix(0, ns)
		}
		out = append(out, s)
	}
	return out
}
