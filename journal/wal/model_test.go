// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package wal_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/wal"
)

// model is what the journal must hold: the records from first on.
type model struct {
	first uint64
	recs  []journal.Record // recs[i] is at index first+i
	live  map[uint64]bool  // the owner's live set, for compaction
}

func (m *model) last() uint64 { return m.first + uint64(len(m.recs)) - 1 }

func (m *model) append(recs ...journal.Record) {
	for _, r := range recs {
		r.Index = m.last() + 1
		r.Data = bytes.Clone(r.Data)
		m.recs = append(m.recs, r)
	}
}

func (m *model) truncate(index uint64) {
	m.recs = m.recs[index-m.first:]
	m.first = index
	for i := range m.live {
		if i < index {
			delete(m.live, i)
		}
	}
}

// check compares the whole journal with the model, by Read and by Replay.
func (m *model) check(t *testing.T, l journal.Log, step int, what string) {
	t.Helper()
	if l.FirstIndex() != m.first || l.LastIndex() != m.last() {
		t.Fatalf("step %d (%s): log holds [%d, %d], model [%d, %d]", step, what, l.FirstIndex(), l.LastIndex(), m.first, m.last())
	}
	for i, want := range m.recs {
		got, err := l.Read(m.first + uint64(i))
		if err != nil {
			t.Fatalf("step %d (%s): Read(%d): %v", step, what, m.first+uint64(i), err)
		}
		if got.Type != want.Type || got.Moved != want.Moved || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("step %d (%s): record %d is type %d moved %d %d bytes, model has type %d moved %d %d bytes",
				step, what, got.Index, got.Type, got.Moved, len(got.Data), want.Type, want.Moved, len(want.Data))
		}
	}
	n := 0
	if _, err := journal.Replay(l, m.first, func(r journal.Record) error {
		want := m.recs[r.Index-m.first]
		if r.Type != want.Type || r.Moved != want.Moved || !bytes.Equal(r.Data, want.Data) {
			return fmt.Errorf("replay of %d differs from the model", r.Index)
		}
		n++
		return nil
	}, journal.ReplayOptions{}); err != nil || n != len(m.recs) {
		t.Fatalf("step %d (%s): replay gave %d records of %d: %v", step, what, n, len(m.recs), err)
	}
}

func randomBatch(rng *rand.Rand) []journal.Record {
	recs := make([]journal.Record, 1+rng.IntN(5))
	for i := range recs {
		size := rng.IntN(300)
		if rng.IntN(20) == 0 {
			size = rng.IntN(20 << 10)
		}
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		recs[i] = journal.Record{Type: journal.RecordType(1 + rng.IntN(int(journal.MaxOwnerType))), Data: data}
	}
	return recs
}

// TestModel runs random appends, truncations, compactions, clean reopens and
// crashes against an in-memory model. A crash copies the journal directory
// while the log is open (what kill -9 leaves: every write the process made,
// whether synced or not), sometimes with the last batch's bytes torn at a
// random offset, as a power loss mid-write leaves them; the copy is then
// opened as the journal, and must hold exactly the model, plus the torn
// batch only if all of its bytes were there. A power loss after the appends
// were confirmed takes the tail segment's unsynced bytes (powerLoss): the
// sync ring must give every confirmed record back.
func TestModel(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4}
	steps := 1000
	if testing.Short() {
		seeds, steps = seeds[:1], 300
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { runModel(t, seed, steps) })
	}
}

