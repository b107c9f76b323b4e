// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
)

// RecordType tags what a record means to the journal's owner. The journal
// itself only checks that it is not zero: type 0 is invalid so that a
// zero-filled region of a file can never be read as a record.
//
// Types 1–239 belong to the owner (the broker's event types). Types 240–255
// are reserved for the journal.
type RecordType uint8

// MaxOwnerType is the highest record type an owner may use.
const MaxOwnerType RecordType = 239

// TypeClaim is a journal-reserved record a backend writes when a writer
// takes the log over (see Fencer). Its payload names the writer, for
// humans. Replay skips reserved records; an owner that reads with Read or
// Scan ignores them, and compaction drops them (no owner calls them live).
const TypeClaim RecordType = 255

// Record is one entry of the journal.
type Record struct {
	// Index is the record's position in the log, starting at 1 and gap-free.
	// The log sets it on Read and Scan; Append ignores it.
	Index uint64
	// Type says what the record means to the owner. Zero is invalid.
	Type RecordType
	// Data is the payload. On Append the log copies it before returning;
	// on Read the caller owns the returned slice; on Scan it is valid only
	// during the callback.
	Data []byte
	// Moved is non-zero for a copy written by compaction: the record that
	// was at index Moved now lives at Index. Owners rewrite their references
	// when they replay one (see Compact). Append copies it into the frame,
	// which is how Compact marks its copies.
	Moved uint64
}

// Log is the seam between the broker and a log backend. It is as small as
// hashicorp/raft's LogStore on purpose; what only some backends can do is a
// separate interface (Scanner, Snapshotter, Segmenter, Syncer,
// BatchLimiter, ...) found by type assertion.
//
// All methods are safe for concurrent use.
type Log interface {
	// Append writes recs as one atomic batch and returns the indexes given to
	// its first and last record. After a crash either every record of the
	// batch is in the log or none is. Append returns once the batch is as
	// durable as the log's sync policy promises (for the default, "always",
	// on disk). Many goroutines may append at once; the backend batches them
	// (group commit). ctx bounds only the wait to be queued: once queued, the
	// outcome is always reported. An empty recs is an error.
	Append(ctx context.Context, recs []Record) (first, last uint64, err error)

	// Read returns the record at index, or an error wrapping ErrNotFound if
	// index is outside [FirstIndex, LastIndex].
	Read(index uint64) (Record, error)

	// FirstIndex is the index of the oldest record, or LastIndex()+1 when the
	// log is empty. A new log has FirstIndex 1 and LastIndex 0.
	FirstIndex() uint64

	// LastIndex is the index of the newest record whose Append has been
	// confirmed, or FirstIndex()-1 when the log is empty.
	LastIndex() uint64

	// TruncateFront removes every record before index, which becomes the
	// first. index may be LastIndex()+1, which empties the log. The removal
	// is durable when TruncateFront returns.
	TruncateFront(index uint64) error

	// Close flushes, syncs and releases the log. Later calls fail with an
	// error wrapping ErrClosed.
	Close() error
}

// Scanner is implemented by logs that can read a range faster than one Read
// per record.
type Scanner interface {
	// Scan calls fn for each record from index from to the LastIndex seen
	// when Scan started, in order. Record.Data is valid only during fn. A
	// non-nil error from fn stops the scan and is returned.
	Scan(from uint64, fn func(Record) error) error
}

// BatchReader is implemented by logs for which one Read is a round trip to
// a server: ReadBatch reads the records at several indexes in few requests.
// (A local log's Read is cheap; it does not implement it.)
type BatchReader interface {
	// ReadBatch calls fn once for each of indexes, in the order given:
	// with the record there, or with the error Read would return for it.
	// Runs of ascending indexes read best. A non-nil error from fn stops
	// it and is returned.
	ReadBatch(indexes []uint64, fn func(index uint64, r Record, err error) error) error
}

// Snapshotter is implemented by logs that store a snapshot beside the log:
// an opaque blob of the owner's state that covers every record up to and
// including its index, so replay can start after it.
type Snapshotter interface {
	// SaveSnapshot durably stores data as the snapshot covering index.
	SaveSnapshot(index uint64, data []byte) error
	// LoadSnapshot returns the newest valid snapshot, or an error wrapping
	// ErrNoSnapshot.
	LoadSnapshot() (index uint64, data []byte, err error)
}

