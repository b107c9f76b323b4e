// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cairnmq/cairn/journal"
)

// ErrStoreFull says the broker holds StoreLimit bytes of persistent
// messages and is configured to refuse more rather than wait.
var ErrStoreFull = errors.New("core: the message store is full")

// storeGauge counts the bytes of persistent messages held, and wakes
// producers waiting for room.
type storeGauge struct {
	used   atomic.Int64
	mu     sync.Mutex
	room   chan struct{} // closed (and replaced) when usage falls below the limit
	closed bool
}

// storeUsed adds delta bytes to the usage and wakes the waiters when it
// falls below the limit.
func (b *Broker) storeUsed(delta int64) {
	now := b.store.used.Add(delta)
	if lim := b.opts.StoreLimit; lim > 0 && delta < 0 && now < lim && now-delta >= lim {
		b.store.wake()
	}
}

func (g *storeGauge) wake() {
	g.mu.Lock()
	if g.room != nil {
		close(g.room)
		g.room = nil
	}
	g.mu.Unlock()
}

// waitForStore holds a send with persistent messages back while the store
// is at its limit (or refuses it, with StoreFullError).
func (b *Broker) waitForStore(ctx context.Context, msgs []*Message) error {
	lim := b.opts.StoreLimit
	if lim <= 0 {
		return nil
	}
	persistent := false
	for _, m := range msgs {
		persistent = persistent || m.Persistent
	}
	if !persistent {
		return nil
	}
	if used := b.store.used.Load(); used >= lim && b.opts.StoreFullError {
		return fmt.Errorf("%w: %d bytes of persistent messages held, the limit is %d", ErrStoreFull, used, lim)
	}
	if b.journalFull() {
		// The journal's disk use counts too: maintenance, woken, frees
		// what compaction can (measureJournal wakes the waiters).
		b.kickMaintenance()
		if b.opts.StoreFullError {
			return fmt.Errorf("%w: the journal takes %d bytes on disk, the limit is %d", ErrStoreFull, b.journalBytes.Load(), b.journalLimit())
		}
	}
	return b.store.wait(ctx, func() bool { return b.store.used.Load() >= lim || b.journalFull() })
}

// waitForMemory holds a send of non-persistent queue messages back while
// the broker's memory is at MemoryLimit: they cannot be paged to the
// journal, so a producer that outruns every consumer is slowed instead of
// growing the heap without bound (ActiveMQ's producer flow control).
func (b *Broker) waitForMemory(ctx context.Context, msgs []*Message) error {
	lim := b.opts.MemoryLimit
	if lim <= 0 {
		return nil
	}
	volatile := false
	for _, m := range msgs {
		volatile = volatile || !m.Persistent && m.Destination.Kind == Queue
	}
	if !volatile {
		return nil
	}
	return b.mem.wait(ctx, func() bool { return b.memUsed.Load() >= lim })
}

// wait blocks while full reports true (until ctx ends, or the broker closes).
func (g *storeGauge) wait(ctx context.Context, full func() bool) error {
	for full() {
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			return ErrClosed
		}
		if g.room == nil {
			g.room = make(chan struct{})
		}
		room := g.room
		g.mu.Unlock()
		if !full() {
			return nil // room was made before we started waiting
		}
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// memoryFreed wakes senders waiting for memory when usage falls below the
// limit.
func (b *Broker) memoryFreed(delta int64) {
	now := b.memUsed.Add(delta)
	if lim := b.opts.MemoryLimit; lim > 0 && delta < 0 && now < lim && now-delta >= lim {
		b.mem.wake()
	}
}

// StoreUsed is the bytes of persistent messages the broker holds.
func (b *Broker) StoreUsed() int64 { return b.store.used.Load() }

// deferAcks keeps acknowledgement records the journal had no room for
// (journal.ErrNoSpace), to be appended once it has: the messages are gone
// from memory meanwhile, and a crash before then redelivers them.
func (b *Broker) deferAcks(recs []journal.Record) {
	b.deferMu.Lock()
	first := len(b.deferred) == 0
	b.deferred = append(b.deferred, recs...)
	n := len(b.deferred)
	b.deferMu.Unlock()
	if first {
		b.opts.Logger.Warn("journal: no room for acknowledgements; they are kept in memory and journaled once there is (a crash before redelivers them)", "records", n)
	}
}

// flushDeferredAcks appends the deferred acknowledgements, if the journal
// takes them now; the background loop calls it every ExpirySweep.
func (b *Broker) flushDeferredAcks() {
	b.deferMu.Lock()
	recs := b.deferred
	b.deferred = nil
	b.deferMu.Unlock()
	if len(recs) == 0 {
		return
	}
	if _, err := journal.AppendInBatches(context.Background(), b.log, recs, func(uint64, int) {}); err != nil {
		b.deferMu.Lock()
		b.deferred = append(recs, b.deferred...) // all again: appending an ack twice is harmless
		b.deferMu.Unlock()
		return
	}
	b.opts.Logger.Warn("journal: the acknowledgements kept in memory are journaled", "records", len(recs))
}

// DeferredAcks is how many acknowledgement records wait for room in the
// journal.
func (b *Broker) DeferredAcks() int {
	b.deferMu.Lock()
	defer b.deferMu.Unlock()
	return len(b.deferred)
}

// journalError says that err came from the journal, once: the journal's
// own errors (journal.ErrClosed, …) already begin with "journal: ".
func journalError(err error) error {
	if strings.HasPrefix(err.Error(), "journal: ") {
		return err
	}
	return fmt.Errorf("journal: %w", err)
}

// MemoryStats is what the broker holds in memory, in Message.Size bytes.
type MemoryStats struct {
	// Messages: every message held, queues' and topics'; MemoryLimit
	// bounds it, by paging persistent queue messages.
	Messages, Limit int64
	// Topics: what topic subscribers hold (in flight and in backlogs),
	// each message once however many hold it; part of Messages, and
	// bounded by TopicLimit (Options.TopicMemoryLimit).
	Topics, TopicLimit int64
}

// Memory reports what the broker holds in memory and its limits.
func (b *Broker) Memory() MemoryStats {
	return MemoryStats{Messages: b.memUsed.Load(), Limit: b.opts.MemoryLimit, Topics: b.topicUsed.Load(), TopicLimit: b.opts.TopicMemoryLimit}
}
