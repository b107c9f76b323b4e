// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Frame layout (little-endian); see doc.go for the rules around it.
//
//	offset size field
//	0      4    crc32c (Castagnoli) of bytes [4, HeaderSize+length)
//	4      4    length of the body
//	8      8    index
//	16     1    type (0 invalid)
//	17     1    flags (FlagBatchStart, FlagBatchEnd, FlagMoved)
//	18     2    reserved, zero
//	20     n    body: payload, or for FlagMoved the original index (u64) then payload
const HeaderSize = 20

// Frame flags.
const (
	// FlagBatchStart marks the first record of an atomic batch.
	FlagBatchStart uint8 = 1 << 0
	// FlagBatchEnd marks the last record of an atomic batch. A batch counts
	// only once its end record is read.
	FlagBatchEnd uint8 = 1 << 1
	// FlagMoved marks a compaction copy; the body starts with the original index.
	FlagMoved uint8 = 1 << 2

	knownFlags = FlagBatchStart | FlagBatchEnd | FlagMoved
)

// DefaultMaxRecordBytes is the payload limit used when a backend's options
// leave it zero.
const DefaultMaxRecordBytes = 8 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Frame is a decoded record with its framing.
type Frame struct {
	Record
	Flags uint8
	Size  int // bytes the frame occupies, header included
}

// FrameSize is the size of the frame AppendFrame writes for r.
func FrameSize(r *Record) int {
	n := HeaderSize + len(r.Data)
	if r.Moved != 0 {
		n += 8
	}
	return n
}

// AppendFrame appends the frame of r at index with the given batch flags to
// dst and returns the extended slice. FlagMoved is set from r.Moved.
func AppendFrame(dst []byte, index uint64, flags uint8, r *Record) []byte {
	start := len(dst)
	size := FrameSize(r)
	dst = grow(dst, size)
	b := dst[start : start+size]
	body := size - HeaderSize
	flags &^= FlagMoved
	if r.Moved != 0 {
		flags |= FlagMoved
	}
	binary.LittleEndian.PutUint32(b[4:], uint32(body))
	binary.LittleEndian.PutUint64(b[8:], index)
	b[16] = byte(r.Type)
	b[17] = flags
	b[18], b[19] = 0, 0
	p := b[HeaderSize:]
	if r.Moved != 0 {
		binary.LittleEndian.PutUint64(p, r.Moved)
		p = p[8:]
	}
	copy(p, r.Data)
	binary.LittleEndian.PutUint32(b[0:], crc32.Checksum(b[4:], castagnoli))
	return dst
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*cap(b)+n)
	copy(nb, b)
	return nb
}

// Reasons a frame does not decode. DecodeFrame wraps them in ErrCorrupt.
var (
	errShortHeader = errors.New("truncated frame header")
	errZeroType    = errors.New("record type 0 (zero-filled or unwritten bytes)")
	errBadFlags    = errors.New("unknown frame flags")
	errTooLarge    = errors.New("frame length over the record limit")
	errShortBody   = errors.New("frame body runs past the end of the data")
	errCRC         = errors.New("crc32c mismatch")
)

// DecodeFrame decodes one frame from the start of buf. It checks the length
// against maxRecord and against len(buf) before looking at the body, so a
// damaged length never causes a large allocation, and it never allocates:
// the returned Data aliases buf. Every error wraps ErrCorrupt.
func DecodeFrame(buf []byte, maxRecord int) (Frame, error) {
	if len(buf) < HeaderSize {
		return Frame{}, fmt.Errorf("%w: %w (%d bytes)", ErrCorrupt, errShortHeader, len(buf))
	}
	body := binary.LittleEndian.Uint32(buf[4:])
	typ := RecordType(buf[16])
	flags := buf[17]
	if typ == 0 {
		return Frame{}, fmt.Errorf("%w: %w", ErrCorrupt, errZeroType)
	}
	if flags&^knownFlags != 0 || buf[18] != 0 || buf[19] != 0 {
		return Frame{}, fmt.Errorf("%w: %w %#x", ErrCorrupt, errBadFlags, flags)
	}
	limit := uint64(maxRecord)
	if flags&FlagMoved != 0 {
		limit += 8
	}
	if uint64(body) > limit {
		return Frame{}, fmt.Errorf("%w: %w (%d > %d)", ErrCorrupt, errTooLarge, body, limit)
	}
	size := HeaderSize + int(body)
	if size > len(buf) {
		return Frame{}, fmt.Errorf("%w: %w (needs %d, have %d)", ErrCorrupt, errShortBody, size, len(buf))
	}
	want := binary.LittleEndian.Uint32(buf[0:])
	if got := crc32.Checksum(buf[4:size], castagnoli); got != want {
		return Frame{}, fmt.Errorf("%w: %w (stored %08x, computed %08x)", ErrCorrupt, errCRC, want, got)
	}
	f := Frame{Flags: flags, Size: size}
	f.Index = binary.LittleEndian.Uint64(buf[8:])
	f.Type = typ
	p := buf[HeaderSize:size]
	if flags&FlagMoved != 0 {
		if len(p) < 8 {
			return Frame{}, fmt.Errorf("%w: moved record without its original index", ErrCorrupt)
		}
		f.Moved = binary.LittleEndian.Uint64(p)
		if f.Moved == 0 || f.Moved >= f.Index {
			return Frame{}, fmt.Errorf("%w: moved record %d claims original index %d", ErrCorrupt, f.Index, f.Moved)
		}
		p = p[8:]
	}
	f.Data = p
	return f, nil
}

// BatchFlags returns the batch flags for record i of a batch of n.
func BatchFlags(i, n int) uint8 {
	var f uint8
	if i == 0 {
		f |= FlagBatchStart
	}
	if i == n-1 {
		f |= FlagBatchEnd
	}
	return f
}
