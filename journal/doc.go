// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package journal is Cairn's write-ahead log seam: the Log interface every
// backend implements, the record framing the byte-writing backends share,
// replay with progress, and compaction. It knows nothing about messages; the
// broker's events are opaque typed records to it.
//
// # Records and frames
//
// A record is a type (1-239 for the owner, 240-255 reserved, 0 invalid), a
// payload, and the index the log gives it (from 1, gap-free). Of the
// reserved types only TypeClaim (255) is in use: the record a JetStream
// writer appends when it takes the log over (Fencer). Replay skips reserved
// records. Backends store each record as one frame, little-endian:
//
//	offset size field
//	0      4    crc32c (Castagnoli) of bytes [4, 20+length)
//	4      4    length of the body
//	8      8    index
//	16     1    type; 0 is invalid, so zero-filled bytes never read as a record
//	17     1    flags: 0x01 batch start, 0x02 batch end, 0x04 moved
//	18     2    reserved, zero
//	20     n    body: the payload; for a moved record, the original index
//	            (u64) and then the payload
//
// The CRC covers the length, index, type and flags as well as the body, so a
// frame read at the wrong place, or with a changed header, fails it. A
// decoder checks the length against the record limit and the bytes at hand
// before it looks at the body (it never allocates for a length it has not
// checked). Every frame carries its index, so a segment that is missing,
// duplicated or read out of place is caught. (The one exception: a
// JetStream claim is published before its sequence is known, so its frame
// has index 0.)
//
// # Batches
//
// One Append is one batch: its first frame has the start flag, its last the
// end flag (a batch of one has both). A batch counts only once its end frame
// has been read: after a crash either all of a batch is in the log or none
// of it is, which is what makes a transaction commit one batch. The group
// commit writes many batches with one write and one fsync; each keeps its
// own flags.
//
// # The embedded backend (package wal)
//
// Segment files are tidwall/wal's: DIR/wal/<first index, 20 digits>, each a
// sequence of uvarint(length) ‖ frame. A segment is sealed when it reaches
// the segment size; tidwall/wal fsyncs it and creates the next file, then
// Cairn fsyncs the directory and records the sealed segment (first and last
// index, size) in DIR/MANIFEST, replaced atomically (write a temporary file,
// fsync, rename, fsync the directory). The manifest also holds the logical
// first index: TruncateFront writes the manifest first, then deletes the
// segment files wholly before the new first index, and never rewrites one.
//
// The sync ring, DIR/RING, makes group commits durable under SyncAlways
// (the byte layout is in wal/ring.go). It is a file of fixed size (8 MiB by
// default) whose blocks were all written with zeros when it was made. A
// group is written to its segment without an fsync and then, with every
// record written since everything was last durable, to the ring as one
// record of whole 4 KiB blocks with one O_DSYNC write. An fsync of the
// growing tail segment must also commit the file's new size and blocks in
// the filesystem's journal; a write over blocks that already exist commits
// only the data (on this project's ext4 disks, about 1.5 times the rate).
// When the ring has no room left, or a group is larger than a quarter of
// it, the tail segment is fsynced instead, and the ring starts over at
// offset 0 with the next lap. Sealed segments are fsynced when sealed. Each
// Open gives the ring a new random nonce; under a replication lease it
// makes a new file, so that a deposed master still holding the old one
// writes where nobody reads. A clean Close writes a zero block at offset 0:
// the ring then holds nothing.
//
// Crash rules, applied by Open:
//
//   - Sealed segments never change. One that is missing, or whose size is not
//     the manifest's, refuses the open with the segment named; so does a
//     missing successor of the last sealed segment.
//   - The last sealed segment and the unsealed ones after it are read in
//     full. Every frame must decode, carry the next index, and fit the batch
//     structure. The valid log ends after the last complete batch.
//   - Damage there is a torn tail when the data ends inside an entry, or
//     when the file ends in zero bytes that cover the damaged entry, or all
//     of it from a 512-byte boundary inside it on (a size-extending write
//     whose data never reached the disk), or when the last batch has no end
//     frame. A torn tail is cut: the file is truncated after the last
//     complete batch, later files are removed, every removed byte is kept in
//     DIR/<segment>.<time>.broken, and Open reports the records dropped. When
//     the torn batch began in a segment that compaction removed, there is no
//     complete batch before it to cut after: the cut goes back to where the
//     first segment read begins (that batch never became whole on disk; the
//     ring gives back what of it was confirmed).
//   - Anything else is corruption: Open refuses it with the file, byte
//     offset and index, unless Options.Repair is set, in which case it is cut
//     the same way (with everything after it). `cairn journal repair` does
//     that cut offline; `cairn journal verify` reports without changing.
//   - Older sealed segments are not read at open (Options.VerifyAll reads
//     them); every Read and every replay checks each frame's CRC and index,
//     so damage there is reported precisely when it is read, never returned
//     as data.
//   - The ring is read from offset 0: each record of the same nonce and lap
//     whose first index follows on from the one before, with a good CRC and
//     frames that decode. After the segments' own recovery, the ring's
//     records beyond their end (what a power loss took from the tail
//     segment before it was fsynced) are appended to them and fsynced, and
//     reported (Recovery.Restored). The tail segment is then fsynced in any
//     case, before the ring is cleared: after a kill -9 its last records
//     may be in the page cache only. A ring that starts after the segments
//     end is a gap no crash makes: Open refuses it, naming the records
//     missing; Repair sets the ring aside as RING.<time>.broken.
//   - After any failed write, fsync or manifest update the log refuses all
//     appends (ErrFailed) until it is closed and reopened, which re-runs
//     these rules; tidwall/wal's in-memory state may be ahead of the disk
//     after such a failure, so it is never written through again.
//   - Except a write or manifest update that fails because the device is
//     full (ENOSPC, EDQUOT): the log refuses appends with ErrNoSpace,
//     deletes DIR/RESERVE (zeros, 4 MiB by default, written when there is
//     room) and reopens itself: the tail segment is truncated to the bytes
//     confirmed before the failed write, segment files begun after it are
//     deleted, and the files are opened again by these rules. Nothing of
//     the failed write survives. A failed fsync stays ErrFailed.
//   - DIR/LOCK is held with flock while the log is open and names the
//     holder's pid, host and start time; a second opener is refused with
//     them.
//
// Sync policies: SyncAlways (default) makes each group commit durable (in
// the ring, or by an fsync of the tail segment) before any appender in it
// returns; SyncInterval returns after the write and fsyncs at
// most every SyncInterval, so a power loss or kernel crash can lose what was
// confirmed in the last interval (a process crash loses nothing, the data is
// in the page cache); SyncNever leaves flushing to the kernel, segment rolls
// and Close.
//
// # Snapshots and compaction
//
// A snapshot is an owner's blob covering every record up to its index,
// stored beside the log (DIR/snapshots/<index>.snap: magic, index, length,
// crc32c, blob; the newest two are kept). Replay then starts after it.
//
// Compact frees head segments whose live share is under a threshold by
// appending copies of their live records at the tail (moved flag set, the
// original index in the body) and truncating the front. It works only below
// the owner's snapshot index, where records are a store of live payloads
// rather than events to replay, so the order of events replay applies is
// unchanged; the owner maps original indexes to new ones from the result and
// from the moved records it replays.
package journal
