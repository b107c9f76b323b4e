// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"log/slog"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/wal"
)

// warmStandby follows the journal while this broker waits for it, so that
// at takeover only the last records remain to replay. It runs until stop,
// which returns the state it built (nil if it has none worth using).
type warmStandby struct {
	dir       string
	maxRecord int
	logger    *slog.Logger
	quit      chan struct{}
	done      chan struct{}
	st        *core.Standby
}

func startWarm(dir string, maxRecord int, logger *slog.Logger) *warmStandby {
	w := &warmStandby{dir: dir, maxRecord: maxRecord, logger: logger, quit: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *warmStandby) run() {
	defer close(w.done)
	var f *wal.Follower
	reported := false
	for {
		if w.st == nil {
			st, from, err := w.begin()
			if err != nil {
				w.logger.Warn("warm standby: cannot start from the snapshot; retrying", "err", err)
			} else {
				w.st, f = st, wal.NewFollower(w.dir, from, w.maxRecord)
			}
		}
		if w.st != nil {
			if _, err := f.Poll(w.st.Apply); err != nil {
				lvl := slog.LevelWarn
				if errors.Is(err, wal.ErrBehind) {
					lvl = slog.LevelInfo
				}
				w.logger.Log(nil, lvl, "warm standby: starting over from the newest snapshot", "err", err)
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

// begin starts standby state from the newest snapshot.
func (w *warmStandby) begin() (*core.Standby, uint64, error) {
	idx, data, err := wal.ReadSnapshot(w.dir)
	if errors.Is(err, journal.ErrNoSnapshot) {
		idx, data, err = 0, nil, nil
	}
	if err != nil {
		return nil, 0, err
	}
	st, err := core.NewStandby(idx, data)
	if err != nil {
		return nil, 0, err
	}
	return st, st.From(1), nil
}

// stop ends the following and returns the state built so far.
func (w *warmStandby) stop() *core.Standby {
	close(w.quit)
	<-w.done
	return w.st
}
