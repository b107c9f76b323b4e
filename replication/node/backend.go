// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/jetstream"
	"github.com/cairnmq/cairn/journal/wal"
	"github.com/cairnmq/cairn/replication"
)

// backend is the journal a node runs on and the locker that elects its
// writer: the wal in Data with the file lease, or a JetStream stream with
// the key-value lease.
type backend struct {
	name      string
	opts      *Options
	locker    replication.Locker
	maxRecord int
	logger    *slog.Logger
	nc        *nats.Conn // jetstream only
}

func newBackend(o *Options, id string, logger *slog.Logger) (*backend, error) {
	// A record is one message: room for the largest body and 1 MiB of headers.
	be := &backend{opts: o, logger: logger, maxRecord: maxRecordFor(o.STOMP.Limits.MaxBodyBytes)}
	switch o.Journal {
	case JournalWAL:
		be.name = o.Data
		be.locker = replication.NewFileLocker(o.Data, replication.FileOptions{ID: id, TTL: o.leaseTTL(), Logger: logger})
	case JournalJetStream:
		be.name = o.NATS + " stream " + o.Stream
		nc, err := nats.Connect(o.NATS, nats.Name("cairn "+id), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
		if err != nil {
			return nil, fmt.Errorf("NATS %s: %w", o.NATS, err)
		}
		be.nc = nc
		locker, err := replication.NewKVLocker(nc, replication.KVOptions{Key: o.Stream, TTL: o.leaseTTL(),
			Replicas: o.Replicas, ID: id, Logger: logger})
		if err != nil {
			nc.Close()
			return nil, err
		}
		be.locker = locker
	}
	return be, nil
}

// open opens the journal for the lease's holder and makes it the only
// writer. It returns the log and the largest SEND body it can hold.
func (be *backend) open(lease replication.Lease) (journal.Log, int, error) {
	o := be.opts
	maxBody := o.STOMP.Limits.MaxBodyBytes
	switch o.Journal {
	case JournalJetStream:
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		l, err := jetstream.Open(ctx, be.nc, jetstream.Options{Stream: o.Stream, Replicas: o.Replicas, MaxBatch: o.MaxBatch,
			Writer: fmt.Sprintf("%s epoch %d", be.name, lease.Epoch()), Logger: be.logger, Gate: lease.Valid})
		if err != nil {
			return nil, 0, err
		}
		// The server refuses every later append of a deposed master.
		if _, err := l.Fence(ctx); err != nil {
			l.Close()
			return nil, 0, err
		}
		if room := l.MaxRecordBytes() - 64<<10; maxBody > room {
			be.logger.Info("the stream's records limit SEND bodies", "max_body", room)
			maxBody = room
		}
		return l, maxBody, nil
	default:
		how := lease.Took().How
		if how != "free" && how != "released" {
			// The previous master may be alive (frozen, cut off): give it a
			// tail segment nobody reads any more. On a full disk there is no
			// room for the copy; the flock this broker holds says the
			// previous master's process is gone, so the tail is used as is.
			if err := wal.DetachTail(o.Data); err != nil {
				if how != "holder gone" || !errors.Is(err, syscall.ENOSPC) {
					return nil, 0, err
				}
				be.logger.Warn("journal: no room to detach the tail segment; the previous master's process is gone (its flock was free), so the tail is used as it is",
					"err", err)
			}
		}
		l, err := wal.Open(o.Data, wal.Options{Sync: o.Sync, SyncInterval: o.SyncInterval, Logger: be.logger,
			MaxRecordBytes: be.maxRecord, SegmentBytes: segmentBytes(be.maxRecord), Locked: true, Gate: lease.Valid,
			PreviousGone: how != "expired"})
		if err != nil {
			return nil, 0, err
		}
		if cut := l.Recovery().Cut; cut != nil {
			be.logger.Warn("journal: cut a torn tail", "detail", fmt.Sprintf("%+v", *cut))
		}
		return l, maxBody, nil
	}
}

// follower returns a reader of the journal for a warm standby.
func (be *backend) follower() replication.Follower {
	if be.opts.Journal == JournalJetStream {
		return replication.NewStreamFollower(be.nc, jetstream.Options{Stream: be.opts.Stream,
			Replicas: be.opts.Replicas, Writer: be.name + " (standby, reading)", Logger: be.logger}, be.logger)
	}
	return replication.NewWALFollower(be.opts.Data, be.maxRecord)
}

func (be *backend) close() {
	if be.nc != nil {
		be.nc.Close()
	}
}

// maxRecordFor is the largest journal record a node takes: a SEND body of
// maxBody and room for its headers.
func maxRecordFor(maxBody int) int { return maxBody + 1<<20 }

// segmentBytes is the wal segment size for records of up to maxRecord.
func segmentBytes(maxRecord int) int { return max(16<<20, 2*maxRecord+1<<20) }
