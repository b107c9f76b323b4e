// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/cairnmq/cairn/journal"
)

// The sync ring (DIR/RING) is what makes a group commit durable under
// SyncAlways. Segment files grow, and an fsync of a file that grew must
// also commit its new size and blocks through the filesystem's own journal:
// on ext4 that is a third more time per fsync than a write over blocks that
// are already allocated and written. The ring is a file of fixed size whose
// blocks were all written (with zeros) when it was made, so a write into it
// changes no metadata, and one write with O_DSYNC (fdatasync elsewhere)
// costs only the data.
//
// A group is written to its segment without an fsync, then to the ring,
// together with every record written since the last moment everything was
// durable (lazy records). When the ring has no room left, or a group is too
// large for it, the segment is fsynced instead: everything written is then
// durable in the segments, and the ring starts over at its beginning.
// Sealed segments are fsynced when sealed (tidwall/wal does that), so only
// the tail segment can lack what the ring holds.
//
// A ring record starts at a multiple of ringBlock and is written as whole
// blocks, so a write torn by a power loss can damage only itself (never a
// record confirmed before it), and the kernel never has to read a block in
// order to change part of it. Little-endian:
//
//	offset size field
//	0      4    magic "CRG1"
//	4      4    crc32c (Castagnoli) of bytes [8, 40+length)
//	8      8    nonce: random, chosen by each Open
//	16     8    lap: 1 from Open, one more each time the ring starts over
//	24     8    index of the first frame
//	32     4    frames
//	36     4    length of the frames
//	40     n    the frames (journal/doc.go), as in the segments
//
// Recovery reads the record at offset 0 and every record after it with the
// same nonce and lap whose first index follows on from the one before; the
// first that does not (zeros, a torn write, a record of an earlier lap or
// run) ends the ring. Records the segments lack after their own recovery
// are appended to them and fsynced, before the ring is used again. A ring
// whose first record starts after the segments' end is a gap no crash can
// make: Open refuses it, and Repair sets the ring aside.
const (
	ringName        = "RING"
	ringBlock       = 4096
	ringHeaderSize  = 40
	ringMagic       = "CRG1"
	ringMinBytes    = 64 << 10
	defaultRingSize = 8 << 20
)

// ring is the open sync ring. It is owned by the writer role.
type ring struct {
	f     *os.File
	size  int64
	nonce uint64
	lap   uint64
	pos   int64 // where the next record goes; a multiple of ringBlock
	buf   []byte
}

// openRing opens DIR/RING for writing, making it if it is missing or not
// the right size. fresh makes a new file in any case, so that whoever held
// the old one open (a master being taken over from) writes into a file
// nobody reads. Records left in the old ring must have been restored first.
func openRing(dir string, size int64, fresh, reuseWhenFull bool) (*ring, error) {
	path := filepath.Join(dir, ringName)
	fi, err := os.Lstat(path)
	usable := err == nil && fi.Mode().IsRegular() && fi.Size() == size
	if fresh || !usable {
		if err := makeRing(path, size); err != nil {
			if !usable || !reuseWhenFull || !isNoSpace(err) {
				return nil, fmt.Errorf("wal: make the sync ring: %w", err)
			}
			// A full disk: the old ring is used again. (A fresh one is for
			// an old master still alive, and its process is gone.)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|ringOpenFlags, 0)
	if err != nil {
		return nil, fmt.Errorf("wal: open sync ring: %w", err)
	}
	r := &ring{f: f, size: size, nonce: rand.Uint64(), lap: 1}
	// Whatever the file held is in the segments now: end it at offset 0.
	if err := r.clear(); err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: sync ring %s: %w", path, err)
	}
	return r, nil
}

// makeRing writes a zero-filled ring and renames it into place.
func makeRing(path string, size int64) error {
	return writeFileAtomic(path, make([]byte, size))
}

// maxPayload is the most frame bytes one ring record takes; a group with
// more is made durable by fsyncing its segment.
func (r *ring) maxPayload() int { return int(r.size/4) - ringHeaderSize }

// fits says whether a record of n frame bytes fits before the ring's end.
func (r *ring) fits(n int) bool {
	return n <= r.maxPayload() && r.pos+blocks(ringHeaderSize+n) <= r.size
}

func blocks(n int) int64 { return (int64(n) + ringBlock - 1) / ringBlock * ringBlock }

// write makes the frames in parts, records first to first+frames-1, durable
// as one ring record. The caller has checked fits.
func (r *ring) write(first uint64, frames int, parts ...[]byte) error {
	n := ringHeaderSize
	for _, p := range parts {
		n += len(p)
	}
	padded := int(blocks(n))
	if cap(r.buf) < padded {
		r.buf = make([]byte, padded)
	}
	b := r.buf[:padded]
	copy(b, ringMagic)
	binary.LittleEndian.PutUint64(b[8:], r.nonce)
	binary.LittleEndian.PutUint64(b[16:], r.lap)
	binary.LittleEndian.PutUint64(b[24:], first)
	binary.LittleEndian.PutUint32(b[32:], uint32(frames))
	binary.LittleEndian.PutUint32(b[36:], uint32(n-ringHeaderSize))
	off := ringHeaderSize
	for _, p := range parts {
		off += copy(b[off:], p)
	}
	clear(b[n:])
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b[8:n], castagnoli))
	if _, err := r.f.WriteAt(b, r.pos); err != nil {
		return fmt.Errorf("sync ring write at %d: %w", r.pos, err)
	}
	if err := ringSync(r.f); err != nil {
		return fmt.Errorf("sync ring: %w", err)
	}
	r.pos += int64(padded)
	return nil
}