// SnapshotKeeper is implemented by a Snapshotter that keeps snapshots
// before the newest, so that LoadSnapshot can fall back to one of them when
// the newest is damaged. A replay from the oldest kept reads every record
// after it, so whoever compacts the log must keep those: OldestSnapshot
// returns its index, or an error wrapping ErrNoSnapshot if there is none.
// LoadSnapshotBefore is LoadSnapshot among the snapshots older than index,
// for an owner that finds a snapshot it cannot use.
type SnapshotKeeper interface {
	OldestSnapshot() (uint64, error)
	LoadSnapshotBefore(index uint64) (uint64, []byte, error)
}

// Segment describes one unit of storage that a log frees as a whole.
type Segment struct {
	First, Last uint64 // indexes of its first and last record (Last < First when empty)
	Bytes       int64  // bytes on disk, framing included
	Name        string // file or object name, for humans
}

// Segmenter is implemented by logs that store records in segments and free
// them only as whole segments. Compaction uses it to pick what to rewrite.
type Segmenter interface {
	// Segments lists the segments from oldest to newest. The last one is
	// the one being written.
	Segments() []Segment
}

// Fencer is implemented by logs that more than one process can reach, so
// that a writer which lost its leadership, and does not know it yet, must
// be stopped by the log itself. (The embedded wal needs none: its directory
// lock admits one process.)
type Fencer interface {
	// Fence makes the caller the log's only writer: once it returns, every
	// append by an earlier writer fails with ErrFenced. It returns the index
	// of the claim record it wrote; the caller replays through it before
	// acting as the owner.
	Fence(ctx context.Context) (uint64, error)
}

// LazyAppender is implemented by logs that can take records nobody waits
// for: AppendLazy queues them and returns at once. They are ordered after
// everything appended before the call and before everything appended after
// it, written with the next Append's group (or by the log's own timer, at
// most the log's sync interval later), and made durable with that group's
// sync (or the interval's). A crash before that loses them and nothing
// before them. The broker uses it for acknowledgements nobody waits for
// (auto acks), whose loss only means a redelivery, so they cost no write
// or fsync of their own. The log keeps recs until it writes them: the
// caller must not change them (or their Data) after the call.
type LazyAppender interface {
	AppendLazy(ctx context.Context, recs []Record) error
}

// BatchLimiter is implemented by logs that take only so much in one Append:
// JetStream at most the server's limit of messages in an atomic batch, the
// embedded journal at most one segment of bytes. An Append over the limit
// fails with an error wrapping ErrBatchTooLarge and stores nothing. Callers
// find the limit with LimitOf: a burst of independent operations is split
// into appends that fit (AppendInBatches), and an operation that must be
// atomic and does not fit is refused before anything is stored.
type BatchLimiter interface {
	BatchLimit() BatchLimit
}

// BatchLimit is what one Append may hold. A zero field means no limit on
// that count.
type BatchLimit struct {
	Records int // records
	Bytes   int // framed bytes: the sum of FrameSize over the records
}

// LimitOf is l's BatchLimit; the zero BatchLimit if it has none.
func LimitOf(l Log) BatchLimit {
	if bl, ok := l.(BatchLimiter); ok {
		return bl.BatchLimit()
	}
	return BatchLimit{}
}

// Check returns an error wrapping ErrBatchTooLarge, saying which limit,
// when recs do not fit in one Append under lim.
func (lim BatchLimit) Check(recs []Record) error {
	n := 0
	if lim.Bytes > 0 {
		for i := range recs {
			n += FrameSize(&recs[i])
		}
	}
	return lim.CheckSize(len(recs), n)
}

// CheckSize is Check for a batch of records records of bytes framed bytes
// (bytes may be an upper bound), for a caller that counts before it builds.
func (lim BatchLimit) CheckSize(records, bytes int) error {
	if lim.Records > 0 && records > lim.Records {
		return fmt.Errorf("%w: %d records, over the %d one append may hold", ErrBatchTooLarge, records, lim.Records)
	}
	if lim.Bytes > 0 && bytes > lim.Bytes {
		return fmt.Errorf("%w: %d bytes, over the %d one append may hold", ErrBatchTooLarge, bytes, lim.Bytes)
	}
	return nil
}

