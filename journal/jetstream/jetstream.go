// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package jetstream is Cairn's replicated journal backend: a journal.Log on a
// NATS JetStream stream (github.com/nats-io/nats.go/jetstream). Replication,
// leader election and storage are the NATS cluster's; this package adds what
// a write-ahead journal needs on top:
//
//   - Indexes are stream sequences, gap-free from the first. Each message's
//     payload is a Cairn frame (journal/doc.go) whose index must equal the
//     message's sequence, so a record is checked end to end by its CRC32C.
//   - Group commit. One writer goroutine takes every queued append (up to
//     Options.MaxBatch records, the server's limit on an atomic batch,
//     1,000 by default) and publishes
//     them as one message, or as one JetStream atomic batch (Nats-Batch-Id,
//     -Sequence, -Commit; the stream has AllowAtomicPublish), then confirms
//     each. A batch is all or nothing, so a multi-record Append is atomic
//     and a crashed or fenced writer never leaves part of one.
//   - Single-writer fencing. Each round's first message expects the stream
//     to end where this writer's last round ended
//     (Nats-Expected-Last-Sequence), and the next round is sent only once
//     this one is answered. A refusal makes the log fail with
//     journal.ErrFenced; nothing more is appended until it is reopened.
//     Fence writes a claim record, so that an earlier writer is fenced
//     before this one appends anything.
//     Why one round in flight, not a pipeline: with pipelined appends, after
//     another writer slips one message in, the appends after the first
//     refused one line up with the new sequence numbers and succeed. Chaining
//     Nats-Expected-Last-Msg-Id closes that on a single server, but on a
//     replicated stream (nats-server 2.15.2) a publish refused for a wrong
//     last msg id leaves the stream answering no later publish, the new
//     writer's included (see TestChainedMsgIDStallsR3). Rounds grow with the
//     load, so one in flight costs little.
//   - Idempotent retries. Every message has the id "<writer epoch>-<index>".
//     When a reply is lost (a timeout, no responders during a leader
//     election), the writer looks up the last record of the round: if it is
//     there with this writer's id the round landed; if not, it re-publishes
//     the round with the same ids, which the stream de-duplicates within its
//     Duplicates window.
//   - Replay by an ordered consumer, random reads by direct get,
//     TruncateFront by purge, snapshots in an object store bucket, and
//     segments for compaction as fixed runs of SegmentRecords indexes.
//
// Durability is the NATS cluster's: an append is confirmed once the stream
// leader has it, and on a replicated stream once a quorum has it. The
// nats-server file store fsyncs on its own interval (2 minutes by default);
// run the servers with sync_interval: always for per-write fsync. See
// README's "Journal backends".
package jetstream

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/cairnmq/cairn/journal"
)

// Options configure a journal. The zero value is the default.
type Options struct {
	// Stream is the stream's name (default "CAIRN_JOURNAL").
	Stream string
	// Subject is the stream's one subject (default "cairn.journal.<stream>",
	// lower-cased).
	Subject string
	// Replicas is the stream's replication factor when Open creates it
	// (default 1; use 3 on a 3-node cluster).
	Replicas int
	// Storage is the stream's storage when Open creates it (default file).
	Storage njs.StorageType
	// SegmentRecords is how many indexes make one segment for compaction
	// (default 16384). Purge can free any prefix; segments only give
	// compaction its unit.
	SegmentRecords uint64
	// MaxRecordBytes bounds one record's payload (default: the server's
	// maximum payload less room for the frame and headers).
	MaxRecordBytes int
	// MaxBatch is the most records one Append, and one round of group
	// commit, holds (default 1000). It must not exceed the servers' limit on
	// an atomic batch: nats-server's jetstream { limits { batch { max_msgs
	// } } }, 1,000 unless configured. The log says so (BatchLimiter), so
	// that the broker splits what it may and refuses what it may not.
	MaxBatch int
	// Timeout bounds each request to the server (default 5s).
	Timeout time.Duration
	// RetryFor is how long the writer keeps re-publishing appends whose
	// outcome it does not know (lost acks, leader elections) before the log
	// fails (default 20s). It must stay under the stream's Duplicates
	// window (2 minutes) for retries to be idempotent.
	RetryFor time.Duration
	// Writer names this writer in claim records (default host:pid).
	Writer string
	// Gate, if set, is asked before every write (an append round, a purge,
	// a snapshot); an error fails it and every later append with
	// journal.ErrFenced. replication.Lease.Valid is meant to be the Gate:
	// the server's fence refuses a deposed writer once the next one has
	// claimed the stream, and the Gate stops this one writing sooner, as
	// soon as its own clock says its lease may be gone.
	Gate func() error
	// Logger receives fencing and retry events (default slog.Default()).
	Logger *slog.Logger
}

const (
	// codeBatchDuplicate: an atomic batch holds a message id the stream has
	// seen, which after a lost commit reply means the batch landed.
	codeBatchDuplicate njs.ErrorCode = 10201
	// codeBatchIncomplete: the commit reached a server that lacks some of
	// the batch's earlier messages (they went to a leader that has since
	// stepped down, or were lost). Nothing of the batch is stored, and a
	// re-publish under a new batch id may land.
	codeBatchIncomplete njs.ErrorCode = 10176
	// codeBatchTooLarge: an atomic batch over the server's max_msgs.
	codeBatchTooLarge njs.ErrorCode = 10199
	// defaultMaxBatch is nats-server's default limit on an atomic batch.
	defaultMaxBatch = 1000
	// headerRoom is what the NATS headers of one message may take.
	headerRoom = 512
	// duplicates is the stream's de-duplication window.
	duplicates = 2 * time.Minute
)

