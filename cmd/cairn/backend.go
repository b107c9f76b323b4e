// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/urfave/cli/v2"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/jetstream"
	"github.com/cairnmq/cairn/journal/wal"
	"github.com/cairnmq/cairn/replication"
)

// backend is the journal cairn serve runs on and the locker that elects
// its writer: the wal in --data with the file lease, or a JetStream stream
// with the key-value lease.
type backend struct {
	kind, name string
	locker     replication.Locker
	maxRecord  int
	dataDir    string
	logger     *slog.Logger
	nc         *nats.Conn // jetstream only
}

func newBackend(c *cli.Context, dataDir, id string, logger *slog.Logger) (*backend, error) {
	// A record is one message: room for the largest body and 1 MiB of headers.
	be := &backend{kind: c.String("journal"), dataDir: dataDir, logger: logger, maxRecord: c.Int("max-body") + 1<<20}
	switch be.kind {
	case "wal":
		be.name = dataDir
		be.locker = replication.NewFileLocker(dataDir, replication.FileOptions{ID: id, TTL: c.Duration("lease-ttl"), Logger: logger})
	case "jetstream":
		be.name = c.String("nats") + " stream " + c.String("stream")
		nc, err := nats.Connect(c.String("nats"), nats.Name("cairn "+id), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
		if err != nil {
			return nil, fmt.Errorf("--nats %s: %w", c.String("nats"), err)
		}
		be.nc = nc
		locker, err := replication.NewKVLocker(nc, replication.KVOptions{Key: c.String("stream"), TTL: c.Duration("lease-ttl"),
			Replicas: c.Int("replicas"), ID: id, Logger: logger})
		if err != nil {
			nc.Close()
			return nil, err
		}
		be.locker = locker
	default:
		return nil, fmt.Errorf("--journal %q: want wal or jetstream", be.kind)
	}
	return be, nil
}

// open opens the journal for the lease's holder and makes it the only
// writer. It returns the log and the largest SEND body it can hold.
func (be *backend) open(c *cli.Context, lease replication.Lease) (journal.Log, int, error) {
	maxBody := c.Int("max-body")
	switch be.kind {
	case "jetstream":
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		l, err := jetstream.Open(ctx, be.nc, jetstream.Options{Stream: c.String("stream"), Replicas: c.Int("replicas"), MaxBatch: c.Int("jetstream-max-batch"),
			Writer: fmt.Sprintf("%s epoch %d", be.name, lease.Epoch()), Logger: be.logger})
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
			if err := wal.DetachTail(be.dataDir); err != nil {
				if how != "holder gone" || !errors.Is(err, syscall.ENOSPC) {
					return nil, 0, err
				}
				be.logger.Warn("journal: no room to detach the tail segment; the previous master's process is gone (its flock was free), so the tail is used as it is",
					"err", err)
			}
		}
		pol, _ := journal.ParseSyncPolicy(c.String("sync"))
		l, err := wal.Open(be.dataDir, wal.Options{Sync: pol, SyncInterval: c.Duration("sync-interval"), Logger: be.logger,
			MaxRecordBytes: be.maxRecord, SegmentBytes: max(16<<20, 2*be.maxRecord+1<<20), Locked: true, Gate: lease.Valid,
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
func (be *backend) follower(c *cli.Context) follower {
	if be.kind == "jetstream" {
		return &streamFollower{nc: be.nc, logger: be.logger, opts: jetstream.Options{Stream: c.String("stream"),
			Replicas: c.Int("replicas"), Writer: be.name + " (standby, reading)", Logger: be.logger}}
	}
	return &walFollower{dir: be.dataDir, maxRecord: be.maxRecord}
}

func (be *backend) close() {
	if be.nc != nil {
		be.nc.Close()
	}
}