// AppendInBatches appends recs, which need not be atomic together, in
// order, in as few Appends as l's BatchLimit allows (one, when it has
// none). placed is called after each Append with the index of its first
// record and how many it held. It stops at the first error and returns
// how many records were stored before it. A single record over the limit
// fails as Append would.
func AppendInBatches(ctx context.Context, l Log, recs []Record, placed func(first uint64, n int)) (int, error) {
	lim := LimitOf(l)
	stored := 0
	for stored < len(recs) {
		n, bytes := 0, 0
		for i := range recs[stored:] {
			size := FrameSize(&recs[stored+i])
			if n > 0 && ((lim.Records > 0 && n == lim.Records) || (lim.Bytes > 0 && bytes+size > lim.Bytes)) {
				break
			}
			n, bytes = n+1, bytes+size
		}
		first, _, err := l.Append(ctx, recs[stored:stored+n])
		if err != nil {
			return stored, err
		}
		placed(first, n)
		stored += n
	}
	return stored, nil
}

// SpaceGuard is implemented by logs on a device that can fill up. While
// LowOnSpace is true the log has run out of space once and not yet got its
// reserve back: it still takes appends (acknowledgements of what it holds
// must go on), but the owner should refuse new data (persistent messages)
// with a clear error rather than spend the reserve on it.
type SpaceGuard interface {
	LowOnSpace() bool
}

// Syncer is implemented by logs whose sync policy can leave confirmed
// records not yet on disk.
type Syncer interface {
	// Sync makes every record appended before the call durable, lazy ones
	// (LazyAppender) included.
	Sync() error
	// DurableIndex is the highest index known to be durable.
	DurableIndex() uint64
}

// Errors that callers test for with errors.Is. Returned errors wrap them with
// context (path, segment, offset, index).
var (
	ErrNotFound      = errors.New("journal: record not found")
	ErrClosed        = errors.New("journal: closed")
	ErrCorrupt       = errors.New("journal: corrupt")
	ErrInvalidRecord = errors.New("journal: invalid record")
	ErrFailed        = errors.New("journal: failed after an I/O error; reopen to recover")
	ErrLocked        = errors.New("journal: locked by another process")
	ErrNoSnapshot    = errors.New("journal: no snapshot")
	ErrFenced        = errors.New("journal: fenced: another writer owns the log")
	ErrBatchTooLarge = errors.New("journal: batch too large")
	ErrNoSpace       = errors.New("journal: no space left on the device")
)

// CorruptionError says exactly where a log is damaged. It wraps ErrCorrupt.
type CorruptionError struct {
	Path   string // segment file (or stream) holding the damage
	Offset int64  // byte offset in Path of the first damaged byte
	Index  uint64 // index of the record expected there
	Reason string // what was wrong
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("journal corrupt: %s at %s offset %d (record index %d)", e.Reason, e.Path, e.Offset, e.Index)
}

func (e *CorruptionError) Unwrap() error { return ErrCorrupt }

// ValidateBatch checks recs before they are queued: at least one record, no
// type 0 or reserved type, and no payload over maxRecord bytes.
func ValidateBatch(recs []Record, maxRecord int) error {
	if len(recs) == 0 {
		return fmt.Errorf("%w: empty batch", ErrInvalidRecord)
	}
	for i := range recs {
		r := &recs[i]
		if r.Type == 0 || r.Type > MaxOwnerType {
			return fmt.Errorf("%w: record %d of batch has type %d (valid: 1-%d)", ErrInvalidRecord, i, r.Type, MaxOwnerType)
		}
		if len(r.Data) > maxRecord {
			return fmt.Errorf("%w: record %d of batch is %d bytes, over the %d-byte limit", ErrInvalidRecord, i, len(r.Data), maxRecord)
		}
	}
	return nil
}

// FileMode and DirMode are the permissions of every file and directory the
// journal and the broker write: messages are for the broker's user alone to
// read. (The umask can only take permissions away.)
const (
	FileMode fs.FileMode = 0o600
	DirMode  fs.FileMode = 0o700
)
