// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"github.com/cairnmq/cairn/journal"
)

// The journal stays bounded by what is pending. Maintenance (a snapshot,
// then compaction) runs when the records or the bytes written since the
// newest snapshot pass SnapshotEvery or snapshotBytes. Both are counted
// from the snapshot, as the journal holds them, not from when this process
// started: a broker restarted more often than it fills an interval still
// snapshots, and a start-up replays at most about one interval.
//
// The bytes are measured from the journal's segments (journal.Segmenter)
// after each maintenance pass and at start-up, and counted as enqueues are
// appended in between; crossing the threshold wakes maintenance at once,
// so a fast flow of large messages does not wait for the next tick. With
// two snapshots kept (journal.SnapshotKeeper), compaction keeps what was
// written since the older one, so the journal holds about
//
//	2 × pending bytes (compaction's 0.5 threshold)
//	+ 2 × the snapshot interval in bytes
//	+ the segment being written and one more
//
// plus, for the embedded journal, its sync ring and reserve. With a
// StoreLimit, the journal also stays under journalLimit: reaching it wakes
// maintenance, which compacts harder, and persistent SENDs wait for room.

// snapshotBytes is the byte interval: SnapshotBytes, or four times the
// last snapshot's size if that is more, so that writing snapshots costs at
// most a quarter of what the journal writes.
func (b *Broker) snapshotBytes() int64 {
	return max(b.opts.SnapshotBytes, 4*b.lastSnapSize.Load())
}

// measureJournal sets the journal's size, and the bytes after the newest
// snapshot, from its segments: those wholly after it, and the share of the
// one holding it that lies after it (by index). The caller holds maintMu
// (or is Open).
func (b *Broker) measureJournal() {
	sg, ok := b.log.(journal.Segmenter)
	if !ok {
		return
	}
	var total, since, largest int64
	snap := b.snapIndex.Load()
	for _, s := range sg.Segments() {
		total += s.Bytes
		largest = max(largest, s.Bytes)
		switch {
		case s.Last < s.First || s.Last <= snap:
		case s.First > snap:
			since += s.Bytes
		default: // the segment holding the snapshot's record
			since += s.Bytes * int64(s.Last-snap) / int64(s.Last-s.First+1)
		}
	}
	b.journalBytes.Store(total)
	b.sinceSnap.Store(since)
	b.largestSegment.Store(largest)
	if b.opts.StoreLimit > 0 && !b.journalFull() {
		b.store.wake()
	}
}

// noteAppended counts n bytes appended to the journal, and wakes
// maintenance once the bytes since the snapshot pass the interval, or the
// journal reaches StoreLimit.
func (b *Broker) noteAppended(recs []journal.Record) {
	n := int64(0)
	for i := range recs {
		n += int64(journal.FrameSize(&recs[i]))
	}
	since := b.sinceSnap.Add(n)
	b.journalBytes.Add(n)
	if since >= b.snapshotBytes() || b.journalFull() {
		b.kickMaintenance()
	}
}

// kickMaintenance wakes the maintenance goroutine without waiting.
func (b *Broker) kickMaintenance() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// dueForSnapshot reports whether the journal has passed an interval since
// the newest snapshot.
func (b *Broker) dueForSnapshot() bool {
	since := b.log.LastIndex() - b.snapIndex.Load()
	return since >= b.opts.SnapshotEvery ||
		b.sinceSnap.Load() >= b.snapshotBytes() ||
		since > 0 && b.journalFull()
}

// journalLimit is the journal's disk use StoreLimit allows: the limit
// itself, plus what no compaction can free (the segment being written and
// one more, and two snapshot intervals that a replay from the older kept
// snapshot reads); 0 without a StoreLimit.
func (b *Broker) journalLimit() int64 {
	if b.opts.StoreLimit <= 0 {
		return 0
	}
	return b.opts.StoreLimit + 2*b.largestSegment.Load() + 2*b.snapshotBytes()
}

// journalFull reports whether the journal's disk use has reached
// journalLimit. Maintenance then compacts at a 0.9 live share, not the
// usual threshold, so that what is pending takes about its own size.
func (b *Broker) journalFull() bool {
	lim := b.journalLimit()
	return lim > 0 && b.journalBytes.Load() >= lim
}

// JournalBytes is about how many bytes the journal takes (on disk, for the
// wal; in the stream, for JetStream), as last measured.
func (b *Broker) JournalBytes() int64 { return b.journalBytes.Load() }

// JournalStats is what the journal counts of its work, if it does
// (journal.StatsReporter).
func (b *Broker) JournalStats() (journal.Stats, bool) {
	if r, ok := b.log.(journal.StatsReporter); ok {
		return r.Stats(), true
	}
	return journal.Stats{}, false
}
