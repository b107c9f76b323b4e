// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cairnmq/cairn/journal"
)

// A segment file is a sequence of tidwall/wal entries, uvarint(len) ‖ bytes,
// and each entry's bytes are one Cairn frame (journal/doc.go).

// damage is the first place a walk could not read.
type damage struct {
	file   int    // position in the walked file list
	off    int64  // byte offset of the damaged entry
	index  uint64 // index expected there
	reason string
	// torn: the damage looks like an interrupted append (the data ends
	// inside the entry, or everything from the entry on is zero bytes)
	// rather than bytes changed after they were written.
	torn bool
}

// cutPoint is where the log's valid prefix ends: after the last record of
// the last complete batch.
type cutPoint struct {
	file int
	off  int64
	last uint64 // index of that record; first-1 if none
}

// walker reads segment files in order, checking every frame's CRC, that
// indexes run on without a gap, and that batches open and close properly.
type walker struct {
	files     []segFile
	maxRecord int
	// visit, if set, sees every good frame, in order, with the file position
	// and offset of its entry. Frames of a batch are passed before the walker
	// knows whether the batch completes.
	visit func(f *journal.Frame, file int, off int64) error

	next    uint64 // index expected next
	inBatch bool   // inside a batch
	started bool   // a frame has been read: the batch state is known
	// goodKnown is false while the walk has not yet seen a batch end after
	// beginning inside a batch (whose start is in a segment already freed).
	goodKnown bool
	good      cutPoint
	parsed    uint64 // last index parsed, complete batch or not
	damage    *damage
}

// walk reads every file from the start; the first file may begin inside a
// batch. It returns only errors from visit or from reading files; damage is
// recorded in w.damage.
func (w *walker) walk(startIndex uint64) error {
	w.next = startIndex
	w.good = cutPoint{file: 0, off: 0, last: startIndex - 1}
	w.parsed = startIndex - 1
	// The next file is read while this one is walked: reading a 16 MiB
	// segment is an eighth of a replay's time, and the walk's visitor
	// keeps one core busy.
	type read struct {
		data []byte
		err  error
	}
	ahead := make(chan read, 1)
	readAhead := func(i int) {
		if i < len(w.files) {
			go func() {
				data, err := os.ReadFile(w.files[i].path)
				ahead <- read{data, err}
			}()
		}
	}
	readAhead(0)
	for i, f := range w.files {
		r := <-ahead
		readAhead(i + 1)
		if f.first != w.next {
			w.damage = &damage{file: i, index: w.next,
				reason: fmt.Sprintf("segment file starts at index %d where %d was expected (a segment is missing)", f.first, w.next)}
			return nil
		}
		data, err := r.data, r.err
		if err != nil {
			return fmt.Errorf("read segment %s: %w", f.path, err)
		}
		if err := w.walkFile(i, data); err != nil || w.damage != nil {
			return err
		}
	}
	if w.inBatch {
		// The last batch never closed: its end was not written.
		last := len(w.files) - 1
		w.damage = &damage{file: last, off: w.files[last].size, index: w.next,
			reason: fmt.Sprintf("batch starting at or before index %d has no end record", w.good.last+1), torn: true}
	}
	return nil
}

func (w *walker) walkFile(file int, data []byte) error {
	var off int64
	for int(off) < len(data) {
		rest := data[off:]
		n, k := binary.Uvarint(rest)
		if k <= 0 {
			w.fail(file, off, off, data, "unreadable entry length", k == 0)
			return nil
		}
		if n > uint64(len(rest)-k) {
			w.fail(file, off, off, data, fmt.Sprintf("entry of %d bytes runs past the end of the file", n), true)
			return nil
		}
		f, err := journal.DecodeFrame(rest[k:k+int(n)], w.maxRecord)
		if err == nil && f.Size != int(n) {
			err = fmt.Errorf("frame of %d bytes in an entry of %d", f.Size, n)
		}
		if err == nil && f.Index != w.next {
			err = fmt.Errorf("frame says index %d", f.Index)
		}
		end := off + int64(k) + int64(n)
		if err != nil {
			w.fail(file, off, end, data, err.Error(), false)
			return nil
		}
		if reason := w.batch(&f); reason != "" {
			w.fail(file, off, end, data, reason, false)
			return nil
		}
		if w.visit != nil {
			if err := w.visit(&f, file, off); err != nil {
				return err
			}
		}
		off += int64(k) + int64(n)
		w.parsed = f.Index
		w.next++
		if f.Flags&journal.FlagBatchEnd != 0 {
			w.good = cutPoint{file: file, off: off, last: f.Index}
			w.goodKnown = true
		}
	}
	return nil
}

