// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnmq/cairn/journal"
)

// Options configure a Broker.
type Options struct {
	// Journal is where every persistent operation is recorded. Required.
	Journal journal.Log
	// PersistentByDefault makes a SEND without a persistent header
	// persistent (ActiveMQ's STOMP default is non-persistent).
	PersistentByDefault bool
	// DispatchLookahead is how far past a delivered sequence a queue's
	// journaled dispatch bound reaches (default 1024): one evDispatched
	// record per that many deliveries.
	DispatchLookahead uint64
	// TopicBacklog bounds the messages a topic holds for one subscriber
	// beyond its prefetch (default 10,000). While one is half full,
	// publishers to the topic wait for it to drain; once a publisher has
	// waited TopicPublishWait (default 1s), that subscriber stops holding
	// them up and, past a full backlog, loses its oldest messages (counted
	// in the log) until it catches up. A subscriber that stops reading costs
	// the topic one such wait, and never stalls it.
	TopicBacklog     int
	TopicPublishWait time.Duration
	// TopicBacklogBytes bounds the same backlog in bytes (default 64 MiB, or
	// a quarter of TopicMemoryLimit if less):
	// past it too, the oldest messages are lost. Subscription.Dropped
	// counts what each subscriber lost. A topic subscriber's deliveries in
	// flight (delivered, not acknowledged) are bounded by it as well,
	// whatever its prefetch: past it, messages wait in the backlog.
	TopicBacklogBytes int64
	// TopicMemoryLimit bounds what all topic subscribers hold together, in
	// flight and in backlogs (default a quarter of MemoryLimit; with no
	// MemoryLimit, no bound beyond each subscriber's). It counts towards
	// MemoryLimit too. Past it, a subscriber holding more than its fair
	// part (the limit over the subscribers holding anything) loses its
	// oldest held messages, then new ones, counted in Dropped; one that
	// keeps up loses nothing (topic.go).
	TopicMemoryLimit int64
	// Logger receives broker events (default slog.Default()).
	Logger *slog.Logger
	// Progress, if set, is called during the start-up replay.
	Progress func(journal.Progress)
	// ExpiredToDLQ moves a queue's expired persistent messages to its
	// dead-letter queue instead of dropping them (ActiveMQ does by default;
	// here it is a choice, since a DLQ filling with expired messages is a
	// common ActiveMQ complaint).
	ExpiredToDLQ bool
	// ExpirySweep is how often queues look for expired messages that no
	// consumer has come for (default 1s; negative: never, expiry is then
	// checked only on arrival and before dispatch).
	ExpirySweep time.Duration
	// DurableOfflineTimeout removes a durable subscription that has had no
	// subscriber for this long, with what was kept for it (0: never;
	// ActiveMQ's offlineDurableSubscriberTimeout). Checked at each sweep.
	DurableOfflineTimeout time.Duration
	// StoreLimit bounds the bytes of persistent messages the broker holds
	// (0: no limit). Once they reach it, a SEND of a persistent message
	// waits until consumers make room (producer flow control: its RECEIPT
	// waits, and its connection reads nothing more meanwhile), or, with
	// StoreFullError, fails with ErrStoreFull.
	StoreLimit     int64
	StoreFullError bool
	// MemoryLimit bounds the bytes of messages the broker holds in memory
	// (0: no limit): queues' (waiting, delayed, delivered and not
	// acknowledged) and topic subscribers' (TopicMemoryLimit);
	// QueueMemoryLimit one queue's. Past them, persistent queue messages
	// are paged: kept in the journal only and read back as consumers come
	// to them (see paging.go).
	MemoryLimit      int64
	QueueMemoryLimit int64
	// Redelivery gives queues redelivery policies: the first rule whose
	// pattern matches a queue's name applies, else DefaultRedelivery.
	Redelivery []RedeliveryRule
	// Standby, if set, is state a warm standby kept while it waited: Open
	// replays only the records after those it read. If it does not fit the
	// journal (the journal was cut or compacted past it), Open logs so and
	// replays from the snapshot as usual.
	Standby *Standby
	// SnapshotEvery is how many journal records may pile up after the last
	// snapshot before the background maintenance takes another and compacts
	// (default 100,000); SnapshotBytes how many bytes of them (default 16
	// MiB, or four times the last snapshot's size if that is more), counted
	// from the snapshot as the journal holds them, restarts or not (see
	// journalsize.go). MaintainEvery is how often it looks (default 5s;
	// negative: never, only Maintain calls); passing SnapshotBytes wakes it
	// at once.
	SnapshotEvery uint64
	SnapshotBytes int64
	MaintainEvery time.Duration
	// CompactThreshold is the live share under which head segments are
	// rewritten (default 0.5, journal.Compact's).
	CompactThreshold float64
}

