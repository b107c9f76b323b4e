// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/gateways/stomp"
	"github.com/cairnmq/cairn/journal"
)

// Journal backends a node runs on.
const (
	// JournalWAL is the embedded journal in Options.Data, elected with a
	// lease file and a flock there (shared-storage master/standby).
	JournalWAL = "wal"
	// JournalJetStream is a JetStream stream on Options.NATS, elected with
	// a key-value lease in the same NATS system.
	JournalJetStream = "jetstream"
)

// Options configure a broker node. NewOptions returns the defaults `cairn
// serve` starts from; a zero Options is not usable (it has no Listen).
type Options struct {
	// Listen is the STOMP address, host:port (default 127.0.0.1:61613).
	// Listener, if set, is used instead: it is served from the moment
	// this node is master and closed when it stops.
	Listen   string
	Listener net.Listener
	// TLSListen, with TLS, is where STOMP over TLS is served too, from the
	// moment this node is master (a standby listens on neither).
	TLSListen string
	TLS       *tls.Config
	// WSListen is where STOMP over WebSocket is served too, from the
	// moment this node is master; over TLS (wss) with WSTLS and TLS.
	WSListen string
	WSTLS    bool

	// Data is the journal directory (wal) or, on JetStream, where this
	// node writes its status report for `cairn status`.
	Data string
	// Journal is JournalWAL or JournalJetStream.
	Journal string
	// Sync and SyncInterval are the wal's fsync policy.
	Sync         journal.SyncPolicy
	SyncInterval time.Duration

	// NATS lists the NATS servers (comma-separated URLs), Stream names the
	// journal's stream and the lease's key, Replicas the replicas of both
	// when this node creates them, and MaxBatch the records one JetStream
	// atomic batch may hold (the servers' jetstream.limits.batch.max_msgs).
	NATS     string
	Stream   string
	Replicas int
	MaxBatch int

	// LeaseTTL is how long a master may go without renewing its lease
	// before it stops writing and a standby takes over; zero means the
	// journal's default (DefaultLeaseTTL).
	LeaseTTL time.Duration
	// Wait makes a node whose journal is held wait as its standby; without
	// it Run returns an error wrapping ErrHeld at once.
	Wait bool
	// Warm makes a waiting standby follow the journal, so that a takeover
	// replays only the records written since its last poll.
	Warm bool

	// Broker configures the broker. Journal, Logger, Standby and Progress
	// are the node's to set.
	Broker core.Options
	// STOMP configures the listener. Limits.MaxBodyBytes is lowered to
	// what one journal record can carry; Logger is the node's; ReadMemory
	// zero means ReadMemoryFor(0, Broker.MemoryLimit, MaxBodyBytes).
	STOMP stomp.Options

	// HeapProfile, if set, is where a heap profile is written when Run's
	// context ends, before draining.
	HeapProfile string
	// ID names this node among those sharing the journal (default
	// replication.NewID()).
	ID string
	// Logger receives the node's events (default slog.Default()).
	Logger *slog.Logger
}

// DefaultLeaseTTL is the lease TTL a journal gets when Options.LeaseTTL
// is zero. On wal it is 5 s. On JetStream it is 15 s: the lease is an
// entry in a replicated key-value bucket, and when the node leading that
// bucket dies nats-server elects another only after a randomized 4-9 s
// election timeout (raft.go's minElectionTimeoutDefault and
// maxElectionTimeoutDefault in v2.15), during which no renewal can land;
// a shorter TTL makes every loss of that one node fence a healthy master.
func DefaultLeaseTTL(journal string) time.Duration {
	if journal == JournalJetStream {
		return 15 * time.Second
	}
	return 5 * time.Second
}

// leaseTTL is LeaseTTL, or the journal's default.
func (o *Options) leaseTTL() time.Duration {
	if o.LeaseTTL > 0 {
		return o.LeaseTTL
	}
	return DefaultLeaseTTL(o.Journal)
}

