// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/jetstream"
	"github.com/cairnmq/cairn/journal/wal"
)

// Follower is a journal read while another broker writes it.
type Follower interface {
	// Begin loads the newest snapshot and says where reading must start.
	Begin() (*core.Standby, error)
	// Poll feeds st every complete batch written since the last poll.
	Poll(st *core.Standby) error
	Close()
}

// WarmStandby is the standby loop's reading half: it follows the journal
// while this broker waits for the lease, so that at takeover only the last
// records remain to replay. It runs until Stop, which returns the state it
// built (nil if it has none).
type WarmStandby struct {
	f      Follower
	logger *slog.Logger
	quit   chan struct{}
	done   chan struct{}
	st     *core.Standby
}

// StartWarm follows f until Stop.
func StartWarm(f Follower, logger *slog.Logger) *WarmStandby {
	w := &WarmStandby{f: f, logger: logger, quit: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *WarmStandby) run() {
	defer close(w.done)
	defer w.f.Close()
	reported := false
	for {
		if w.st == nil {
			st, err := w.f.Begin()
			if err != nil {
				w.logger.Warn("warm standby: cannot start from the snapshot; retrying", "err", err)
			} else {
				w.st = st
			}
		}
		if w.st != nil {
			if err := w.f.Poll(w.st); err != nil {
				lvl := slog.LevelWarn
				if errors.Is(err, wal.ErrBehind) || errors.Is(err, journal.ErrNotFound) {
					lvl = slog.LevelInfo
				}
				w.logger.Log(context.Background(), lvl, "warm standby: starting over from the newest snapshot", "err", err)
				w.st = nil
			} else if !reported && w.st.Read() > 0 {
				reported = true
				w.logger.Info("warm standby: following the journal", "read", w.st.Read(), "pending_messages", w.st.Pending())
			}
		}
		select {
		case <-w.quit:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopWait bounds how long Stop waits for a read in progress.
const stopWait = time.Second

// Stop ends the following and returns the state built so far. It waits at
// most stopWait for a read in progress (a JetStream request to a cluster
// that has just lost a node can take its whole timeout, and a takeover
// must not wait for it): past that it returns nil, so the takeover
// replays the journal cold, and the read ends on its own.
func (w *WarmStandby) Stop() *core.Standby {
	close(w.quit)
	select {
	case <-w.done:
		return w.st
	case <-time.After(stopWait):
		w.logger.Warn("warm standby: a journal read is still in progress; taking over without the state it built", "waited", stopWait)
		return nil
	}
}

// NewWALFollower follows the wal journal in dir, whose records are at most
// maxRecord bytes, by reading its segments as they grow.
func NewWALFollower(dir string, maxRecord int) Follower {
	return &walFollower{dir: dir, maxRecord: maxRecord}
}

type walFollower struct {
	dir       string
	maxRecord int
	f         *wal.Follower
}

// standbyFrom starts standby state from what loading the newest snapshot
// returned.
func standbyFrom(idx uint64, data []byte, err error) (*core.Standby, error) {
	if errors.Is(err, journal.ErrNoSnapshot) {
		idx, data, err = 0, nil, nil
	}
	if err != nil {
		return nil, err
	}
	return core.NewStandby(idx, data)
}

func (w *walFollower) Begin() (*core.Standby, error) {
	st, err := standbyFrom(wal.ReadSnapshot(w.dir))
	if err != nil {
		return nil, err
	}
	w.f = wal.NewFollower(w.dir, st.From(1), w.maxRecord)
	return st, nil
}

func (w *walFollower) Poll(st *core.Standby) error {
	_, err := w.f.Poll(st.Apply)
	return err
}

func (w *walFollower) Close() {}

// NewStreamFollower follows the JetStream journal that opts name, on nc,
// with a read-only handle: it refreshes the stream's bounds and reads what
// was added with an ordered consumer.
func NewStreamFollower(nc *nats.Conn, opts jetstream.Options, logger *slog.Logger) Follower {
	return &streamFollower{nc: nc, opts: opts, logger: logger}
}

type streamFollower struct {
	nc     *nats.Conn
	opts   jetstream.Options
	l      *jetstream.Log
	next   uint64
	logger *slog.Logger
}

func (s *streamFollower) Begin() (*core.Standby, error) {
	if s.l == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		l, err := jetstream.Open(ctx, s.nc, s.opts)
		if err != nil {
			return nil, err
		}
		s.l = l
	}
	st, err := standbyFrom(s.l.LoadSnapshot())
	if err != nil {
		return nil, err
	}
	if err := s.l.Refresh(context.Background()); err != nil {
		return nil, err
	}
	s.next = st.From(s.l.FirstIndex())
	return st, nil
}

func (s *streamFollower) Poll(st *core.Standby) error {
	if err := s.l.Refresh(context.Background()); err != nil {
		return err
	}
	if s.next > s.l.LastIndex() {
		return nil
	}
	if s.next < s.l.FirstIndex() {
		return fmt.Errorf("%w: the follower is at %d, the stream starts at %d", journal.ErrNotFound, s.next, s.l.FirstIndex())
	}
	return s.l.Scan(s.next, func(r journal.Record) error {
		if err := st.Apply(r); err != nil {
			return err
		}
		s.next = r.Index + 1
		return nil
	})
}

func (s *streamFollower) Close() {
	if s.l != nil {
		s.l.Close()
	}
}
