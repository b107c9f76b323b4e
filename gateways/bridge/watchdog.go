// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package bridge

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/gateways/stomp"
)

// watchdog finds a relayed queue subscription that upstream has stopped
// feeding while the link itself is healthy (the canary comes back): the
// subscription has room (nothing of it in flight), nothing has come for it
// for an interval, and upstream, asked with a statistics request
// (stomp.StatisticsPrefix), says its queue holds messages that wait for a
// consumer. Asked twice in a row with the same answer and nothing arrived
// between, the subscription is stalled: the watchdog logs it, counts it,
// and reconnects the link, so that upstream makes every subscription of
// the link afresh (as after any failover: what other subscriptions had in
// flight comes again, marked redelivered). Subscribing only that one again
// is not safe: an UNSUBSCRIBE of a subscription upstream has lost is an
// ERROR, which ends the connection anyway, and a second SUBSCRIBE beside
// one upstream still holds could strand what that one is given. It watches plain subscriptions only: one with a
// selector, exclusive or with a priority may rightly get nothing while its
// queue holds messages. It needs a Cairn upstream, which answers the
// request; ActiveMQ does only with its statisticsBrokerPlugin, in a
// MapMessage, so there the watchdog does not run.
type watchdog struct {
	l  *link
	id string // the subscription of its reply queue

	mu      sync.Mutex
	asked   map[string]*relay // by correlation id
	suspect map[*relay]bool   // answered "messages wait" once, nothing came since
	next    int
	cursor  int // round-robin over idle relays beyond the recently active
	stalls  int
}

// watchdogBatch bounds the statistics requests one check sends: a gateway
// with tens of thousands of idle subscriptions asks about those active in
// the last minute first, and the others in turn.
const watchdogBatch = 64

const watchdogReply = "/temp-queue/cairn-watchdog"

func newWatchdog(l *link) *watchdog {
	return &watchdog{l: l, id: "watchdog", asked: map[string]*relay{}, suspect: map[*relay]bool{}}
}

func (w *watchdog) subscribeFrame() *frame.Frame {
	return frame.New(frame.SUBSCRIBE, frame.Id, w.id, frame.Destination, watchdogReply, frame.Ack, "auto")
}

func (w *watchdog) lost() {
	w.mu.Lock()
	clear(w.asked)
	clear(w.suspect)
	w.mu.Unlock()
}

// message is upstream's answer to one request.
func (w *watchdog) message(f *frame.Frame) {
	w.mu.Lock()
	r := w.asked[f.Header.Get("correlation-id")]
	delete(w.asked, f.Header.Get("correlation-id"))
	w.mu.Unlock()
	if r == nil {
		return
	}
	waiting, err := strconv.Atoi(f.Header.Get("cairn-pending"))
	if err != nil || waiting == 0 || !r.starved(w.l.g.opts.CanaryEvery) {
		w.mu.Lock()
		delete(w.suspect, r)
		w.mu.Unlock()
		return
	}
	w.mu.Lock()
	again := w.suspect[r]
	if !again {
		w.suspect[r] = true
	} else {
		delete(w.suspect, r)
		w.stalls++
	}
	w.mu.Unlock()
	if !again {
		return
	}
	w.l.logger().Error("gateway: a subscription is stalled: upstream holds messages for it and none came; reconnecting its link",
		"link", w.l.name, "destination", r.dest.String(), "waiting_upstream", waiting, "idle", r.idleFor().Round(time.Millisecond))
	w.l.reconnect("a stalled subscription")
}

// check asks upstream about the relays that may be starved. It runs every
// canary interval while the link is connected.
func (w *watchdog) check() {
	if !w.l.cairnUpstream() {
		return
	}
	every := w.l.g.opts.CanaryEvery
	var recent, idle []*relay
	w.l.mu.Lock()
	for _, s := range w.l.subs {
		r, ok := s.(*relay)
		if !ok || !r.watchable() || !r.starved(every) {
			continue
		}
		if r.idleFor() < time.Minute {
			recent = append(recent, r)
		} else {
			idle = append(idle, r)
		}
	}
	w.l.mu.Unlock()
	w.mu.Lock()
	for r := range w.suspect {
		if !r.starved(every) {
			delete(w.suspect, r)
		}
	}
	ask := recent[:min(len(recent), watchdogBatch)]
	if room := watchdogBatch - len(ask); room > 0 && len(idle) > 0 {
		for i := range min(room, len(idle)) {
			ask = append(ask, idle[(w.cursor+i)%len(idle)])
		}
		w.cursor = (w.cursor + room) % len(idle)
	}
	clear(w.asked) // an answer not back within an interval is not waited for
	frames := make([]*frame.Frame, 0, len(ask))
	for _, r := range ask {
		w.next++
		id := strconv.Itoa(w.next)
		w.asked[id] = r
		frames = append(frames, frame.New(frame.SEND, frame.Destination, "/queue/"+stomp.StatisticsPrefix+r.dest.Name,
			"reply-to", watchdogReply, "correlation-id", id))
	}
	w.mu.Unlock()
	for _, f := range frames {
		if !w.l.send(f) {
			return
		}
	}
}

// watch runs check every canary interval until stop.
func (w *watchdog) watch(stop <-chan struct{}) {
	t := time.NewTicker(w.l.g.opts.CanaryEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			w.check()
		}
	}
}

// Stalls is how many subscriptions the watchdog found stalled.
func (w *watchdog) Stalls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stalls
}

// watchable says whether the watchdog may judge r: a plain queue
// subscription (no selector, not exclusive, no priority, not a durable's).
func (r *relay) watchable() bool {
	return r.dest.Kind == core.Queue && !strings.HasPrefix(r.dest.Name, "$") && r.opts.Selector == nil &&
		!r.opts.Exclusive && r.opts.Priority == 0 && len(r.extra) == 0
}

// starved says whether r has room and nothing of it is in flight or
// waiting here, and nothing has come for it for at least d.
func (r *relay) starved(d time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.closed && r.given == 0 && len(r.live) == 0 && len(r.held) == 0 && time.Since(r.lastMessage) >= d
}

// idleFor is how long since something last came for r.
func (r *relay) idleFor() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Since(r.lastMessage)
}
