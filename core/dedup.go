// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"context"
	"sync"
)

// DedupHeader is the SEND header that names a message for duplicate
// suppression: a second SEND to a queue with an id the broker has stored
// recently is confirmed (RECEIPT) but not stored again. A producer that
// sends again after a lost connection sets it, so that a SEND that was in
// fact stored the first time is not delivered twice. The name is
// ActiveMQ Artemis's, which accepts it over STOMP too.
const DedupHeader = "_AMQ_DUPL_ID"

// DefaultDedupWindow is how many recent ids are remembered.
const DefaultDedupWindow = 100_000

// dedupWindow remembers the last max ids, oldest evicted first.
type dedupWindow struct {
	max   int
	ids   map[string]struct{}
	order []string // a ring: order[head] is the oldest once full
	head  int
}

func newDedupWindow(max int) *dedupWindow {
	return &dedupWindow{max: max, ids: map[string]struct{}{}}
}

func (w *dedupWindow) has(id string) bool {
	_, ok := w.ids[id]
	return ok
}

func (w *dedupWindow) add(id string) {
	if w.max <= 0 || w.has(id) {
		return
	}
	if len(w.order) < w.max {
		w.order = append(w.order, id)
	} else {
		delete(w.ids, w.order[w.head])
		w.order[w.head] = id
		w.head = (w.head + 1) % w.max
	}
	w.ids[id] = struct{}{}
}

// each calls fn for every id, oldest first.
func (w *dedupWindow) each(fn func(string)) {
	for i := range w.order {
		fn(w.order[(w.head+i)%len(w.order)])
	}
}

// dedup is the broker's live duplicate suppression: ids stored, and ids
// being stored right now (a concurrent duplicate waits for the outcome).
type dedup struct {
	mu       sync.Mutex
	stored   *dedupWindow
	inflight map[string]chan struct{}
}

// dedupKey is what an id is remembered under: ids are per queue.
func dedupKey(m *Message) string {
	if m.Destination.Kind != Queue || !m.Persistent {
		return ""
	}
	id := m.Get(DedupHeader)
	if id == "" {
		return ""
	}
	return m.Destination.Name + "\x00" + id
}

// claim drops from msgs every message whose id was stored, and marks the
// ids of the rest as being stored. A message whose id another send is
// storing right now waits for that send: dropped if it succeeded, kept if
// it failed. release must be called with the outcome of storing the kept
// messages.
func (d *dedup) claim(ctx context.Context, msgs []*Message) (kept []*Message, release func(stored bool), err error) {
	named := false
	for _, m := range msgs {
		named = named || dedupKey(m) != ""
	}
	if !named {
		return msgs, func(bool) {}, nil
	}
	var claimed []string
	mine := map[string]bool{}
	kept = make([]*Message, 0, len(msgs))
	for _, m := range msgs {
		key := dedupKey(m)
		if key == "" {
			kept = append(kept, m)
			continue
		}
		if mine[key] {
			continue // the same id twice in one send: one copy
		}
		for {
			d.mu.Lock()
			if d.stored.has(key) {
				d.mu.Unlock()
				break // a duplicate: confirmed, not stored
			}
			if wait, busy := d.inflight[key]; busy {
				d.mu.Unlock()
				select {
				case <-wait:
					continue
				case <-ctx.Done():
					d.release(claimed, false)
					return nil, nil, ctx.Err()
				}
			}
			d.inflight[key] = make(chan struct{})
			d.mu.Unlock()
			mine[key] = true
			claimed = append(claimed, key)
			kept = append(kept, m)
			break
		}
	}
	return kept, func(stored bool) { d.release(claimed, stored) }, nil
}

func (d *dedup) release(keys []string, stored bool) {
	if len(keys) == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range keys {
		if stored {
			d.stored.add(k)
		}
		close(d.inflight[k])
		delete(d.inflight, k)
	}
}