func runModel(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 0x6361697266))
	opts := testOptions()
	opts.Logger = quiet
	dir := t.TempDir()
	l, err := wal.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close() }()
	m := &model{first: 1, live: map[uint64]bool{}}
	var compactions, removed, crashes, torn, tornKept, losses int
	var restored uint64
	defer func() {
		t.Logf("%d steps: %d compactions freeing %d segments, %d crashes, %d torn batches (%d whole), %d power losses (%d records restored); log [%d, %d]",
			steps, compactions, removed, crashes, torn, tornKept, losses, restored, m.first, m.last())
	}()
	ctx := context.Background()
	reopen := func(step int, at string) {
		nl, err := wal.Open(at, opts)
		if err != nil {
			t.Fatalf("step %d: reopen %s: %v", step, at, err)
		}
		l, dir = nl, at
	}
	for step := range steps {
		switch op := rng.IntN(100); {
		case op < 60: // append
			recs := randomBatch(rng)
			f, _, err := l.Append(ctx, recs)
			if err != nil {
				t.Fatalf("step %d: append: %v", step, err)
			}
			for i := range recs {
				if rng.IntN(8) == 0 {
					m.live[f+uint64(i)] = true
				}
			}
			m.append(recs...)
		case op < 66: // release some live records
			for i := range m.live {
				if rng.IntN(3) == 0 {
					delete(m.live, i)
				}
			}
		case op < 72: // truncate front
			to := m.first + uint64(rng.IntN(len(m.recs)/4+2))
			to = min(to, m.last()+1)
			if err := l.TruncateFront(to); err != nil {
				t.Fatalf("step %d: TruncateFront(%d): %v", step, to, err)
			}
			m.truncate(to)
		case op < 80: // compact
			res, err := journal.Compact(l, journal.CompactOptions{Live: func(i uint64) bool { return m.live[i] }, Threshold: 0.6})
			if err != nil {
				t.Fatalf("step %d: compact: %v", step, err)
			}
			compactions++
			removed += len(res.Removed)
			for _, mv := range res.Moves {
				if mv.To != m.last()+1 {
					t.Fatalf("step %d: compaction moved %d to %d, model's next index is %d", step, mv.From, mv.To, m.last()+1)
				}
				r := m.recs[mv.From-m.first]
				m.append(journal.Record{Type: r.Type, Data: r.Data, Moved: mv.From})
				delete(m.live, mv.From)
				m.live[mv.To] = true
			}
			if l.FirstIndex() < m.first {
				t.Fatalf("step %d: compaction moved the first index back to %d", step, l.FirstIndex())
			}
			for i := m.first; i < l.FirstIndex(); i++ {
				if m.live[i] {
					t.Fatalf("step %d: compaction dropped live record %d without moving it", step, i)
				}
			}
			m.truncate(l.FirstIndex())
		case op < 85: // clean reopen
			if err := l.Close(); err != nil {
				t.Fatalf("step %d: close: %v", step, err)
			}
			reopen(step, dir)
		case op < 91: // crash: kill -9 leaves every write made
			crash := clone(t, dir)
			l.Close()
			crashes++
			reopen(step, crash)
		case op < 95: // power loss: the tail segment keeps what was fsynced to it
			crash := powerLoss(t, l, dir, rng)
			l.Close()
			losses++
			reopen(step, crash)
			restored += l.Recovery().Restored
		default: // power loss in the middle of the last batch's write
			before := clone(t, dir)
			segsBefore := len(segmentFiles(t, dir))
			_, sizeBefore := tailFile(t, dir)
			recs := randomBatch(rng)
			if _, _, err := l.Append(ctx, recs); err != nil {
				t.Fatalf("step %d: append: %v", step, err)
			}
			tail, sizeAfter := tailFile(t, dir)
			if len(segmentFiles(t, dir)) != segsBefore {
				// The batch began a segment; tearing it is the torn-tail
				// table's job. Crash after it instead.
				crash := clone(t, dir)
				l.Close()
				m.append(recs...)
				reopen(step, crash)
				break
			}
			cut := sizeBefore + rng.Int64N(sizeAfter-sizeBefore+1)
			b, err := os.ReadFile(tail)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(rebase(fixture{dir: dir}, before, tail), b[:cut], 0o644); err != nil {
				t.Fatal(err)
			}
			l.Close()
			torn++
			if cut == sizeAfter {
				tornKept++
				m.append(recs...)
			}
			reopen(step, before)
		}
		m.check(t, l, step, "after op")
	}
}