func (o *Options) fill(maxPayload int64) error {
	if o.Stream == "" {
		o.Stream = "CAIRN_JOURNAL"
	}
	if strings.ContainsAny(o.Stream, ". *>") {
		return fmt.Errorf("jetstream: stream name %q may not contain '.', ' ', '*' or '>'", o.Stream)
	}
	if o.Subject == "" {
		o.Subject = "cairn.journal." + strings.ToLower(o.Stream)
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.SegmentRecords == 0 {
		o.SegmentRecords = 16384
	}
	limit := int(maxPayload) - journal.HeaderSize - 8 - headerRoom
	if o.MaxRecordBytes <= 0 {
		o.MaxRecordBytes = min(limit, journal.DefaultMaxRecordBytes)
	}
	if o.MaxRecordBytes > limit {
		return fmt.Errorf("jetstream: MaxRecordBytes %d is over what the server's max payload (%d) allows (%d)", o.MaxRecordBytes, maxPayload, limit)
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = defaultMaxBatch
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.RetryFor <= 0 {
		o.RetryFor = 20 * time.Second
	}
	if o.RetryFor >= duplicates {
		return fmt.Errorf("jetstream: RetryFor %v must be under the %v duplicates window", o.RetryFor, duplicates)
	}
	if o.Writer == "" {
		host, _ := os.Hostname()
		o.Writer = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// Log is a journal.Log on a JetStream stream. See the package comment.
type Log struct {
	nc    *nats.Conn
	js    njs.JetStream
	st    njs.Stream
	opts  Options
	epoch string // this writer's id; message ids are epoch-index

	obsMu sync.Mutex
	obs   njs.ObjectStore // snapshots, opened on first use

	reqs chan *request
	quit chan struct{}
	done chan struct{}

	closeMu sync.RWMutex // held shared while enqueueing or reading; exclusively to close
	closed  bool

	first, last atomic.Uint64
	claims      atomic.Uint64         // Fence calls, for claim message ids
	failure     atomic.Pointer[error] // sticky: fenced, or an outcome never learnt

	truncMu sync.Mutex // orders TruncateFront against itself

	countMu  sync.Mutex // serializes countOld
	segMu    sync.Mutex
	segBytes map[uint64]int64 // segment number -> framed bytes, for indexes this handle wrote or counted
	base     uint64           // last index when this handle looked at the stream (Open, Fence)
	counted  uint64           // indexes of base's records through counted are in segBytes

	// Owned by the writer goroutine.
	next  uint64 // index the next record gets
	round []*request
	held  *request // taken from reqs but left for the next round
	msgs  []*nats.Msg

	// lose, when a test sets it, drops the batch messages it names before
	// they are sent, as a leader change loses them in transit.
	lose func(batchID string, seq int) bool
}

var (
	_ journal.Log            = (*Log)(nil)
	_ journal.Scanner        = (*Log)(nil)
	_ journal.BatchReader    = (*Log)(nil)
	_ journal.Snapshotter    = (*Log)(nil)
	_ journal.SnapshotKeeper = (*Log)(nil)
	_ journal.Segmenter      = (*Log)(nil)
	_ journal.Fencer         = (*Log)(nil)
	_ journal.BatchLimiter   = (*Log)(nil)
)

type request struct {
	recs        []journal.Record
	first, last uint64
	err         error
	done        chan struct{}
}

var requests = sync.Pool{New: func() any { return &request{done: make(chan struct{}, 1)} }}

// Open opens the journal on stream opts.Stream over nc, creating the stream
// if it does not exist. It does not fence earlier writers: call Fence for
// that (a standby taking over does). nc stays the caller's; Close does not
// close it.
func Open(ctx context.Context, nc *nats.Conn, opts Options) (*Log, error) {
	if err := opts.fill(nc.MaxPayload()); err != nil {
		return nil, err
	}
	if err := checkServerVersion(nc.ConnectedServerVersion()); err != nil {
		return nil, err
	}
	js, err := njs.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 4*opts.Timeout)
	defer cancel()
	cfg := njs.StreamConfig{
		Name: opts.Stream, Subjects: []string{opts.Subject},
		Storage: opts.Storage, Replicas: opts.Replicas,
		Retention: njs.LimitsPolicy, Discard: njs.DiscardNew, DenyDelete: true,
		Duplicates: duplicates, AllowDirect: true, AllowAtomicPublish: true,
		MaxMsgSize: int32(opts.MaxRecordBytes + journal.HeaderSize + 8 + headerRoom), // counts headers too
	}
	st, err := js.Stream(ctx, opts.Stream)
	if errors.Is(err, njs.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("jetstream: open stream %s: %w", opts.Stream, err)
	}
	have := st.CachedInfo().Config
	if len(have.Subjects) != 1 || have.Subjects[0] != opts.Subject || !have.AllowAtomicPublish || !have.DenyDelete || have.DenyPurge {
		return nil, fmt.Errorf("jetstream: stream %s exists with subjects %v, atomic publish %t, deny delete %t, deny purge %t; a journal needs subject %q, atomic publish, deny delete and purge allowed",
			opts.Stream, have.Subjects, have.AllowAtomicPublish, have.DenyDelete, have.DenyPurge, opts.Subject)
	}
	var epoch [8]byte
	if _, err := rand.Read(epoch[:]); err != nil {
		return nil, err
	}
	l := &Log{nc: nc, js: js, st: st, opts: opts, epoch: hex.EncodeToString(epoch[:]), segBytes: make(map[uint64]int64)}
	if err := l.loadTail(ctx); err != nil {
		return nil, err
	}
	l.reqs = make(chan *request, 1024)
	l.quit = make(chan struct{})
	l.done = make(chan struct{})
	go l.run()
	return l, nil
}

// MinServerVersion is the oldest nats-server the journal runs on: atomic
// batch publish (ADR-50), which makes a multi-record Append atomic, came in
// 2.12; batched direct get (for paging and compaction) in 2.11.
const MinServerVersion = "2.12.0"

// checkServerVersion refuses a server older than MinServerVersion, with a
// message that says why (an older server ignores AllowAtomicPublish and
// would be refused later, less clearly).
func checkServerVersion(v string) error {
	parse := func(s string) (out [3]int, ok bool) {
		s, _, _ = strings.Cut(strings.TrimPrefix(s, "v"), "-")
		parts := strings.Split(s, ".")
		if len(parts) != 3 {
			return out, false
		}
		for i, p := range parts {
			n, err := strconv.Atoi(p)
			if err != nil {
				return out, false
			}
			out[i] = n
		}
		return out, true
	}
	have, ok := parse(v)
	if !ok {
		return fmt.Errorf("jetstream: cannot read the server's version %q (the journal needs nats-server %s or later)", v, MinServerVersion)
	}
	need, _ := parse(MinServerVersion)
	for i := range have {
		if have[i] != need[i] {
			if have[i] < need[i] {
				return fmt.Errorf("jetstream: nats-server %s is older than %s, the first with JetStream atomic batch publish, which the journal needs", v, MinServerVersion)
			}
			break
		}
	}
	return nil
}

// loadTail reads the stream's bounds and the id of its last message, which
// the first append will expect.
func (l *Log) loadTail(ctx context.Context) error {
	info, err := l.st.Info(ctx)
	if err != nil {
		return fmt.Errorf("jetstream: stream %s info: %w", l.opts.Stream, err)
	}
	s := info.State
	first, last := s.FirstSeq, s.LastSeq
	if first == 0 {
		first = last + 1
	}
	if s.Msgs != last-first+1 && s.Msgs != 0 {
		return &journal.CorruptionError{Path: "stream " + l.opts.Stream, Index: first,
			Reason: fmt.Sprintf("stream holds %d messages in sequences %d-%d: some were deleted", s.Msgs, first, last)}
	}
	if s.Msgs == 0 {
		first = last + 1
	}
	l.first.Store(first)
	l.last.Store(last)
	l.next = last + 1
	l.segMu.Lock()
	l.base = last
	l.segMu.Unlock()
	if last >= first {
		m, err := l.st.GetMsg(ctx, last)
		if err != nil {
			return fmt.Errorf("jetstream: read last record %d of %s: %w", last, l.opts.Stream, err)
		}
		if _, err := l.decode(last, m.Data); err != nil {
			return err
		}
	}
	return nil
}

// Refresh re-reads the stream's bounds, so that a reader following a
// stream another writer appends to (a warm standby) sees what was added:
// LastIndex and Scan then reach it. Only for a Log this process does not
// append to.
func (l *Log) Refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	info, err := l.st.Info(ctx)
	if err != nil {
		return fmt.Errorf("jetstream: stream %s info: %w", l.opts.Stream, err)
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		first = last + 1
	}
	l.first.Store(first)
	l.last.Store(last)
	return nil
}

// Stream is the name of the journal's stream.
func (l *Log) Stream() string { return l.opts.Stream }

// MaxRecordBytes is the largest payload Append accepts.
func (l *Log) MaxRecordBytes() int { return l.opts.MaxRecordBytes }

// BatchLimit implements journal.BatchLimiter: one Append holds at most
// Options.MaxBatch records.
func (l *Log) BatchLimit() journal.BatchLimit { return journal.BatchLimit{Records: l.opts.MaxBatch} }

// Append implements journal.Log. A batch may hold at most Options.MaxBatch
// records (see BatchLimit).
func (l *Log) Append(ctx context.Context, recs []journal.Record) (uint64, uint64, error) {
	if err := journal.ValidateBatch(recs, l.opts.MaxRecordBytes); err != nil {
		return 0, 0, err
	}
	if err := l.BatchLimit().Check(recs); err != nil {
		return 0, 0, fmt.Errorf("%w (a JetStream atomic batch)", err)
	}
	if err := l.failure.Load(); err != nil {
		return 0, 0, *err
	}
	req := requests.Get().(*request)
	req.recs = recs
	l.closeMu.RLock()
	if l.closed {
		l.closeMu.RUnlock()
		requests.Put(req)
		return 0, 0, journal.ErrClosed
	}
	select {
	case l.reqs <- req:
	case <-ctx.Done():
		l.closeMu.RUnlock()
		req.recs = nil
		requests.Put(req)
		return 0, 0, ctx.Err()
	}
	l.closeMu.RUnlock()
	<-req.done
	first, last, err := req.first, req.last, req.err
	req.recs, req.err = nil, nil
	requests.Put(req)
	return first, last, err
}

func (l *Log) run() {
	defer close(l.done)
	for {
		var r *request
		if l.held != nil {
			r, l.held = l.held, nil
		} else {
			select {
			case r = <-l.reqs:
			case <-l.quit:
				// Close and Fence hold closeMu, so nothing more is enqueued:
				// flush what is.
				for {
					if l.held == nil {
						select {
						case l.held = <-l.reqs:
						default:
							return
						}
					}
					r, l.held = l.held, nil
					l.commit(l.gather(r))
				}
			}
		}
		l.commit(l.gather(r))
	}
}

// gather takes r and whatever else is queued, up to MaxBatch records; a
// request that would overflow the round waits for the next.
func (l *Log) gather(r *request) []*request {
	round := append(l.round[:0], r)
	n := len(r.recs)
	for n < l.opts.MaxBatch {
		select {
		case r := <-l.reqs:
			if n+len(r.recs) > l.opts.MaxBatch {
				l.held = r
				l.round = round
				return round
			}
			round = append(round, r)
			n += len(r.recs)
		default:
			l.round = round
			return round
		}
	}
	l.round = round
	return round
}

func (l *Log) finish(r *request, first, last uint64, err error) {
	r.first, r.last, r.err = first, last, err
	r.done <- struct{}{}
}

// commit appends one round of requests as one message (a round of one
// record) or one atomic batch, and tells each request its indexes.
func (l *Log) commit(round []*request) {
	if err := l.failure.Load(); err != nil {
		for _, r := range round {
			l.finish(r, 0, 0, *err)
		}
		return
	}
	if err := l.gate(); err != nil {
		for _, r := range round {
			l.finish(r, 0, 0, err)
		}
		return
	}
	first := l.next
	msgs := l.msgs[:0]
	index := first
	for _, r := range round {
		for i := range r.recs {
			msgs = append(msgs, l.message(index, journal.BatchFlags(i, len(r.recs)), &r.recs[i]))
			index++
		}
	}
	l.msgs = msgs
	err := l.publish(msgs, first)
	if err != nil {
		l.fail(err)
		err = *l.failure.Load()
	}
	index = first
	for _, r := range round {
		n := uint64(len(r.recs))
		if err != nil {
			l.finish(r, 0, 0, err)
		} else {
			l.finish(r, index, index+n-1, nil)
		}
		index += n
	}
	clear(msgs)
}

func (l *Log) msgID(index uint64) string { return l.epoch + "-" + strconv.FormatUint(index, 10) }

// message builds the message for rec at index.
func (l *Log) message(index uint64, flags uint8, rec *journal.Record) *nats.Msg {
	m := nats.NewMsg(l.opts.Subject)
	m.Data = journal.AppendFrame(nil, index, flags, rec)
	m.Header.Set(njs.MsgIDHeader, l.msgID(index))
	return m
}

// publish appends msgs, built for indexes first onward, expecting the
// stream to end at first-1: as one message if there is one, else as one
// atomic batch. It retries while the outcome is unknown (a lost reply, a
// leader election) or the batch reached the stream incomplete, for up to
// RetryFor; each retry carries the same message ids, so the stream stores
// each message once. On success the records are confirmed and the writer's
// tail moves past them.
func (l *Log) publish(msgs []*nats.Msg, first uint64) error {
	last := first + uint64(len(msgs)) - 1
	msgs[0].Header.Set(njs.ExpectedLastSeqHeader, strconv.FormatUint(first-1, 10))
	if len(msgs) > 1 {
		for i, m := range msgs {
			m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		}
		msgs[len(msgs)-1].Header.Set(hdrBatchCommit, "1")
	}
	deadline := time.Now().Add(l.opts.RetryFor)
	var err error
	for attempt := 0; ; attempt++ {
		if len(msgs) == 1 {
			err = l.publishOne(msgs[0], first)
		} else {
			err = l.publishBatch(msgs, fmt.Sprintf("%s-%d-%d", l.epoch, first, attempt), last)
		}
		if err == nil {
			break
		}
		if fenced(err) {
			return l.fencedError(first, last, err)
		}
		if isCode(err, codeBatchTooLarge) {
			return fmt.Errorf("%w: stream %s refused records %d-%d: %v: the servers take fewer messages in an atomic batch (jetstream { limits { batch { max_msgs } } }) than this journal's MaxBatch, %d",
				journal.ErrFailed, l.opts.Stream, first, last, err, l.opts.MaxBatch)
		}
		if refused(err) && !isCode(err, codeBatchDuplicate) && !isCode(err, codeBatchIncomplete) {
			return fmt.Errorf("%w: stream %s refused records %d-%d: %v", journal.ErrFailed, l.opts.Stream, first, last, err)
		}
		// The outcome is unknown (or the batch was incomplete, so it is
		// not stored): see whether the stream has the records.
		landed, lerr := l.landed(last)
		if lerr != nil {
			return lerr
		}
		if landed {
			err = nil
			break
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w: append of records %d-%d to stream %s: outcome unknown after retrying for %v: %v",
				journal.ErrFailed, first, last, l.opts.Stream, l.opts.RetryFor, err)
		}
		if attempt == 0 {
			l.opts.Logger.Warn("jetstream journal: append outcome unknown; re-publishing", "stream", l.opts.Stream,
				"first", first, "last", last, "cause", err)
		}
		time.Sleep(min(50*time.Millisecond<<min(attempt, 5), time.Until(deadline)))
	}
	for i, m := range msgs {
		l.confirm(first+uint64(i), int64(len(m.Data)))
	}
	l.next = last + 1
	return nil
}

// publishOne sends one message and waits for its ack. A duplicate ack (a
// retry of a message the stream has) is success if it is at index.
func (l *Log) publishOne(m *nats.Msg, index uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
	defer cancel()
	ack, err := l.js.PublishMsg(ctx, copyMsg(m))
	if err != nil {
		return err
	}
	if ack.Sequence != index {
		return &fenceError{fmt.Errorf("stream stored record %d at sequence %d (duplicate %t)", index, ack.Sequence, ack.Duplicate)}
	}
	return nil
}

// copyMsg gives the client its own message (it sets the reply subject on
// what it is handed), so that a retry sends the original.
func copyMsg(m *nats.Msg) *nats.Msg {
	c := nats.NewMsg(m.Subject)
	c.Data = m.Data
	for k, v := range m.Header {
		c.Header[k] = v
	}
	return c
}

// Headers of JetStream's atomic batch publish (nats.go has no helper).
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
)