// Recovery reports what the start-up replay found.
type Recovery struct {
	Snapshot uint64        // journal index the snapshot covered (0: none)
	Records  uint64        // journal records read
	Messages int           // persistent messages pending after replay
	Queues   int           // queues holding them
	Took     time.Duration // replay time
	Warm     bool          // Open started from a warm Standby's state
}

// Broker is the broker state machine: destinations, their messages and
// subscriptions. Each destination runs its own goroutine; the Broker itself
// only finds destinations.
type Broker struct {
	opts     Options
	log      journal.Log
	seq      atomic.Uint64 // last message sequence given out
	recovery Recovery

	maintMu sync.Mutex  // one maintenance pass at a time
	proj    *projection // owned by maintenance (after Open)
	dd      *dedup      // live duplicate suppression of SENDs

	wild         map[string]*topic    // wildcard topics (also in topics), by pattern; guarded by mu
	store        storeGauge           // persistent bytes held, for StoreLimit
	memUsed      atomic.Int64         // bytes of messages held in memory, for MemoryLimit
	mem          storeGauge           // wakes senders waiting for memory (its room and closed)
	topicUsed    atomic.Int64         // bytes topic subscribers hold (in memUsed too), for TopicMemoryLimit
	topicHolders atomic.Int64         // topic subscribers holding anything
	wildCount    atomic.Int32         // len(wild), read without the lock
	watchers     map[int]func(string) // WatchQueues; guarded by mu
	nextWatch    int
	durCount     atomic.Int32 // len(durables), read without the lock
	durMu        sync.Mutex   // serializes creating and removing durable subscriptions
	durables     map[durableKey]*durable
	byTopic      map[string][]*durable
	wildDurables map[string]bool // patterns in byTopic that are wildcards
	stopBg       chan struct{}
	bgDone       chan struct{}
	kick         chan struct{} // wakes maintenance (journalsize.go)
	snapIndex    atomic.Uint64 // the newest snapshot's index (0: none)
	lastSnapSize atomic.Int64  // its size
	sinceSnap    atomic.Int64  // journal bytes after it, about
	journalBytes atomic.Int64  // the journal's bytes, about
	maint        struct {      // for Maintenance
		snapshots, compactions atomic.Uint64
		lastSnapshot, freed    atomic.Int64
	}
	largestSegment atomic.Int64 // the largest segment's bytes
	deferMu        sync.Mutex
	deferred       []journal.Record // acknowledgements waiting for room in the journal (store.go)
	fetches        sync.WaitGroup   // paged messages being read back (paging.go)

	mu     sync.Mutex
	queues map[string]*queue
	topics map[string]*topic
	closed bool
}

// Errors the gateway maps to ERROR frames.
var (
	ErrClosed     = errors.New("broker is shutting down")
	ErrUnknownAck = errors.New("no delivered, unacknowledged message with that id on this subscription")
)