// NewOptions returns what `cairn serve` runs with when given no flags.
func NewOptions() Options {
	return Options{
		Listen:       "127.0.0.1:61613",
		Data:         "./cairn-data",
		Journal:      JournalWAL,
		Sync:         journal.SyncAlways,
		SyncInterval: 50 * time.Millisecond,
		NATS:         "nats://127.0.0.1:4222",
		Stream:       "CAIRN_JOURNAL",
		Replicas:     1,
		MaxBatch:     1000,
		Wait:         true,
		Warm:         true,
		Broker: core.Options{
			MemoryLimit:   1 << 30,
			SnapshotEvery: 100000,
			SnapshotBytes: 16 << 20,
		},
		STOMP: stomp.Options{Limits: stomp.Limits{MaxHeaders: 1000, MaxHeaderBytes: 10 << 10, MaxBodyBytes: 10 << 20}},
	}
}

// ReadMemoryFor is the bytes of partly read frames a listener allows:
// configured, or a quarter of the memory limit but at least two bodies of
// the largest size, or 256 MiB without a memory limit.
func ReadMemoryFor(configured, memoryLimit int64, maxBody int) int64 {
	switch {
	case configured > 0:
		return configured
	case memoryLimit > 0:
		return max(memoryLimit/4, 2*int64(maxBody))
	}
	return 256 << 20
}

// RuntimeOverhead is what HeapBound allows beyond the parts it counts: the
// Go runtime, the projection's maps, queues' bookkeeping, and connections
// (about 9 KiB each) in their first few thousands.
const RuntimeOverhead = 192 << 20

// HeapBound is the memory a node on o is meant to keep its heap within, for
// the Go runtime's soft memory limit (runtime/debug.SetMemoryLimit): the
// messages it holds (Broker.MemoryLimit, topics' included), the partly
// read frames (STOMP.ReadMemory), the journal's buffers (on the wal, the
// segment being written and the two it caches for reading back) and
// RuntimeOverhead. Beyond it: 24 bytes per paged message and about 9 KiB
// per connection past the first few thousand. With no memory limit, there
// is no bound (0).
func HeapBound(o Options) int64 {
	lim := o.Broker.MemoryLimit
	if lim <= 0 {
		return 0
	}
	maxBody := o.STOMP.Limits.MaxBodyBytes
	journalBuffers := int64(0)
	if o.Journal != JournalJetStream {
		journalBuffers = 3 * int64(segmentBytes(maxRecordFor(maxBody)))
	}
	return lim + ReadMemoryFor(o.STOMP.ReadMemory, lim, maxBody) + journalBuffers + RuntimeOverhead
}

// RSSBound is the resident memory a node on o stays within: HeapBound and
// an eighth more, the room the Go runtime takes past its soft limit while
// it collects under a high allocation rate (measured: bench/memory/run).
func RSSBound(o Options) int64 {
	h := HeapBound(o)
	return h + h/8
}

func (o *Options) check() error {
	var errs []error
	if o.Listener == nil && o.Listen == "" {
		errs = append(errs, errors.New("node: no Listen address"))
	}
	if o.Data == "" {
		errs = append(errs, errors.New("node: no Data directory"))
	}
	switch o.Journal {
	case JournalWAL:
	case JournalJetStream:
		if o.NATS == "" || o.Stream == "" {
			errs = append(errs, errors.New("node: the jetstream journal needs NATS and Stream"))
		}
	default:
		errs = append(errs, fmt.Errorf("node: journal %q: want %s or %s", o.Journal, JournalWAL, JournalJetStream))
	}
	if o.LeaseTTL < 0 {
		errs = append(errs, errors.New("node: LeaseTTL must not be negative"))
	}
	if o.STOMP.Limits.MaxBodyBytes <= 0 {
		errs = append(errs, errors.New("node: STOMP.Limits.MaxBodyBytes must be positive"))
	}
	return errors.Join(errs...)
}