// batchAck is the reply to an atomic batch's commit.
type batchAck struct {
	Error    *njs.APIError `json:"error,omitempty"`
	Stream   string        `json:"stream"`
	Sequence uint64        `json:"seq"`
	Count    int           `json:"count"`
}

// publishBatch sends msgs as one atomic batch: the messages before the
// last are published without a reply, the last commits and is answered.
func (l *Log) publishBatch(msgs []*nats.Msg, batchID string, last uint64) error {
	for i, m := range msgs {
		c := copyMsg(m)
		c.Header.Set(hdrBatchID, batchID)
		if i < len(msgs)-1 {
			if l.lose != nil && l.lose(batchID, i+1) {
				continue
			}
			if err := l.nc.PublishMsg(c); err != nil {
				return err
			}
			continue
		}
		resp, err := l.nc.RequestMsg(c, l.opts.Timeout)
		if err != nil {
			return err
		}
		var ack batchAck
		if err := json.Unmarshal(resp.Data, &ack); err != nil {
			return fmt.Errorf("bad reply to a batch commit: %q", resp.Data)
		}
		if ack.Error != nil {
			return ack.Error
		}
		if ack.Sequence != last || ack.Count != len(msgs) {
			return &fenceError{fmt.Errorf("batch of %d ending at %d stored as %d ending at %d", len(msgs), last, ack.Count, ack.Sequence)}
		}
	}
	return nil
}