// Open rebuilds the broker's state by replaying the journal and starts its
// destinations.
func Open(opts Options) (*Broker, error) {
	if opts.Journal == nil {
		return nil, errors.New("core: no journal")
	}
	if opts.DispatchLookahead == 0 {
		opts.DispatchLookahead = 1024
	}
	if opts.TopicBacklog <= 0 {
		opts.TopicBacklog = 10000
	}
	if opts.TopicMemoryLimit <= 0 && opts.MemoryLimit > 0 {
		opts.TopicMemoryLimit = opts.MemoryLimit / 4
	}
	if opts.TopicBacklogBytes <= 0 {
		// One subscriber that stopped reading takes at most a quarter of
		// what topics may hold, in flight and again in its backlog.
		opts.TopicBacklogBytes = 64 << 20
		if lim := opts.TopicMemoryLimit; lim > 0 {
			opts.TopicBacklogBytes = min(opts.TopicBacklogBytes, lim/4)
		}
	}
	if opts.TopicPublishWait <= 0 {
		opts.TopicPublishWait = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.SnapshotEvery == 0 {
		opts.SnapshotEvery = 100000
	}
	if opts.SnapshotBytes <= 0 {
		opts.SnapshotBytes = 16 << 20
	}
	if opts.ExpirySweep == 0 {
		opts.ExpirySweep = time.Second
	}
	if opts.MaintainEvery == 0 {
		opts.MaintainEvery = 5 * time.Second
	}
	b := &Broker{opts: opts, log: opts.Journal, queues: map[string]*queue{}, topics: map[string]*topic{}, wild: map[string]*topic{},
		stopBg: make(chan struct{}), bgDone: make(chan struct{}), kick: make(chan struct{}, 1)}
	if err := b.replay(); err != nil {
		return nil, err
	}
	b.snapIndex.Store(b.recovery.Snapshot)
	b.measureJournal()
	if b.dueForSnapshot() {
		b.kickMaintenance() // what earlier runs left: at once, not at the first tick
	}
	go b.background()
	return b, nil
}

// Recovery reports what Open replayed.
func (b *Broker) Recovery() Recovery { return b.recovery }

// queue returns the queue named name, creating it.
func (b *Broker) queue(name string) *queue {
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.queues[name]
	if q == nil || q.deleted.Load() {
		q = newQueue(b, name)
		b.queues[name] = q
		for _, w := range b.watchers {
			go w(name) // not under mu: a watcher subscribes
		}
	}
	return q
}

// WatchQueues calls fn, on a goroutine of its own, with the name of every
// queue made from now on, until stop is called. (Wildcard queue
// subscriptions use it to follow queues that appear.)
func (b *Broker) WatchQueues(fn func(name string)) (stop func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.watchers == nil {
		b.watchers = map[int]func(string){}
	}
	b.nextWatch++
	id := b.nextWatch
	b.watchers[id] = fn
	return func() {
		b.mu.Lock()
		delete(b.watchers, id)
		b.mu.Unlock()
	}
}

func (b *Broker) topic(name string) *topic {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[name]
	if t == nil {
		t = newTopic(b, name)
		if IsWildcard(name) {
			b.wild[name] = t
			b.wildCount.Add(1)
		}
		b.topics[name] = t
	}
	return t
}

// PersistentByDefault says whether a SEND without a persistent header is
// persistent.
func (b *Broker) PersistentByDefault() bool { return b.opts.PersistentByDefault }

// stamp gives m the next sequence and, if it has none, a timestamp.
func (b *Broker) stamp(m *Message) {
	m.Seq = b.seq.Add(1)
	if m.Timestamp == 0 {
		m.Timestamp = time.Now().UnixMilli()
	}
}

// Send delivers m to its destination. A persistent message to a queue is
// journaled first: when Send returns nil it is durable. (A topic with no
// durable subscriptions keeps nothing, so persistent topic messages are not
// journaled, as in ActiveMQ.) Send sets m.Seq.
func (b *Broker) Send(ctx context.Context, m *Message) error {
	return b.SendConfirmed(ctx, []*Message{m}, nil)
}

// SendMany sends msgs in order, journaling the persistent queue messages
// among them with as few appends as the journal's batch limit allows
// (journal.BatchLimiter; one where it has none): a connection's burst of
// unreceipted SENDs costs one group commit, not one each. The burst is not
// atomic: each message is stored whole, but where the journal limits a
// batch, a failure can leave the first ones stored and delivered. When it
// returns nil they are all durable and delivered to their destinations.
func (b *Broker) SendMany(ctx context.Context, msgs []*Message) error {
	return b.send(ctx, msgs, nil, false)
}

// SendConfirmed sends msgs, one operation (a SEND, with a composite
// destination's copies), as one atomic append: all of them are stored or
// none. If their records (with the topic's durable subscriptions' copies)
// are more than one append may hold, it stores nothing and returns an error
// wrapping ErrTooLarge. It calls confirmed (unless nil) once msgs are
// durable and queued to their destinations, before it hands them on to
// consumers where it can: a listener writes the producer's RECEIPT there,
// so that the producer's next message is on its way while this one is
// dispatched. confirmed must not wait on the broker.
func (b *Broker) SendConfirmed(ctx context.Context, msgs []*Message, confirmed func()) error {
	return b.send(ctx, msgs, confirmed, true)
}

// ErrStoreUnavailable is the error of a persistent message while the
// journal's device is full (journal.SpaceGuard): it is refused, stored
// nowhere, while acknowledgements and non-persistent messages go on.
var ErrStoreUnavailable = errors.New("core: the message store is out of disk space; persistent messages are refused until it has room")

// checkSpace refuses new persistent data while the journal is low on space.
func (b *Broker) checkSpace() error {
	if sg, ok := b.log.(journal.SpaceGuard); ok && sg.LowOnSpace() {
		return ErrStoreUnavailable
	}
	return nil
}

// ErrTooLarge is the error of an operation that must be stored atomically
// and needs more than one journal append may hold (journal.BatchLimiter).
var ErrTooLarge = errors.New("core: too large to store in one journal append")

func (b *Broker) send(ctx context.Context, msgs []*Message, confirmed func(), atomic bool) error {
	if b.isClosed() {
		return ErrClosed
	}
	if err := b.waitForStore(ctx, msgs); err != nil {
		return err
	}
	if err := b.waitForMemory(ctx, msgs); err != nil {
		return err
	}
	msgs = b.withDurableCopies(dropExpired(msgs))
	msgs, release, err := b.dd.claim(ctx, msgs)
	if err != nil {
		return err
	}
	recs := b.enqueueRecords(nil, msgs)
	stored, err := b.journalEnqueues(ctx, msgs, recs, atomic)
	release(err == nil)
	if err != nil {
		if len(stored) > 0 {
			b.deliver(stored, nil) // what is in the journal is in the queues too
		}
		return err
	}
	b.deliver(msgs, confirmed)
	return nil
}

// journalEnqueues journals recs, the enqueue records of the persistent queue messages
// among msgs in order, and tells those messages where they landed. With
// atomic, recs go in one append, or, when they do not fit, nothing is
// stored and the error wraps ErrTooLarge; without, they are split where the
// journal's batch limit says. It returns the prefix of msgs that is stored
// (or needs no storing), which the caller delivers whatever the error.
func (b *Broker) journalEnqueues(ctx context.Context, msgs []*Message, recs []journal.Record, atomic bool) ([]*Message, error) {
	if len(recs) == 0 {
		return msgs, nil
	}
	if err := b.checkSpace(); err != nil {
		return nil, err
	}
	if atomic {
		if err := journal.LimitOf(b.log).Check(recs); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrTooLarge, err)
		}
	}
	defer b.noteAppended(recs)
	i := 0 // msgs[:i] are stored or need no storing
	_, err := journal.AppendInBatches(ctx, b.log, recs, func(first uint64, n int) {
		for ; n > 0; i++ {
			if m := msgs[i]; m.Persistent && m.Destination.Kind == Queue {
				m.index = first
				first, n = first+1, n-1
			}
		}
	})
	if err != nil {
		return msgs[:i], journalError(err)
	}
	return msgs, nil
}