// batch checks f's batch flags against the batch in progress.
func (w *walker) batch(f *journal.Frame) string {
	start, end := f.Flags&journal.FlagBatchStart != 0, f.Flags&journal.FlagBatchEnd != 0
	switch {
	case !w.started:
		// The first frame read: a batch start, or the rest of a batch that
		// began in a segment before the walk.
		w.started = true
		w.goodKnown = start
	case start && w.inBatch:
		return fmt.Sprintf("batch starts at %d before the previous batch ended", f.Index)
	case !start && !w.inBatch:
		return fmt.Sprintf("record %d is outside any batch", f.Index)
	}
	w.inBatch = !end
	return ""
}

// fail records damage in the entry at [off, end). truncated says the data
// ends inside the entry. Damage also counts as torn when the file ends in
// zero bytes that cover the whole entry, or everything from a sector
// boundary inside it: a size-extending write whose data never reached the
// disk. (The zero run may begin a little before that boundary, where the
// last bytes that did reach the disk happen to be zeros.)
func (w *walker) fail(file int, off, end int64, data []byte, reason string, truncated bool) {
	z := zeroTail(data)
	sector := (z + 511) / 512 * 512 // the first sector boundary in the zero run
	torn := truncated || z <= off || sector < max(end, off+1)
	// A torn append can only be the last thing in the log.
	torn = torn && file == len(w.files)-1
	w.damage = &damage{file: file, off: off, index: w.next, reason: reason, torn: torn}
}

// zeroTail returns the offset where the run of zero bytes ending the data
// begins (len(data) if it does not end in zero).
func zeroTail(data []byte) int64 {
	i := len(data)
	for i > 0 && data[i-1] == 0 {
		i--
	}
	return int64(i)
}

// Cut describes the records and bytes a repair removes, or removed.
type Cut struct {
	Path   string // file where the cut starts
	Offset int64  // offset in Path
	// FirstDropped and LastDropped are the indexes of the records removed
	// that could still be read (an incomplete batch); LastDropped <
	// FirstDropped when none could.
	FirstDropped, LastDropped uint64
	Bytes                     int64    // bytes removed, all files together
	Reason                    string   // what was found there
	Broken                    []string // where the removed bytes were kept
}

func (c *Cut) String() string {
	s := fmt.Sprintf("cut %d bytes from %s offset %d (%s)", c.Bytes, c.Path, c.Offset, c.Reason)
	if c.LastDropped >= c.FirstDropped {
		s += fmt.Sprintf("; records %d-%d dropped", c.FirstDropped, c.LastDropped)
	}
	if len(c.Broken) > 0 {
		s += fmt.Sprintf("; removed bytes kept in %v", c.Broken)
	}
	return s
}

// planCut returns the cut that removes everything after w.good, or nil if
// the damage lies inside a batch that began before the walked files, where
// no safe cut point is known.
func (w *walker) planCut() *Cut {
	d := w.damage
	if !w.goodKnown && w.started && !d.torn {
		// Corruption inside the batch the walk began in, which started in a
		// segment compaction removed: no boundary to cut at that keeps the
		// batch whole. (A torn tail there is cut where the walk began: that
		// batch never became whole on disk, and the sync ring gives back
		// whatever of it was confirmed.)
		return nil
	}
	c := &Cut{
		Path:         w.files[w.good.file].path,
		Offset:       w.good.off,
		FirstDropped: w.good.last + 1,
		LastDropped:  w.parsed,
		Reason:       fmt.Sprintf("%s at %s offset %d", d.reason, filepath.Base(w.files[d.file].path), d.off),
	}
	for i := w.good.file; i < len(w.files); i++ {
		c.Bytes += w.files[i].size
	}
	c.Bytes -= w.good.off
	return c
}

// applyCut truncates the file at the cut, removes the files after it, and
// keeps every removed byte in a .broken file in dir.
func (w *walker) applyCut(dir string, c *Cut) error {
	stamp := time.Now().UTC().Format("20060102T150405Z")
	for i := w.good.file; i < len(w.files); i++ {
		f := w.files[i]
		from := int64(0)
		if i == w.good.file {
			from = w.good.off
		}
		if f.size > from {
			data, err := os.ReadFile(f.path)
			if err != nil {
				return err
			}
			broken := filepath.Join(dir, filepath.Base(f.path)+"."+stamp+brokenSuffix)
			if err := writeFileAtomic(broken, data[from:]); err != nil {
				return err
			}
			c.Broken = append(c.Broken, broken)
		}
		if i == w.good.file {
			if err := truncateFile(f.path, from); err != nil {
				return err
			}
		} else if err := os.Remove(f.path); err != nil {
			return err
		}
	}
	return syncDir(filepath.Dir(w.files[0].path))
}

func truncateFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// corruption turns damage into the error Open and Check report.
func (w *walker) corruption() error {
	d := w.damage
	return &journal.CorruptionError{Path: w.files[d.file].path, Offset: d.off, Index: d.index, Reason: d.reason}
}

var errStop = errors.New("stop")