// landed reports whether the record at last is this writer's: whether
// records whose reply was lost were stored.
func (l *Log) landed(last uint64) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
	defer cancel()
	m, err := l.st.GetMsg(ctx, last)
	switch {
	case errors.Is(err, njs.ErrMsgNotFound):
		return false, nil
	case err != nil:
		return false, nil // no answer either; retry
	case m.Header.Get(njs.MsgIDHeader) == l.msgID(last):
		return true, nil
	default:
		return false, l.fencedError(last, last, fmt.Errorf("record %d is %q, not this writer's", last, m.Header.Get(njs.MsgIDHeader)))
	}
}

// fenceError is an outcome that only another writer explains.
type fenceError struct{ error }

// fenced reports whether err says another writer has appended.
func fenced(err error) bool {
	var fe *fenceError
	if errors.As(err, &fe) {
		return true
	}
	return isCode(err, njs.JSErrCodeStreamWrongLastSequence) || isCode(err, njs.JSErrCodeStreamWrongLastSequenceConstant)
}

// refused reports whether err is the server's answer that it did not store
// a message, as opposed to no answer (a timeout, no responders, a lost
// connection), after which the outcome is unknown. Errors of the 503 class
// (JetStream not available yet) are no answer.
func refused(err error) bool {
	var apiErr *njs.APIError
	return errors.As(err, &apiErr) && apiErr.Code != 503
}