// setIndexes records where each persistent queue message's enqueue record
// landed: in order from first, as enqueueRecords made them.
func setIndexes(msgs []*Message, first uint64) {
	for _, m := range msgs {
		if m.Persistent && m.Destination.Kind == Queue {
			m.index = first
			first++
		}
	}
}

// enqueueRecords stamps msgs and appends to recs the enqueue events of the
// persistent queue messages among them.
func (b *Broker) enqueueRecords(recs []journal.Record, msgs []*Message) []journal.Record {
	for _, m := range msgs {
		b.stamp(m)
		if m.Persistent && m.Destination.Kind == Queue {
			recs = append(recs, journal.Record{Type: evEnqueue, Data: encodeEnqueue(m)})
		}
	}
	return recs
}

// publish hands a message to its topic and the wildcard topics that match.
func (b *Broker) publish(m *Message) {
	b.topic(m.Destination.Name).publish(m)
	for _, w := range b.wildcardTopics(m.Destination.Name) {
		w.publish(m)
	}
}

// deliver hands sent messages to their destinations, in order, and calls
// confirmed (unless nil) once each is queued there (then topics go first).
// With confirmed, a queue whose loop is idle is claimed (loop.claim)
// rather than posted to: nothing can overtake the message there, and once
// confirmed has run, this goroutine takes it in, dispatches it, and hands
// it to consumers that can take it so (LaterConsumer) to write on this
// goroutine too. On a small machine that saves the producer's receipt a
// thread wake-up, and the message a goroutine start or two.
func (b *Broker) deliver(msgs []*Message, confirmed func()) {
	type heldMsg struct {
		q *queue
		m *Message
	}
	var held []heldMsg
	if confirmed != nil {
		// Topics first: a publish may wait on a slow subscriber, which
		// must not hold up a claimed queue.
		for _, m := range msgs {
			if m.Destination.Kind == Topic {
				b.publish(m)
			}
		}
	}
	for _, m := range msgs {
		if m.Destination.Kind == Topic {
			if confirmed == nil {
				b.publish(m)
			}
			continue
		}
		q := b.queue(m.Destination.Name)
		if confirmed != nil && (slices.ContainsFunc(held, func(h heldMsg) bool { return h.q == q }) || q.claim()) {
			held = append(held, heldMsg{q, m})
			continue
		}
		q.enqueue(m)
	}
	if confirmed != nil {
		confirmed()
	}
	var flushes []LaterConsumer
	for i, h := range held {
		if slices.ContainsFunc(held[:i], func(o heldMsg) bool { return o.q == h.q }) {
			continue // taken in with the first of its queue
		}
		h.q.runClaimed(func() {
			h.q.flushes = &flushes
			for _, o := range held[i:] {
				if o.q == h.q {
					h.q.add(o.m)
				}
			}
			h.q.flushes = nil
		})
	}
	for _, c := range flushes {
		c.Flush()
	}
}

