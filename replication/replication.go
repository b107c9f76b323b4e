// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package replication decides which broker may write a journal: a Locker
// elects one master among brokers pointed at the same journal, and the Lease
// it hands out says, at every moment, whether the master may still write.
//
// The contract every Locker keeps:
//
//   - At most one Lease is valid at a time. A standby is granted a lease only
//     after the previous holder's lease has ended: released, its process
//     gone, or expired on the holder's own clock.
//   - A holder stops writing before a standby can start: Valid is checked by
//     the journal before every write (wal.Options.Gate), and it fails as soon
//     as the holder can no longer prove it renewed its lease within the TTL.
//     A master frozen (SIGSTOP, a long stall) wakes up to a failed Valid.
//   - Lost is closed when the lease is gone for good; the broker then
//     fail-stops: it stops its listeners, refuses appends and exits non-zero.
//   - Epochs grow by one with every new master. They name the master in logs
//     and status, and order leases: a write by an older epoch is stale.
//
// FileLocker implements this on a shared directory (ActiveMQ's shared file
// system master/slave); see its comment for the mechanism and for what NFS
// needs. KVLocker implements it on a JetStream key-value bucket.
//
// A standby's other half is WarmStandby: while it waits for the lease it
// follows the journal (NewWALFollower, NewStreamFollower) so that a
// takeover replays only the tail. Reporter writes each broker's status for
// `cairn status`. The whole lifecycle, election to fail-stop, is package
// replication/node.
package replication

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// Locker elects the one broker that may write a journal.
type Locker interface {
	// Acquire blocks until this broker holds the lease, ctx ends, or an error
	// that waiting cannot cure. While it waits it calls wait (if not nil)
	// whenever what it is waiting for changes.
	Acquire(ctx context.Context, wait func(Waiting)) (Lease, error)
}

// Lease is the right to write, held by one master at a time.
type Lease interface {
	// Epoch is this lease's number: one more than the previous master's.
	Epoch() uint64
	// Valid returns nil while the lease is certainly held, and an error
	// wrapping ErrLost once it may not be. It is cheap (no I/O) and is meant
	// to be called before every write.
	Valid() error
	// Lost is closed when the lease is lost; Err then says why.
	Lost() <-chan struct{}
	// Err is nil while the lease is held, the reason after Lost is closed.
	Err() error
	// Took says how the lease was acquired, for the logs.
	Took() Acquisition
	// Release gives the lease up so that a standby takes over at once.
	Release() error
}

// Acquisition describes how a lease was won.
type Acquisition struct {
	// How is "free" (nobody held it), "released" (the last master let it
	// go), "holder gone" (the last master's process died) or "expired" (the
	// last master stopped renewing and its lease ran out).
	How string
	// Previous is the holder before us, if known.
	Previous Holder
	// Waited is the time Acquire spent waiting.
	Waited time.Duration
}

// Waiting is what a standby reports while it waits for the lease.
type Waiting struct {
	Holder Holder
	// Renewed is how long ago the standby last saw the holder renew.
	Renewed time.Duration
	// ExpiresIn is how long the holder may go without renewing before the
	// standby takes the lease from it.
	ExpiresIn time.Duration
}

func (w Waiting) String() string {
	return fmt.Sprintf("journal held by %s; last renewal seen %s ago; taken over if not renewed within %s",
		w.Holder, w.Renewed.Round(time.Millisecond), w.ExpiresIn.Round(time.Millisecond))
}

// Holder names a lease holder.
type Holder struct {
	ID    string
	Host  string
	PID   int
	Epoch uint64
}

func (h Holder) String() string {
	if h.ID == "" {
		return "an unknown broker"
	}
	return fmt.Sprintf("%s (pid %d on %s, epoch %d)", h.ID, h.PID, h.Host, h.Epoch)
}

// ErrLost is wrapped by every error that says a lease is no longer held.
var ErrLost = errors.New("replication: lease lost")

// NewID returns a broker id unique among brokers sharing a journal: the
// host name, the pid and the start time.
func NewID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%x", host, os.Getpid(), time.Now().UnixNano()&0xffffff)
}