func isCode(err error, code njs.ErrorCode) bool {
	var apiErr *njs.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == code
}

func (l *Log) fencedError(first, last uint64, cause error) error {
	l.opts.Logger.Error("jetstream journal: fenced; another writer owns the stream", "stream", l.opts.Stream,
		"first", first, "last", last, "cause", cause)
	return fmt.Errorf("%w: append of records %d-%d to stream %s refused: %v", journal.ErrFenced, first, last, l.opts.Stream, cause)
}

func (l *Log) fail(err error) {
	l.failure.CompareAndSwap(nil, &err)
}

// gate asks Options.Gate whether this log may still write; a refusal is
// sticky, as a fence is.
func (l *Log) gate() error {
	if l.opts.Gate == nil {
		return nil
	}
	if err := l.opts.Gate(); err != nil {
		err = fmt.Errorf("%w: stream %s: %w", journal.ErrFenced, l.opts.Stream, err)
		if l.failure.CompareAndSwap(nil, &err) {
			l.opts.Logger.Error("jetstream journal: fenced by its gate; refusing appends", "stream", l.opts.Stream, "err", err)
		}
		return *l.failure.Load()
	}
	return nil
}

// confirm records that the record at index, of size framed bytes, is in
// the stream.
func (l *Log) confirm(index uint64, size int64) {
	l.segMu.Lock()
	l.segBytes[l.segOf(index)] += size
	l.segMu.Unlock()
	l.last.Store(index)
}

// Fence makes this handle the stream's only writer. It lets queued appends
// finish, then publishes a claim record (journal.TypeClaim, which Replay
// skips) with no expected sequence, so that it lands even while an earlier
// writer is still appending: that writer's next round expects a tail the
// claim has moved, and fails with journal.ErrFenced, as does everything it
// appends after. (Not knowing where it will land, the claim's frame has
// index 0; it is the one record whose frame index is not its sequence.)
// Fence clears this handle's own fenced state: taking the log back is what
// it is for, so only the owner's leader election may call it. It returns
// the claim's index; the caller replays through it before serving.
func (l *Log) Fence(ctx context.Context) (uint64, error) {
	l.closeMu.Lock()
	defer l.closeMu.Unlock()
	if l.closed {
		return 0, journal.ErrClosed
	}
	close(l.quit)
	<-l.done // the writer has flushed what was queued and stopped
	defer func() {
		l.quit = make(chan struct{})
		l.done = make(chan struct{})
		go l.run()
	}()
	claim := journal.Record{Type: journal.TypeClaim, Data: fmt.Appendf(nil, "writer=%s epoch=%s at=%s",
		l.opts.Writer, l.epoch, time.Now().UTC().Format(time.RFC3339Nano))}
	m := nats.NewMsg(l.opts.Subject)
	m.Data = journal.AppendFrame(nil, 0, journal.FlagBatchStart|journal.FlagBatchEnd, &claim)
	m.Header.Set(njs.MsgIDHeader, l.epoch+"-claim-"+strconv.FormatUint(l.claims.Add(1), 10))
	deadline := time.Now().Add(l.opts.RetryFor)
	var index uint64
	for attempt := 0; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
		ack, err := l.js.PublishMsg(rctx, copyMsg(m)) // a retry is answered as a duplicate, with the first's sequence
		cancel()
		if err == nil {
			index = ack.Sequence
			break
		}
		if refused(err) || ctx.Err() != nil || !time.Now().Before(deadline) {
			return 0, fmt.Errorf("jetstream: claim stream %s: %w", l.opts.Stream, err)
		}
		time.Sleep(min(50*time.Millisecond<<min(attempt, 5), time.Until(deadline)))
	}
	if err := l.reload(ctx); err != nil {
		return 0, err
	}
	if last := l.last.Load(); last != index {
		err := l.fencedError(index, index, fmt.Errorf("another writer appended %d-%d after this claim", index+1, last))
		l.fail(err)
		return 0, err
	}
	l.failure.Store(nil)
	l.opts.Logger.Info("jetstream journal: claimed", "stream", l.opts.Stream, "index", index, "writer", l.opts.Writer)
	return index, nil
}

// reload re-reads the tail after another writer appended. The writer
// goroutine is stopped.
func (l *Log) reload(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 4*l.opts.Timeout)
	defer cancel()
	if err := l.loadTail(ctx); err != nil {
		return err
	}
	l.segMu.Lock()
	clear(l.segBytes)
	l.counted = 0
	l.segMu.Unlock()
	return nil
}

// Read implements journal.Log.
func (l *Log) Read(index uint64) (journal.Record, error) {
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if l.closed {
		return journal.Record{}, journal.ErrClosed
	}
	return l.read(index)
}