// wildcardTopics returns the wildcard topics (those subscribed to as
// "news.>", say) whose pattern matches topic name, other than name itself.
func (b *Broker) wildcardTopics(name string) []*topic {
	if b.wildCount.Load() == 0 || private(name) {
		return nil // the usual case: no lock on the publish path
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*topic
	for pattern, t := range b.wild {
		if pattern != name && MatchDestination(pattern, name) {
			out = append(out, t)
		}
	}
	return out
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// Close stops every destination. Pending messages stay in the journal.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	b.closed = true
	close(b.stopBg)
	for _, g := range []*storeGauge{&b.store, &b.mem} {
		g.mu.Lock()
		g.closed = true
		g.mu.Unlock()
		g.wake()
	}
	qs := make([]*queue, 0, len(b.queues))
	for _, q := range b.queues {
		qs = append(qs, q)
	}
	ts := make([]*topic, 0, len(b.topics))
	for _, t := range b.topics {
		ts = append(ts, t)
	}
	b.mu.Unlock()
	for _, q := range qs {
		q.stop()
	}
	for _, t := range ts {
		t.stop()
	}
	<-b.bgDone
	b.fetches.Wait()
	return nil
}

// Stats is a point-in-time view of one destination.
type Stats struct {
	Destination Destination
	// Depth: what the queue holds.
	Pending int // waiting for a consumer (Paged of them in the journal only)
	Paged   int
	// Unreadable: pending messages whose journal records do not read back
	// (damaged), set aside since the broker started: not delivered, not in
	// Pending, still in the journal.
	Unreadable int
	Delayed    int // given back, waiting out a redelivery delay
	InFlight   int // delivered, not acknowledged
	// Since the broker started (replayed messages are not counted in).
	Enqueued     int // messages sent to it
	Dequeued     int // messages acknowledged
	Expired      int
	DeadLettered int // moved to the dead-letter queue
	Consumers    int
	// Producers is how many connections sent to it in the last minute
	// (STOMP has no producer objects; ActiveMQ's STOMP producers are
	// anonymous and count for no destination).
	Producers int
	// MemoryBytes is about what the messages held take in memory;
	// JournalBytes what the persistent ones among them take in the journal
	// (the same measure: the journal stores each message as it came).
	MemoryBytes, JournalBytes int64
}

// Depth is how many messages the queue holds.
func (s Stats) Depth() int { return s.Pending + s.Delayed + s.InFlight }

// Queues returns the stats of every queue, by name.
func (b *Broker) Queues() []Stats {
	b.mu.Lock()
	names := make([]string, 0, len(b.queues))
	for n := range b.queues {
		names = append(names, n)
	}
	b.mu.Unlock()
	slices.Sort(names)
	out := make([]Stats, 0, len(names))
	for _, n := range names {
		if s, ok := b.QueueStats(n); ok {
			out = append(out, s)
		}
	}
	return out
}

// Browse returns the messages of queue name, without taking them: those
// waiting, waiting out a redelivery delay, and delivered but not yet
// acknowledged, in dispatch order (priority, then sequence). False if the
// queue does not exist.
func (b *Broker) Browse(name string) ([]*Message, bool) {
	b.mu.Lock()
	q := b.queues[name]
	b.mu.Unlock()
	if q == nil {
		return nil, false
	}
	var out []*Message
	q.do(func() {
		out = make([]*Message, 0, q.pending.len()+len(q.delayed)+len(q.inflight))
		q.pending.each(func(e *entry) { out = append(out, e.msg) })
		for _, e := range q.delayed {
			out = append(out, e.msg)
		}
		for _, f := range q.inflight {
			out = append(out, f.e.msg)
		}
	})
	slices.SortFunc(out, func(x, y *Message) int {
		switch {
		case before(x, y):
			return -1
		case before(y, x):
			return 1
		}
		return 0
	})
	return out, true
}

// QueueStats returns the stats of queue name, or false if it does not exist.
func (b *Broker) QueueStats(name string) (Stats, bool) {
	b.mu.Lock()
	q := b.queues[name]
	b.mu.Unlock()
	if q == nil {
		return Stats{}, false
	}
	var s Stats
	q.do(func() {
		s = Stats{Destination: Destination{Queue, name}, Pending: q.pending.len() + q.paged, Paged: q.paged, Unreadable: len(q.aside), Delayed: len(q.delayed),
			InFlight: len(q.inflight) + len(q.acking), Enqueued: q.enqueued, Dequeued: q.dequeued, Expired: q.expired,
			DeadLettered: q.deadLettered, Consumers: len(q.consumers), Producers: q.activeProducers(), MemoryBytes: q.bytes, JournalBytes: q.storedBytes + q.pagedBytes}
	})
	return s, true
}
