// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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
	for {
		used := b.store.used.Load()
		if used < lim {
			return nil
		}
		if b.opts.StoreFullError {
			return fmt.Errorf("%w: %d bytes of persistent messages held, the limit is %d", ErrStoreFull, used, lim)
		}
		b.store.mu.Lock()
		if b.store.closed {
			b.store.mu.Unlock()
			return ErrClosed
		}
		if b.store.room == nil {
			b.store.room = make(chan struct{})
		}
		room := b.store.room
		b.store.mu.Unlock()
		if b.store.used.Load() < lim {
			continue // room was made before we started waiting
		}
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// StoreUsed is the bytes of persistent messages the broker holds.
func (b *Broker) StoreUsed() int64 { return b.store.used.Load() }
