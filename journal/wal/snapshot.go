// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cairnmq/cairn/journal"
)

// A snapshot file, DIR/snapshots/<index>.snap:
//
//	"CAIRNSN1" | index u64 | length u64 | crc32c u32 of (index, length, data) | data
const (
	snapMagic  = "CAIRNSN1"
	snapHeader = 8 + 8 + 8 + 4
	snapKeep   = 2 // newest snapshots kept; an older one is a fallback if the newest is damaged
)

// SaveSnapshot implements journal.Snapshotter. index must be in
// [FirstIndex()-1, LastIndex()]: a snapshot covers records the log holds.
func (l *Log) SaveSnapshot(index uint64, data []byte) error {
	if first, last := l.first.Load(), l.last.Load(); index+1 < first || index > last {
		return fmt.Errorf("%w: snapshot at %d outside the log [%d, %d]", journal.ErrNotFound, index, first, last)
	}
	if err := l.failure.Load(); err != nil {
		return *err
	}
	if err := l.gate(); err != nil {
		l.fence(nil, err)
		return *l.failure.Load()
	}
	dir := filepath.Join(l.dir, snapshotDir)
	if err := mkdirDurable(dir); err != nil {
		return fmt.Errorf("wal: snapshot: %w", err)
	}
	b := make([]byte, snapHeader, snapHeader+len(data))
	copy(b, snapMagic)
	binary.LittleEndian.PutUint64(b[8:], index)
	binary.LittleEndian.PutUint64(b[16:], uint64(len(data)))
	b = append(b, data...)
	sum := crc32.Update(crc32.Checksum(b[8:24], castagnoli), castagnoli, data)
	binary.LittleEndian.PutUint32(b[24:], sum)
	if err := writeFileAtomic(filepath.Join(dir, snapName(index)), b); err != nil {
		return fmt.Errorf("wal: snapshot: %w", err)
	}
	idx, err := listSnapshots(dir)
	if err != nil {
		return nil // the snapshot is saved; pruning waits for the next one
	}
	for _, old := range idx[min(snapKeep, len(idx)):] {
		os.Remove(filepath.Join(dir, snapName(old)))
	}
	return nil
}

func snapName(index uint64) string { return fmt.Sprintf("%020d.snap", index) }

// listSnapshots returns the snapshot indexes in dir, newest first.
func listSnapshots(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".snap")
		if !ok {
			continue
		}
		if i, err := strconv.ParseUint(name, 10, 64); err == nil {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out, nil
}

// OldestSnapshot implements journal.SnapshotKeeper: the oldest snapshot
// file kept, damaged or not (a replay may have to start there).
func (l *Log) OldestSnapshot() (uint64, error) {
	idx, err := listSnapshots(filepath.Join(l.dir, snapshotDir))
	if err != nil {
		return 0, fmt.Errorf("wal: snapshots: %w", err)
	}
	if len(idx) == 0 {
		return 0, journal.ErrNoSnapshot
	}
	return idx[len(idx)-1], nil
}

// LoadSnapshot implements journal.Snapshotter. It returns the newest
// snapshot whose checksum holds, logging any newer one that does not. If
// snapshots exist but none is valid, it returns a *journal.CorruptionError
// rather than pretend there is none.
func (l *Log) LoadSnapshot() (uint64, []byte, error) {
	return loadSnapshot(l.dir, math.MaxUint64, l.opts.Logger.Warn)
}

// LoadSnapshotBefore implements journal.SnapshotKeeper: LoadSnapshot among
// the snapshots older than index.
func (l *Log) LoadSnapshotBefore(index uint64) (uint64, []byte, error) {
	return loadSnapshot(l.dir, index, l.opts.Logger.Warn)
}

// loadSnapshot returns the newest valid snapshot in dir older than below.
func loadSnapshot(dir string, below uint64, warn func(string, ...any)) (uint64, []byte, error) {
	sdir := filepath.Join(dir, snapshotDir)
	idx, err := listSnapshots(sdir)
	if err != nil {
		return 0, nil, fmt.Errorf("wal: snapshots: %w", err)
	}
	idx = slices.DeleteFunc(idx, func(i uint64) bool { return i >= below })
	var firstErr error
	for _, i := range idx {
		path := filepath.Join(sdir, snapName(i))
		data, err := readSnapshot(path, i)
		if err == nil {
			return i, data, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		warn("journal: skipping damaged snapshot", "file", path, "err", err)
	}
	if firstErr != nil {
		return 0, nil, firstErr
	}
	return 0, nil, journal.ErrNoSnapshot
}

func readSnapshot(path string, index uint64) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	bad := func(reason string) error { return &journal.CorruptionError{Path: path, Index: index, Reason: reason} }
	if len(b) < snapHeader || string(b[:8]) != snapMagic {
		return nil, bad("not a Cairn snapshot (bad magic or too short)")
	}
	if got := binary.LittleEndian.Uint64(b[8:]); got != index {
		return nil, bad(fmt.Sprintf("snapshot file says index %d", got))
	}
	if n := binary.LittleEndian.Uint64(b[16:]); n != uint64(len(b)-snapHeader) {
		return nil, bad(fmt.Sprintf("snapshot says %d bytes, file holds %d", n, len(b)-snapHeader))
	}
	sum := crc32.Update(crc32.Checksum(b[8:24], castagnoli), castagnoli, b[snapHeader:])
	if sum != binary.LittleEndian.Uint32(b[24:]) {
		return nil, bad("snapshot crc32c mismatch")
	}
	return b[snapHeader:], nil
}