// read is Read under closeMu.
func (l *Log) read(index uint64) (journal.Record, error) {
	if index < l.first.Load() || index > l.last.Load() || index == 0 {
		return journal.Record{}, fmt.Errorf("%w: index %d outside [%d, %d]", journal.ErrNotFound, index, l.first.Load(), l.last.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
	defer cancel()
	m, err := l.st.GetMsg(ctx, index)
	if errors.Is(err, njs.ErrMsgNotFound) {
		return journal.Record{}, fmt.Errorf("%w: index %d is not in stream %s", journal.ErrNotFound, index, l.opts.Stream)
	}
	if err != nil {
		return journal.Record{}, fmt.Errorf("jetstream: read %d from %s: %w", index, l.opts.Stream, err)
	}
	return l.decode(index, m.Data)
}

// readBatchSpan bounds the stream sequences one batch request covers (it
// reads every message between the first index it wants and the last), and
// readBatchBytes the bytes it asks for.
const (
	readBatchSpan  = 1024
	readBatchBytes = 8 << 20
)

// ReadBatch implements journal.BatchReader with JetStream's batched direct
// get (ADR-31; nats-server 2.11 and later): one request for each run of
// indexes within readBatchSpan of its first, the server streaming back the
// messages of that range. An index the reply lacks (the range was cut at
// readBatchBytes, a replica that serves direct gets is behind, or an older
// server) is read on its own, as Read does.
func (l *Log) ReadBatch(indexes []uint64, fn func(uint64, journal.Record, error) error) error {
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if l.closed {
		return journal.ErrClosed
	}
	for i := 0; i < len(indexes); {
		j := i + 1
		for j < len(indexes) && indexes[j] > indexes[j-1] && indexes[j]-indexes[i] < readBatchSpan {
			j++
		}
		got := l.getBatch(indexes[i], indexes[j-1])
		for _, idx := range indexes[i:j] {
			var (
				r   journal.Record
				err error
			)
			if data, ok := got[idx]; ok {
				r, err = l.decode(idx, data)
			} else {
				r, err = l.read(idx)
			}
			if err := fn(idx, r, err); err != nil {
				return err
			}
		}
		i = j
	}
	return nil
}

// getBatch fetches the messages with sequences from through to in one
// batched direct get; what it could not fetch is missing from the map.
func (l *Log) getBatch(from, to uint64) map[uint64][]byte {
	got := make(map[uint64][]byte, to-from+1)
	if from < l.first.Load() || to > l.last.Load() || from == 0 || to-from < 1 {
		return got // one or none: Read's checks and errors apply
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
	defer cancel()
	msgs, err := jetstreamext.GetBatch(ctx, l.js, l.opts.Stream, int(to-from+1),
		jetstreamext.GetBatchSeq(from), jetstreamext.GetBatchMaxBytes(readBatchBytes))
	if err != nil {
		return got
	}
	for m, err := range msgs {
		if err != nil || m.Sequence > to {
			break
		}
		got[m.Sequence] = m.Data
	}
	return got
}

// decode checks a message's frame against the sequence it was stored at.
func (l *Log) decode(seq uint64, data []byte) (journal.Record, error) {
	f, err := journal.DecodeFrame(data, l.opts.MaxRecordBytes)
	if err == nil && f.Size != len(data) {
		err = fmt.Errorf("%w: %d bytes after the frame", journal.ErrCorrupt, len(data)-f.Size)
	}
	if err == nil && f.Index != seq && (f.Index != 0 || f.Type != journal.TypeClaim) {
		err = fmt.Errorf("%w: frame says index %d", journal.ErrCorrupt, f.Index)
	}
	if err != nil {
		return journal.Record{}, &journal.CorruptionError{Path: "stream " + l.opts.Stream, Index: seq,
			Reason: fmt.Sprintf("message at sequence %d: %v", seq, err)}
	}
	f.Index = seq
	return f.Record, nil
}

// Scan implements journal.Scanner with an ordered consumer.
func (l *Log) Scan(from uint64, fn func(journal.Record) error) error {
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if l.closed {
		return journal.ErrClosed
	}
	first, last := l.first.Load(), l.last.Load()
	if from < first || from == 0 {
		return fmt.Errorf("%w: scan from %d, but the log starts at %d", journal.ErrNotFound, from, first)
	}
	if from > last {
		return nil
	}
	if last-from < smallScan {
		// A few records (a warm standby's catch-up at a takeover): read
		// them one by one, with no consumer to place.
		for i := from; i <= last; i++ {
			r, err := l.read(i)
			if err != nil {
				return err
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
	// A consumer that delivers nothing for a while is replaced by a new one
	// starting where it stopped: after losing a server, a cluster can place
	// the (R1) ordered consumer on the missing peer, where it never runs.
	deadline := time.Now().Add(l.opts.RetryFor)
	next := from
	for {
		err := l.scanFrom(&next, last, fn)
		if err == nil || !errors.Is(err, errStalled) || !time.Now().Before(deadline) {
			return err
		}
	}
}

var errStalled = errors.New("consumer delivered nothing")

// smallScan is the most records Scan reads one by one (direct gets)
// rather than with a consumer.
const smallScan = 64

// firstWait bounds the wait for a new consumer's first message: a consumer
// the cluster placed on a missing peer delivers nothing, and is found so
// within a second rather than a whole Timeout.
func (l *Log) firstWait() time.Duration { return min(l.opts.Timeout, time.Second) }

// scanFrom runs one ordered consumer from *next through last, advancing
// *next past each record fn accepts.
func (l *Log) scanFrom(next *uint64, last uint64, fn func(journal.Record) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
	oc, err := l.st.OrderedConsumer(ctx, njs.OrderedConsumerConfig{
		DeliverPolicy: njs.DeliverByStartSequencePolicy, OptStartSeq: *next})
	cancel()
	if err != nil {
		return fmt.Errorf("jetstream: scan %s from %d: %w: %w", l.opts.Stream, *next, errStalled, err)
	}
	it, err := oc.Messages(njs.PullMaxMessages(1024))
	if err != nil {
		return fmt.Errorf("jetstream: scan %s from %d: %w: %w", l.opts.Stream, *next, errStalled, err)
	}
	defer it.Stop()
	wait := l.firstWait()
	for ; *next <= last; *next++ {
		want := *next
		m, err := it.Next(njs.NextMaxWait(wait))
		if errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("jetstream: scan %s at %d: %w in %v", l.opts.Stream, want, errStalled, wait)
		}
		wait = l.opts.Timeout
		if err != nil {
			return fmt.Errorf("jetstream: scan %s at %d: %w", l.opts.Stream, want, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("jetstream: scan %s at %d: %w", l.opts.Stream, want, err)
		}
		if seq := md.Sequence.Stream; seq != want {
			return fmt.Errorf("%w: scan of %s wanted %d and got %d (truncated while scanning?)", journal.ErrNotFound, l.opts.Stream, want, seq)
		}
		r, err := l.decode(want, m.Data())
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// FirstIndex implements journal.Log.
func (l *Log) FirstIndex() uint64 { return l.first.Load() }

// LastIndex implements journal.Log.
func (l *Log) LastIndex() uint64 { return l.last.Load() }

// TruncateFront implements journal.Log by purging the stream below index.
func (l *Log) TruncateFront(index uint64) error {
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if l.closed {
		return journal.ErrClosed
	}
	l.truncMu.Lock()
	defer l.truncMu.Unlock()
	first, last := l.first.Load(), l.last.Load()
	if index < first || index > last+1 {
		return fmt.Errorf("%w: truncate front to %d outside [%d, %d]", journal.ErrNotFound, index, first, last+1)
	}
	if index == first {
		return nil
	}
	if err := l.gate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
	defer cancel()
	if err := l.st.Purge(ctx, njs.WithPurgeSequence(index)); err != nil {
		return fmt.Errorf("jetstream: purge %s below %d: %w", l.opts.Stream, index, err)
	}
	l.first.Store(index)
	l.segMu.Lock()
	for s := range l.segBytes {
		if (s+1)*l.opts.SegmentRecords < index {
			delete(l.segBytes, s)
		}
	}
	l.segMu.Unlock()
	return nil
}

// segOf is the segment number of index: segment s holds indexes
// s*SegmentRecords+1 through (s+1)*SegmentRecords.
func (l *Log) segOf(index uint64) uint64 { return (index - 1) / l.opts.SegmentRecords }

// Segments implements journal.Segmenter. Segments are fixed runs of
// SegmentRecords indexes. Their sizes are counted as this handle appends;
// what the stream held before (at Open or Fence) is counted once, by a scan,
// on the first call.
func (l *Log) Segments() []journal.Segment {
	l.countOld()
	l.segMu.Lock()
	defer l.segMu.Unlock()
	first, last := l.first.Load(), l.last.Load()
	if last < first {
		return []journal.Segment{{First: first, Last: last, Name: l.segName(l.segOf(first))}}
	}
	var out []journal.Segment
	for s := l.segOf(first); s <= l.segOf(last); s++ {
		lo, hi := s*l.opts.SegmentRecords+1, (s+1)*l.opts.SegmentRecords
		out = append(out, journal.Segment{First: max(lo, first), Last: min(hi, last), Bytes: l.segBytes[s], Name: l.segName(s)})
	}
	return out
}

// countOld adds to segBytes the sizes of the records that were in the
// stream before this handle looked (at Open or Fence). It scans without
// holding segMu, which the writer takes to confirm appends.
func (l *Log) countOld() {
	l.countMu.Lock()
	defer l.countMu.Unlock()
	l.segMu.Lock()
	from, base := max(l.counted+1, l.first.Load()), l.base
	l.segMu.Unlock()
	if from > base {
		return
	}
	sizes := make(map[uint64]int64)
	upto := from - 1
	stop := errors.New("stop")
	err := l.Scan(from, func(r journal.Record) error {
		if r.Index > base {
			return stop
		}
		sizes[l.segOf(r.Index)] += int64(journal.FrameSize(&r))
		upto = r.Index
		return nil
	})
	if err != nil && err != stop {
		l.opts.Logger.Warn("jetstream journal: counting segment sizes", "stream", l.opts.Stream, "err", err)
	}
	l.segMu.Lock()
	defer l.segMu.Unlock()
	if l.base != base {
		return // Fence re-read the tail meanwhile; count again next time
	}
	for s, n := range sizes {
		l.segBytes[s] += n
	}
	l.counted = upto
}

func (l *Log) segName(s uint64) string {
	return fmt.Sprintf("%s[%d-%d]", l.opts.Stream, s*l.opts.SegmentRecords+1, (s+1)*l.opts.SegmentRecords)
}

// Snapshots are two objects in the <stream>_SNAP bucket, each with its
// index in its metadata. A save replaces the older of the two (or the one
// at the same index), so the snapshot before the newest is there to fall
// back on if the newest is damaged: the log is a journal.SnapshotKeeper.
// The first name is the one object a broker before this used.
var snapshotNames = [2]string{"snapshot", "snapshot-2"}

// snapSlot is one snapshot object: its index, or why it has none.
type snapSlot struct {
	name  string
	where string // "object <bucket>/<name>", for errors
	index uint64
	err   error // a *journal.CorruptionError: its index metadata is unreadable
}

// objects opens (creating it on first use) the object store bucket that
// holds the snapshots: <stream>_SNAP, with the stream's replicas and storage.
func (l *Log) objects(ctx context.Context) (njs.ObjectStore, error) {
	l.obsMu.Lock()
	defer l.obsMu.Unlock()
	if l.obs != nil {
		return l.obs, nil
	}
	bucket := l.opts.Stream + "_SNAP"
	obs, err := l.js.ObjectStore(ctx, bucket)
	if errors.Is(err, njs.ErrBucketNotFound) {
		obs, err = l.js.CreateObjectStore(ctx, njs.ObjectStoreConfig{Bucket: bucket,
			Storage: l.opts.Storage, Replicas: l.opts.Replicas, Description: "Cairn journal snapshot of stream " + l.opts.Stream})
	}
	if err != nil {
		return nil, fmt.Errorf("jetstream: snapshot bucket %s: %w", bucket, err)
	}
	l.obs = obs
	return obs, nil
}

// snapshotTimeout allows for the object store's chunked upload.
func (l *Log) snapshotTimeout(size int) time.Duration {
	return 4*l.opts.Timeout + time.Duration(size/(1<<20))*time.Second
}

// SaveSnapshot implements journal.Snapshotter. It replaces the older of
// the two snapshot objects, or one at the same index; replacing an object
// is atomic (its meta message is written after its chunks), and the object
// store checks its SHA-256 digest on load.
func (l *Log) SaveSnapshot(index uint64, data []byte) error {
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if l.closed {
		return journal.ErrClosed
	}
	if first, last := l.first.Load(), l.last.Load(); index+1 < first || index > last {
		return fmt.Errorf("%w: snapshot at %d outside the log [%d, %d]", journal.ErrNotFound, index, first, last)
	}
	if err := l.gate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.snapshotTimeout(len(data)))
	defer cancel()
	obs, err := l.objects(ctx)
	if err != nil {
		return err
	}
	slots, err := snapshotSlots(ctx, obs)
	if err != nil {
		return fmt.Errorf("jetstream: save snapshot at %d: %w", index, err)
	}
	var name string
	switch {
	case len(slots) > 0 && slots[0].err == nil && slots[0].index == index:
		name = slots[0].name // saved again at the same index
	case len(slots) == 0:
		name = snapshotNames[0]
	case len(slots) == 1:
		name = otherSnapshot(slots[0].name)
	default:
		name = slots[len(slots)-1].name // the older, or one that is damaged
	}
	meta := njs.ObjectMeta{Name: name, Metadata: map[string]string{"index": strconv.FormatUint(index, 10)}}
	if _, err := obs.Put(ctx, meta, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("jetstream: save snapshot at %d: %w", index, err)
	}
	return nil
}

func otherSnapshot(name string) string {
	if name == snapshotNames[0] {
		return snapshotNames[1]
	}
	return snapshotNames[0]
}

// snapshotSlots lists the snapshot objects there are, newest first, and
// those whose index is unreadable last.
func snapshotSlots(ctx context.Context, obs njs.ObjectStore) ([]snapSlot, error) {
	var slots []snapSlot
	for _, name := range snapshotNames {
		info, err := obs.GetInfo(ctx, name)
		if errors.Is(err, njs.ErrObjectNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", name, err)
		}
		sl := snapSlot{name: name, where: "object " + info.Bucket + "/" + name}
		sl.index, err = strconv.ParseUint(info.Metadata["index"], 10, 64)
		if err != nil {
			sl.err = &journal.CorruptionError{Path: sl.where, Reason: fmt.Sprintf("snapshot index %q: %v", info.Metadata["index"], err)}
		}
		slots = append(slots, sl)
	}
	slices.SortStableFunc(slots, func(a, b snapSlot) int {
		if (a.err == nil) != (b.err == nil) {
			if a.err == nil {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.index, a.index)
	})
	return slots, nil
}

// LoadSnapshot implements journal.Snapshotter: the newest snapshot that
// reads back whole, logging a newer one that does not. If snapshots exist
// but none is whole, it returns a *journal.CorruptionError rather than
// pretend there is none.
func (l *Log) LoadSnapshot() (uint64, []byte, error) {
	return l.loadSnapshot(math.MaxUint64)
}

// LoadSnapshotBefore implements journal.SnapshotKeeper: LoadSnapshot among
// the snapshots older than index.
func (l *Log) LoadSnapshotBefore(index uint64) (uint64, []byte, error) {
	return l.loadSnapshot(index)
}

// OldestSnapshot implements journal.SnapshotKeeper. An object whose index
// is unreadable does not count: no replay can start from it.
func (l *Log) OldestSnapshot() (uint64, error) {
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if l.closed {
		return 0, journal.ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
	defer cancel()
	obs, err := l.objects(ctx)
	if err != nil {
		return 0, err
	}
	slots, err := settledSlots(ctx, obs)
	if err != nil {
		return 0, fmt.Errorf("jetstream: %w", err)
	}
	oldest, found := uint64(math.MaxUint64), false
	for _, sl := range slots {
		if sl.err == nil {
			oldest, found = min(oldest, sl.index), true
		}
	}
	if !found {
		return 0, journal.ErrNoSnapshot
	}
	return oldest, nil
}

func (l *Log) loadSnapshot(below uint64) (uint64, []byte, error) {
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if l.closed {
		return 0, nil, journal.ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.snapshotTimeout(64<<20))
	defer cancel()
	obs, err := l.objects(ctx)
	if err != nil {
		return 0, nil, err
	}
	slots, err := settledSlots(ctx, obs)
	if err != nil {
		return 0, nil, fmt.Errorf("jetstream: load: %w", err)
	}
	var firstErr error
	damaged := func(sl snapSlot, err error) {
		l.opts.Logger.Warn("journal: skipping damaged snapshot", "object", sl.name, "err", err)
		if firstErr == nil {
			firstErr = err
		}
	}
	if below == math.MaxUint64 { // else those not known to be older do not count
		for _, sl := range slots {
			if sl.err != nil {
				damaged(sl, sl.err)
			}
		}
	}
	for _, sl := range slots {
		if sl.err != nil || sl.index >= below {
			continue
		}
		data, err := readSnapshot(ctx, obs, sl)
		if err == nil {
			return sl.index, data, nil
		}
		if !errors.As(err, new(*journal.CorruptionError)) {
			return 0, nil, err
		}
		damaged(sl, err)
	}
	if firstErr != nil {
		return 0, nil, firstErr
	}
	return 0, nil, journal.ErrNoSnapshot
}

// settledSlots is snapshotSlots, asked again while the bucket's stream has
// no responder yet (a replicated bucket just made, still electing its
// leader), until ctx ends.
func settledSlots(ctx context.Context, obs njs.ObjectStore) ([]snapSlot, error) {
	for {
		slots, err := snapshotSlots(ctx, obs)
		if !errors.Is(err, nats.ErrNoResponders) {
			return slots, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readSnapshot reads a snapshot object whole, checking its digest.
func readSnapshot(ctx context.Context, obs njs.ObjectStore, sl snapSlot) ([]byte, error) {
	res, err := obs.Get(ctx, sl.name)
	if err != nil {
		return nil, fmt.Errorf("jetstream: load snapshot %s: %w", sl.name, err)
	}
	defer res.Close()
	data, err := io.ReadAll(res)
	if errors.Is(err, njs.ErrDigestMismatch) {
		return nil, &journal.CorruptionError{Path: sl.where, Index: sl.index, Reason: err.Error()}
	}
	if err != nil {
		return nil, fmt.Errorf("jetstream: load snapshot %s: %w", sl.name, err)
	}
	return data, nil
}

// Close implements journal.Log: queued appends are published and settled,
// then the writer stops. The NATS connection is left open.
func (l *Log) Close() error {
	l.closeMu.Lock()
	if l.closed {
		l.closeMu.Unlock()
		return journal.ErrClosed
	}
	l.closed = true
	close(l.quit)
	l.closeMu.Unlock()
	<-l.done
	if err := l.failure.Load(); err != nil && !errors.Is(*err, journal.ErrFenced) {
		return *err
	}
	return nil
}
