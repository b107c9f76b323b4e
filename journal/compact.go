// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"context"
	"errors"
	"fmt"
)

// CompactOptions tell Compact what is still needed.
type CompactOptions struct {
	// Live reports whether the owner still needs the record at index. It is
	// called for every index in the candidate segments; it must be cheap and
	// must not call back into the log. Required.
	Live func(index uint64) bool
	// LiveBytes, if not nil, is about how many bytes the live records with
	// indexes first to last take, as their owner reckons them, so that
	// measuring a segment's live share reads none of its records (without
	// it, Compact reads each live record). Like Live it must be cheap.
	LiveBytes func(first, last uint64) int64
	// Before bounds compaction to records with index < Before. An owner that
	// replays from a snapshot passes the snapshot's index+1: the records
	// before it are read only as a store of live payloads, never replayed as
	// events, so moving them forward does not reorder what replay applies.
	// Zero means no bound other than the segment being written.
	Before uint64
	// Threshold is the live share (live bytes / segment bytes) below which a
	// run of head segments is rewritten. Zero means 0.5.
	Threshold float64
	// ChunkBytes bounds each Append of moved records. Zero means 1 MiB.
	ChunkBytes int
}

// Move says that the record once at From is now at To.
type Move struct{ From, To uint64 }

// SegmentState is a segment together with what compaction learnt about it.
type SegmentState struct {
	Segment
	// LiveBytes is the framed size of the segment's live records, or -1 if
	// compaction did not look (the segment was not a candidate).
	LiveBytes int64
	// Kept says why the segment is still there; empty for removed segments.
	Kept string
}

// CompactResult reports one compaction run.
type CompactResult struct {
	Moves      []Move         // records moved, oldest first
	MovedBytes int64          // framed bytes rewritten
	Removed    []Segment      // segments freed
	FreedBytes int64          // their bytes on disk
	Segments   []SegmentState // what remains, with the reason each is kept
}

