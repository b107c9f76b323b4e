// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package wal

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/dirlock"
)

// SegmentReport describes one segment file as Check read it.
type SegmentReport struct {
	Name        string
	First, Last uint64 // records in it (Last < First when empty)
	Bytes       int64
	Sealed      bool // listed in the manifest; it never changes again
}

// Report is what Check found in a journal directory.
type Report struct {
	Dir         string
	First, Last uint64 // the readable range (up to the damage, if any)
	Records     uint64
	Bytes       int64 // bytes of segment files
	Segments    []SegmentReport
	Snapshot    uint64 // index of the newest valid snapshot; 0 if none
	// OldestSnapshot is the oldest snapshot file kept (Log.OldestSnapshot),
	// which replay falls back on if the newer ones are damaged; 0 if none.
	OldestSnapshot uint64
	// SnapshotDamage is, newest first, each snapshot file that fails its
	// checks (a *journal.CorruptionError naming it).
	SnapshotDamage []error
	// Damage is the first place the log cannot be read, or nil.
	Damage *journal.CorruptionError
	// Torn says Damage is a torn tail, which Open cuts by itself. Otherwise
	// Damage is corruption: Open refuses it and Repair cuts there.
	Torn bool
	// Cut is what Open (for a torn tail) or Repair would remove; after
	// Repair, what it removed.
	Cut *Cut
	// LockedBy is set when a process held the journal open during the check;
	// a tail being written may then look torn.
	LockedBy *dirlock.Holder
	// RingFirst and RingLast are the records the sync ring holds (RingLast <
	// RingFirst: none). Restorable counts those after Last, which a power
	// loss took from the tail segment and opening the journal appends back.
	RingFirst, RingLast, Restorable uint64
}

// checkSnapshots fills the report's snapshot fields, reading every
// snapshot file in dir.
func (r *Report) checkSnapshots(dir string) {
	sdir := filepath.Join(dir, snapshotDir)
	idx, err := listSnapshots(sdir)
	if err != nil {
		r.SnapshotDamage = append(r.SnapshotDamage, fmt.Errorf("wal: snapshots: %w", err))
		return
	}
	for _, i := range idx {
		if _, err := readSnapshot(filepath.Join(sdir, snapName(i)), i); err != nil {
			r.SnapshotDamage = append(r.SnapshotDamage, err)
		} else if r.Snapshot == 0 {
			r.Snapshot = i
		}
	}
	if len(idx) > 0 {
		r.OldestSnapshot = idx[len(idx)-1]
	}
}

// checkRing fills the report's ring fields from the ring in dir, once
// r.Last is known. A ring that cannot follow on from Last is damage.
func (r *Report) checkRing(dir string, maxRecord int) error {
	t, err := readRing(dir, maxRecord)
	var ce *journal.CorruptionError
	if errors.As(err, &ce) {
		if r.Damage == nil {
			r.Damage = ce
		}
		return nil
	}
	if err != nil {
		return err
	}
	r.RingFirst, r.RingLast = t.first, t.last
	switch {
	case t.empty() || t.last <= r.Last:
	case t.first > r.Last+1:
		if r.Damage == nil {
			r.Damage = t.gapError(r.Last).(*journal.CorruptionError)
		}
	default:
		r.Restorable = t.last - r.Last
	}
	return nil
}

// Check reads every record of the journal in dir without changing anything,
// checking CRCs, indexes, batches and the manifest. visit, if not nil, sees
// each record from the first index on, with its frame flags. Problems with
// the log are reported in Report.Damage; the error is for failures to read.
func Check(dir string, maxRecord int, visit func(*journal.Frame) error) (*Report, error) {
	if maxRecord <= 0 {
		maxRecord = journal.DefaultMaxRecordBytes
	}
	r, w, err := plan(dir, maxRecord)
	if err != nil || r.Damage != nil {
		return r, err
	}
	first := r.First
	w.visit = func(f *journal.Frame, file int, _ int64) error {
		r.Segments[file].Last = f.Index
		if f.Index < first {
			return nil
		}
		r.Records++
		if visit != nil {
			return visit(f)
		}
		return nil
	}
	if err := w.walk(w.files[0].first); err != nil {
		return r, err
	}
	r.Last = w.parsed
	if w.damage != nil {
		r.Damage = w.corruption().(*journal.CorruptionError)
		r.Torn = w.damage.torn
		r.Cut = w.planCut()
		r.Last = w.good.last
	}
	if r.Last+1 < first {
		r.Last = first - 1
	}
	r.checkSnapshots(dir)
	return r, r.checkRing(dir, maxRecord)
}