// restart begins a new lap at offset 0, once everything the ring held is
// durable in the segments. The old records stay until overwritten; they
// are older than anything the segments lack, so recovery skips them.
func (r *ring) restart() {
	r.pos = 0
	r.lap++
}

// clear ends the ring at offset 0 (a zero block there), for a ring whose
// records are all durable in the segments: after a clean Close, or at Open
// once they are restored.
func (r *ring) clear() error {
	if _, err := r.f.WriteAt(make([]byte, ringBlock), 0); err != nil {
		return err
	}
	if err := ringSync(r.f); err != nil {
		return err
	}
	r.restart()
	return nil
}

func (r *ring) close() error { return r.f.Close() }

// ringTail is what a ring holds for recovery: frames first..last, in order.
type ringTail struct {
	path        string
	first, last uint64 // last < first: nothing
	frames      [][]byte
}

func (t *ringTail) empty() bool { return t.last < t.first }

// readRing reads the records of the ring's newest lap (see the comment at
// the top of this file). A missing ring holds nothing. A record whose CRC
// holds but whose frames do not decode is corruption, reported as such.
func readRing(dir string, maxRecord int) (ringTail, error) {
	path := filepath.Join(dir, ringName)
	t := ringTail{path: path, first: 1}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return t, fmt.Errorf("wal: read sync ring: %w", err)
	}
	var nonce, lap uint64
	for pos := int64(0); pos+ringHeaderSize <= int64(len(data)); {
		h := data[pos:]
		n := int64(binary.LittleEndian.Uint32(h[36:]))
		if string(h[:4]) != ringMagic || n > int64(len(data))-pos-ringHeaderSize ||
			crc32.Checksum(h[8:ringHeaderSize+n], castagnoli) != binary.LittleEndian.Uint32(h[4:]) {
			break
		}
		rn, rl, first := binary.LittleEndian.Uint64(h[8:]), binary.LittleEndian.Uint64(h[16:]), binary.LittleEndian.Uint64(h[24:])
		if first == 0 {
			break
		}
		if pos == 0 {
			nonce, lap, t.first, t.last = rn, rl, first, first-1
		} else if rn != nonce || rl != lap || first != t.last+1 {
			break
		}
		frames := int(binary.LittleEndian.Uint32(h[32:]))
		body := h[ringHeaderSize : ringHeaderSize+n]
		for k := 0; k < frames; k++ {
			f, err := journal.DecodeFrame(body, maxRecord)
			if err == nil && f.Index != t.last+1 {
				err = fmt.Errorf("frame says index %d", f.Index)
			}
			if err != nil {
				return t, &journal.CorruptionError{Path: path, Offset: pos + int64(len(h)-len(body)), Index: t.last + 1,
					Reason: "sync ring record with a good crc32c holds a bad frame: " + err.Error()}
			}
			t.frames = append(t.frames, body[:f.Size])
			body = body[f.Size:]
			t.last++
		}
		if len(body) != 0 {
			return t, &journal.CorruptionError{Path: path, Offset: pos, Index: t.last + 1,
				Reason: fmt.Sprintf("sync ring record has %d bytes after its %d frames", len(body), frames)}
		}
		pos += blocks(ringHeaderSize + int(n))
	}
	return t, nil
}

// gapError is the error for a ring that starts after the segments end.
func (t *ringTail) gapError(last uint64) error {
	return &journal.CorruptionError{Path: t.path, Index: last + 1,
		Reason: fmt.Sprintf("the segments end at record %d but the sync ring continues from %d, so records %d-%d are in neither",
			last, t.first, last+1, t.first-1)}
}

// setAsideRing renames the ring to a .broken file, for a repair that cut
// the segments before the ring's first record. It returns the new name.
func setAsideRing(dir string) (string, error) {
	path := filepath.Join(dir, ringName)
	broken := path + "." + time.Now().UTC().Format("20060102T150405Z") + brokenSuffix
	if err := os.Rename(path, broken); err != nil {
		return "", err
	}
	return broken, syncDir(dir)
}