// Compact frees head segments whose live records are a small share of them,
// which is how disk use stays near the live data even when the oldest record
// is never released (KahaDB's failure: one unacked message pins a whole data
// file and every file after it).
//
// It picks the longest run of segments from the head, all below
// opts.Before and none being written, whose combined live share is below
// opts.Threshold; appends copies of their live records at the tail (each copy
// has Moved set to the index it came from); and then truncates the front
// past the run. The owner learns the new indexes from the result, and from
// the Moved field when it replays the copies.
//
// A crash between the copy and the truncation leaves both the original and
// the copy; the owner, replaying the copy, moves its reference to the new
// index, and the original is dead at the next compaction. A record released
// while Compact runs may still be copied; the owner ignores a copy of a
// record it no longer has.
//
// Compact must not run concurrently with another Compact or TruncateFront on
// the same log. Appends may continue during it.
func Compact(l Log, opts CompactOptions) (CompactResult, error) {
	var res CompactResult
	sg, ok := l.(Segmenter)
	if !ok {
		return res, errors.New("journal: compaction needs a log that reports its segments")
	}
	if opts.Live == nil {
		return res, errors.New("journal: compaction needs a Live function")
	}
	threshold := opts.Threshold
	if threshold <= 0 {
		threshold = 0.5
	}
	chunk := opts.ChunkBytes
	if chunk <= 0 {
		chunk = 1 << 20
	}
	segs := sg.Segments()
	first := l.FirstIndex()
	states := make([]SegmentState, len(segs))
	// Pass 1: live bytes of each candidate segment, and the longest head run
	// whose cumulative live share is under the threshold.
	var cumLive, cumBytes int64
	take := 0
	for i, s := range segs {
		states[i] = SegmentState{Segment: s, LiveBytes: -1}
		if i == len(segs)-1 || (opts.Before != 0 && s.Last >= opts.Before) || s.Last < s.First {
			continue
		}
		if i > 0 && states[i-1].LiveBytes < 0 {
			continue // a run from the head only
		}
		live, err := liveBytes(l, s, first, opts)
		if err != nil {
			return res, err
		}
		states[i].LiveBytes = live
		cumLive += live
		cumBytes += s.Bytes
		if cumBytes > 0 && float64(cumLive) < threshold*float64(cumBytes) {
			take = i + 1
		}
	}
	for i := take; i < len(states); i++ {
		st := &states[i]
		switch {
		case i == len(segs)-1:
			st.Kept = "tail: being written"
		case opts.Before != 0 && st.Last >= opts.Before:
			st.Kept = fmt.Sprintf("holds records from %d on, which a replay from a kept snapshot still reads", opts.Before)
		case st.LiveBytes >= 0:
			st.Kept = fmt.Sprintf("live share of the head run through it is %.1f%%, not under the %.0f%% threshold",
				100*ratio(states[:i+1]), 100*threshold)
		default:
			st.Kept = "behind a segment that is kept"
		}
	}
	if take == 0 {
		res.Segments = states
		return res, nil
	}
	// Pass 2: copy the live records of the run forward, in chunks.
	var batch []Record
	var froms []uint64
	var size int
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		// The copies need not land together (a crash between appends leaves
		// originals that the next compaction finds dead), so the chunk may
		// be split where the log's batch limit says.
		_, err := AppendInBatches(context.Background(), l, batch, func(f uint64, n int) {
			for i, from := range froms[:n] {
				res.Moves = append(res.Moves, Move{From: from, To: f + uint64(i)})
			}
			froms = froms[n:]
		})
		if err != nil {
			return fmt.Errorf("journal: compaction append: %w", err)
		}
		res.MovedBytes += int64(size)
		batch, froms, size = batch[:0], froms[:0], 0
		return nil
	}
	var live []uint64
	for _, s := range segs[:take] {
		for i := max(s.First, first); i <= s.Last; i++ {
			if opts.Live(i) {
				live = append(live, i)
			}
		}
	}
	// Read in groups, appending between them (not from inside a read); a
	// group is about chunk bytes, by the sizes read so far.
	groupLen, read, readBytes := 16, 0, 0
	for len(live) > 0 {
		group := live[:min(len(live), groupLen)]
		live = live[len(group):]
		err := readEach(l, group, func(i uint64, r Record, err error) error {
			if err != nil {
				return fmt.Errorf("journal: compaction read %d: %w", i, err)
			}
			batch = append(batch, Record{Type: r.Type, Data: r.Data, Moved: i})
			froms = append(froms, i)
			n := FrameSize(&batch[len(batch)-1])
			size += n
			read, readBytes = read+1, readBytes+n
			return nil
		})
		if read > 0 && readBytes >= read {
			groupLen = min(max(chunk/(readBytes/read), 1), 1024)
		}
		if err == nil && (size >= chunk || len(live) == 0) {
			err = flush()
		}
		if err != nil {
			return res, err
		}
	}
	if err := l.TruncateFront(segs[take-1].Last + 1); err != nil {
		return res, fmt.Errorf("journal: compaction truncate: %w", err)
	}
	for _, s := range segs[:take] {
		res.Removed = append(res.Removed, s)
		res.FreedBytes += s.Bytes
	}
	res.Segments = states[take:]
	return res, nil
}

// readEach calls fn with the record at each of indexes (ascending), read
// in batches if l is a BatchReader.
func readEach(l Log, indexes []uint64, fn func(uint64, Record, error) error) error {
	if br, ok := l.(BatchReader); ok {
		return br.ReadBatch(indexes, fn)
	}
	for _, i := range indexes {
		r, err := l.Read(i)
		if err := fn(i, r, err); err != nil {
			return err
		}
	}
	return nil
}

func liveBytes(l Log, s Segment, first uint64, opts CompactOptions) (int64, error) {
	from := max(s.First, first)
	if opts.LiveBytes != nil {
		return opts.LiveBytes(from, s.Last), nil
	}
	var live []uint64
	for i := from; i <= s.Last; i++ {
		if opts.Live(i) {
			live = append(live, i)
		}
	}
	var n int64
	err := readEach(l, live, func(i uint64, r Record, err error) error {
		if err != nil {
			return fmt.Errorf("journal: compaction read %d: %w", i, err)
		}
		n += int64(FrameSize(&Record{Data: r.Data, Moved: i}))
		return nil
	})
	return n, err
}

func ratio(states []SegmentState) float64 {
	var live, all int64
	for _, s := range states {
		live += max(s.LiveBytes, 0)
		all += s.Bytes
	}
	if all == 0 {
		return 0
	}
	return float64(live) / float64(all)
}