// plan lists what Check walks and checks the manifest against the files.
func plan(dir string, maxRecord int) (*Report, *walker, error) {
	r := &Report{Dir: dir}
	if held, h := dirlock.IsHeld(dir); held {
		r.LockedBy = &h
	}
	man, err := readManifest(dir)
	var ce *journal.CorruptionError
	if errors.As(err, &ce) {
		r.Damage = ce
		return r, nil, nil
	}
	if err != nil {
		return r, nil, err
	}
	walDir := filepath.Join(dir, segmentDir)
	files, err := listSegments(walDir)
	if errors.As(err, &ce) {
		r.Damage = ce
		return r, nil, nil
	}
	if err != nil {
		return r, nil, fmt.Errorf("%s: %w", dir, err)
	}
	if man == nil {
		man = &manifest{first: 1}
		if len(files) > 0 {
			man.first = files[0].first
		}
	}
	r.First = man.first
	sealed := make(map[uint64]segInfo)
	for _, s := range man.sealed {
		if s.last >= man.first {
			sealed[s.first] = s
		}
	}
	// Skip files wholly before the first index (a truncation's leftovers).
	start := 0
	for i, f := range files {
		if f.first <= man.first {
			start = i
		}
	}
	files = files[start:]
	for _, f := range files {
		s, ok := sealed[f.first]
		r.Segments = append(r.Segments, SegmentReport{Name: filepath.Join(segmentDir, filepath.Base(f.path)),
			First: f.first, Last: f.first - 1, Bytes: f.size, Sealed: ok})
		r.Bytes += f.size
		if ok && s.bytes != f.size {
			r.Damage = &journal.CorruptionError{Path: f.path, Offset: min(f.size, s.bytes), Index: s.first,
				Reason: fmt.Sprintf("sealed segment is %d bytes, the manifest says %d", f.size, s.bytes)}
			return r, nil, nil
		}
		delete(sealed, f.first)
	}
	for _, s := range sealed {
		r.Damage = &journal.CorruptionError{Path: filepath.Join(walDir, s.name()), Index: s.first,
			Reason: fmt.Sprintf("sealed segment holding records %d-%d is missing", s.first, s.last)}
		return r, nil, nil
	}
	if n := len(man.sealed); n > 0 && man.sealed[n-1].last >= man.first {
		next := man.sealed[n-1].last + 1
		if len(files) == 0 || files[len(files)-1].first < next {
			r.Damage = &journal.CorruptionError{Path: filepath.Join(walDir, segmentName(next)), Index: next,
				Reason: "the segment after the last sealed one is missing"}
			return r, nil, nil
		}
	}
	if len(files) == 0 {
		r.Last = man.first - 1
		if man.first != 1 || len(man.sealed) > 0 {
			r.Damage = &journal.CorruptionError{Path: walDir, Index: man.first, Reason: "no segment files"}
		}
		return r, nil, nil
	}
	return r, &walker{files: files, maxRecord: maxRecord}, nil
}

// Repair takes the journal's lock, checks it, and if it is damaged cuts it
// after the last complete batch before the damage, keeping every removed
// byte in .broken files. It returns what it found and did.
func Repair(dir string, maxRecord int) (*Report, error) {
	if maxRecord <= 0 {
		maxRecord = journal.DefaultMaxRecordBytes
	}
	lock, err := dirlock.TryLock(dir)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	return repairLocked(dir, maxRecord)
}

// repairLocked is Repair for a caller that holds the right to write dir.
func repairLocked(dir string, maxRecord int) (*Report, error) {
	r, w, err := plan(dir, maxRecord)
	if err != nil || w == nil {
		return r, err // manifest-level damage needs a person; nothing here to cut
	}
	if err := w.walk(w.files[0].first); err != nil {
		return r, err
	}
	if w.damage == nil {
		r.Last = w.parsed
		return r, r.setAsideStrandedRing(dir, maxRecord)
	}
	r.Damage = w.corruption().(*journal.CorruptionError)
	r.Torn = w.damage.torn
	r.Cut = w.planCut()
	if r.Cut == nil {
		return r, fmt.Errorf("%w; no batch boundary before it, so it cannot be cut safely", r.Damage)
	}
	if err := w.applyCut(dir, r.Cut); err != nil {
		return r, err
	}
	// The cut file is the new tail: the manifest keeps only what is before it.
	man, err := readManifest(dir)
	if err != nil {
		return r, err
	}
	if man == nil {
		man = &manifest{first: w.files[0].first}
	}
	cutFirst := w.files[w.good.file].first
	keep := man.sealed[:0]
	for _, s := range man.sealed {
		if s.first < cutFirst {
			keep = append(keep, s)
		}
	}
	man.sealed = keep
	r.Last = w.good.last
	if err := writeManifest(dir, man); err != nil {
		return r, err
	}
	return r, r.setAsideStrandedRing(dir, maxRecord)
}

// setAsideStrandedRing sets the sync ring aside if it no longer follows on
// from the log's end (r.Last), as after a cut: its records are dropped with
// everything after the cut, and kept in a .broken file.
func (r *Report) setAsideStrandedRing(dir string, maxRecord int) error {
	damage := r.Damage
	r.Damage = nil
	err := r.checkRing(dir, maxRecord)
	gap := r.Damage
	if damage != nil {
		r.Damage = damage
	}
	if err != nil || r.RingLast < r.RingFirst || r.RingFirst <= r.Last+1 {
		return err
	}
	broken, err := setAsideRing(dir)
	if err != nil {
		return err
	}
	if r.Cut == nil {
		r.Damage = gap
		r.Cut = &Cut{Path: filepath.Join(dir, ringName), FirstDropped: r.RingFirst, Reason: gap.Reason}
	}
	r.Cut.LastDropped = max(r.Cut.LastDropped, r.RingLast)
	r.Cut.Broken = append(r.Cut.Broken, broken)
	r.RingFirst, r.RingLast = 1, 0
	return nil
}
