// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp

import (
	"errors"
	"sync"
	"time"
)

// readBudget bounds the bytes of partly read frames across a server's
// connections (Options.ReadMemory). Each frame's first readBufferSize
// bytes are free (the connection's read buffer holds them anyway); a
// reader takes what it needs beyond that before it allocates, and gives it
// back once the frame is read. A reader that finds no room waits, with the
// frame's deadline, for another to give some back.
type readBudget struct {
	mu      sync.Mutex
	limit   int64
	used    int64
	waiters int
	wake    chan struct{} // closed when bytes are given back while someone waits
}

func newReadBudget(limit int64) *readBudget {
	return &readBudget{limit: limit, wake: make(chan struct{})}
}

// errReaderClosed: the session ended while its reader waited for room.
var errReaderClosed = errors.New("stomp: connection closed while waiting for read memory")

// take reserves n bytes, waiting for room until deadline (zero: none) or
// until done is closed.
func (b *readBudget) take(n int64, deadline time.Time, done <-chan struct{}) error {
	if n > b.limit {
		return perr(CodeFrameTooLarge, "a frame of over %d bytes is more than the server reads at once (%d)", n, b.limit)
	}
	var timer <-chan time.Time
	for {
		b.mu.Lock()
		if b.used+n <= b.limit {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		b.waiters++
		wake := b.wake
		b.mu.Unlock()
		if timer == nil && !deadline.IsZero() {
			t := time.NewTimer(time.Until(deadline))
			defer t.Stop()
			timer = t.C
		}
		var err error
		select {
		case <-wake:
		case <-timer:
			err = perr(CodeFrameTimeout, "the frame did not arrive in time: the server had no room to read it")
		case <-done:
			err = errReaderClosed
		}
		b.mu.Lock()
		b.waiters--
		b.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// give returns n bytes.
func (b *readBudget) give(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	if b.waiters > 0 {
		close(b.wake)
		b.wake = make(chan struct{})
	}
	b.mu.Unlock()
}
