// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"fmt"
	"time"

	"github.com/cairnmq/cairn/journal"
)

// MaintainResult reports one maintenance pass.
type MaintainResult struct {
	Applied  uint64 // records the projection caught up on
	Snapshot uint64 // index of the snapshot taken (0: none)
	Pending  int    // pending persistent messages it holds
	Compact  journal.CompactResult
	Took     time.Duration
}

// catchUp applies the journal's records up to last to the projection,
// and reports how many it applied. The caller holds maintMu.
func (b *Broker) catchUp(last uint64) (uint64, error) {
	p := b.proj
	if last <= p.applied {
		return 0, nil
	}
	from := p.applied + 1
	_, err := journal.Replay(b.log, from, func(r journal.Record) error {
		if r.Index > last {
			return nil
		}
		return p.apply(r)
	}, journal.ReplayOptions{})
	if err != nil {
		return 0, fmt.Errorf("maintenance: catching up from %d: %w", from, err)
	}
	p.applied = max(p.applied, last)
	return last - from + 1, nil
}

// background runs maintenance every MaintainEvery.
func (b *Broker) background() {
	defer close(b.bgDone)
	var maintain, sweep <-chan time.Time
	if b.opts.MaintainEvery > 0 {
		t := time.NewTicker(b.opts.MaintainEvery)
		defer t.Stop()
		maintain = t.C
	}
	if b.opts.ExpirySweep > 0 {
		t := time.NewTicker(b.opts.ExpirySweep)
		defer t.Stop()
		sweep = t.C
	}
	for {
		select {
		case <-b.stopBg:
			return
		case <-maintain:
			if _, err := b.Maintain(false); err != nil {
				b.opts.Logger.Error("maintenance", "err", err)
			}
		case <-b.kick:
			if b.opts.MaintainEvery < 0 {
				continue // only Maintain calls
			}
			if _, err := b.Maintain(false); err != nil {
				b.opts.Logger.Error("maintenance", "err", err)
			}
		case <-sweep:
			b.sweepExpired()
			b.flushDeferredAcks()
		}
	}
}

// compactBefore is where compaction must stop, just after a snapshot at
// snap: replay moves forward only the records before the snapshot it starts
// from, and a journal that keeps older snapshots, to fall back on if the
// newest is damaged, needs the records after the oldest of them.
func compactBefore(log journal.Log, snap uint64) (uint64, error) {
	k, ok := log.(journal.SnapshotKeeper)
	if !ok {
		return snap + 1, nil
	}
	oldest, err := k.OldestSnapshot()
	if err != nil {
		return 0, fmt.Errorf("the oldest snapshot kept: %w", err)
	}
	return min(oldest, snap) + 1, nil
}

// Maintain brings the projection up to the journal's end and, if
// SnapshotEvery records have piled up since the last snapshot (or force),
// saves a snapshot there and compacts the journal: head segments whose
// pending messages are a small share of them have those messages' records
// copied to the tail and are freed. Replay then starts at the snapshot and
// the journal stays near the size of what is pending.
func (b *Broker) Maintain(force bool) (MaintainResult, error) {
	b.maintMu.Lock()
	defer b.maintMu.Unlock()
	start := time.Now()
	var res MaintainResult
	p := b.proj
	last := b.log.LastIndex()
	if !force && !b.dueForSnapshot() {
		return res, nil
	}
	n, err := b.catchUp(last)
	if err != nil {
		return res, err
	}
	res.Applied = n
	res.Pending = p.pendingCount()
	snap, ok := b.log.(journal.Snapshotter)
	if !ok {
		return res, nil
	}
	// A snapshot must not cover records a crash could still take (lazy
	// appends, or a sync policy other than always): make them durable first.
	if sy, ok := b.log.(journal.Syncer); ok {
		if err := sy.Sync(); err != nil {
			return res, fmt.Errorf("maintenance: sync before the snapshot: %w", err)
		}
	}
	enc := p.encode()
	if err := snap.SaveSnapshot(p.applied, enc); err != nil {
		return res, fmt.Errorf("maintenance: snapshot at %d: %w", p.applied, err)
	}
	res.Snapshot = p.applied
	b.snapIndex.Store(p.applied)
	b.lastSnapSize.Store(int64(len(enc)))
	b.maint.snapshots.Add(1)
	b.maint.lastSnapshot.Store(time.Now().UnixNano())
	defer b.measureJournal()
	if _, ok := b.log.(journal.Segmenter); ok {
		threshold := b.opts.CompactThreshold
		if b.journalFull() {
			threshold = 0.9 // at the store limit: compact harder
		}
		before, err := compactBefore(b.log, p.applied)
		if err != nil {
			return res, fmt.Errorf("maintenance: %w", err)
		}
		cr, err := journal.Compact(b.log, journal.CompactOptions{
			Live: p.live.has,
			LiveBytes: func(first, last uint64) int64 {
				_, size := p.live.count(first, last)
				return size
			},
			Before:    before,
			Threshold: threshold,
		})
		if err != nil {
			return res, fmt.Errorf("maintenance: %w", err)
		}
		res.Compact = cr
		if len(cr.Removed) > 0 {
			b.maint.compactions.Add(1)
			b.maint.freed.Add(cr.FreedBytes)
		}
		if len(cr.Moves) > 0 {
			// The projection learns where the moved messages are from the
			// copies themselves (each names the record it came from), at
			// once: a queue reading a paged message back from a freed
			// record asks the projection where it went.
			if _, err := b.catchUp(b.log.LastIndex()); err != nil {
				return res, err
			}
		}
	}
	res.Took = time.Since(start)
	if len(res.Compact.Removed) > 0 || res.Applied > 0 {
		b.opts.Logger.Info("journal maintenance", "snapshot", res.Snapshot, "pending", res.Pending,
			"moved", len(res.Compact.Moves), "freed_segments", len(res.Compact.Removed), "freed_bytes", res.Compact.FreedBytes, "took", res.Took)
	}
	return res, nil
}

// MaintenanceStats is what maintenance has done since the broker opened.
type MaintenanceStats struct {
	Snapshots    uint64
	LastSnapshot time.Time // zero: none yet
	// Compactions that freed segments, and the bytes they freed.
	Compactions uint64
	FreedBytes  int64
}

// Maintenance reports what maintenance has done.
func (b *Broker) Maintenance() MaintenanceStats {
	st := MaintenanceStats{Snapshots: b.maint.snapshots.Load(), Compactions: b.maint.compactions.Load(), FreedBytes: b.maint.freed.Load()}
	if ns := b.maint.lastSnapshot.Load(); ns > 0 {
		st.LastSnapshot = time.Unix(0, ns)
	}
	return st
}
