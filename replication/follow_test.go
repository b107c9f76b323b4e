// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package replication

import (
	"log/slog"
	"testing"
	"time"

	"github.com/cairnmq/cairn/core"
)

// stuckFollower's Begin blocks until release is closed, as a JetStream
// request to a cluster that lost a node blocks until its timeout.
type stuckFollower struct{ entered, release chan struct{} }

func (f *stuckFollower) Begin() (*core.Standby, error) {
	close(f.entered)
	<-f.release
	return core.NewStandby(0, nil)
}
func (f *stuckFollower) Poll(*core.Standby) error { return nil }
func (f *stuckFollower) Close()                   {}

// TestWarmStandbyStopDoesNotWaitForAStuckRead: a takeover stops the warm
// standby; a read in progress does not hold it past stopWait: Stop
// returns no state (the takeover replays cold), and the read ends later.
func TestWarmStandbyStopDoesNotWaitForAStuckRead(t *testing.T) {
	f := &stuckFollower{entered: make(chan struct{}), release: make(chan struct{})}
	w := StartWarm(f, slog.New(slog.DiscardHandler))
	<-f.entered
	stopped := make(chan *core.Standby, 1)
	go func() { stopped <- w.Stop() }()
	select {
	case st := <-stopped:
		if st != nil {
			t.Fatalf("Stop returned state %v from a follower that never began", st)
		}
	case <-time.After(10 * time.Second):
		close(f.release)
		t.Fatal("Stop waited for the stuck read")
	}
	close(f.release)
	<-w.done // the read ends on its own
}
