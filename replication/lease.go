// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package replication

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// leaseClock is what every Lease shares: validity measured on the holder's
// own monotonic clock from the start of its last successful renewal, a loss
// recorded once, and the keep-alive loop. A Lease embeds it and supplies
// renew.
type leaseClock struct {
	ttl    time.Duration
	base   time.Time // monotonic origin of lastOK
	epoch  uint64
	took   Acquisition
	logger *slog.Logger

	lastOK   atomic.Int64 // nanoseconds after base at which the last good renewal began
	released atomic.Bool

	lostOnce sync.Once
	lost     chan struct{}
	err      atomic.Pointer[error]

	stop, done chan struct{}
	stopOnce   sync.Once
	frozenTill atomic.Int64 // a now reading before which keepAlive renews nothing (Freeze)
}

// start makes the clock valid from base, the time just before the write
// that took the lease.
func (c *leaseClock) start(ttl time.Duration, base time.Time, logger *slog.Logger) {
	c.ttl, c.base, c.logger = ttl, base, logger
	c.lost, c.stop, c.done = make(chan struct{}), make(chan struct{}), make(chan struct{})
}

func (c *leaseClock) Epoch() uint64         { return c.epoch }
func (c *leaseClock) Lost() <-chan struct{} { return c.lost }
func (c *leaseClock) Took() Acquisition     { return c.took }

func (c *leaseClock) Err() error {
	if p := c.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *leaseClock) Valid() error {
	if err := c.Err(); err != nil {
		return err
	}
	if c.released.Load() {
		return fmt.Errorf("%w: released", ErrLost)
	}
	if age := time.Duration(c.now() - c.lastOK.Load()); age >= c.ttl {
		return c.lose(fmt.Errorf("%w: not renewed for %s (TTL %s)", ErrLost, age.Round(time.Millisecond), c.ttl))
	}
	return nil
}

// now is the clock's reading: nanoseconds since base.
func (c *leaseClock) now() int64 { return int64(time.Since(c.base)) }

// renewed records a successful renewal that began at t0 (a now reading).
func (c *leaseClock) renewed(t0 int64) { c.lastOK.Store(t0) }

// lose records why the lease is gone and closes Lost, once.
func (c *leaseClock) lose(err error) error {
	c.lostOnce.Do(func() {
		c.err.Store(&err)
		c.logger.Error("replication: lease lost; this broker must stop writing", "epoch", c.epoch, "err", err)
		close(c.lost)
	})
	return c.Err()
}

// keepAlive calls renew every TTL/4 until the lease is released or lost
// (renew returns non-nil once it is lost).
func (c *leaseClock) keepAlive(renew func() error) {
	defer close(c.done)
	t := time.NewTicker(c.ttl / 4)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.lost:
			return
		case <-t.C:
		}
		if c.now() < c.frozenTill.Load() {
			continue
		}
		if renew() != nil {
			return
		}
	}
}

// halt stops the renewals, once; it reports whether this call did.
func (c *leaseClock) halt() bool {
	first := false
	c.stopOnce.Do(func() {
		first = true
		close(c.stop)
		<-c.done
	})
	return first
}

// pause stops renewals without releasing anything, as a frozen process
// would. For tests.
func (c *leaseClock) pause() { c.halt() }

func (c *leaseClock) freeze(d time.Duration) { c.frozenTill.Store(c.now() + int64(d)) }

// Freeze stops l's renewals for d, as stopping the process (SIGSTOP) would,
// and then lets them run again: if d outlasted the TTL, the first renewal
// after it finds the lease lost and closes Lost. Writes in the meantime are
// refused by Valid once the TTL has passed. For tests of takeover in one
// process; it does nothing to a Lease made outside this package.
func Freeze(l Lease, d time.Duration) {
	if f, ok := l.(interface{ freeze(time.Duration) }); ok {
		f.freeze(d)
	}
}

// Abandon ends l as a killed process would: renewals stop, nothing is
// written (not even a release), and what the kernel drops at exit is dropped
// (a file lease's flock), so that a standby finds the holder gone (file
// lease) or lets the lease expire (JetStream). Lost is closed. For tests of
// takeover in one process.
func Abandon(l Lease) {
	if a, ok := l.(interface{ abandon() }); ok {
		a.abandon()
	}
}
