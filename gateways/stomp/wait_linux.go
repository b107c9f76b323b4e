// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp

import "syscall"

const canWait = true

// waitReadable blocks until the connection has data or an end to report,
// and reads what it has into the reader's buffer: when the runtime's
// poller says the descriptor is ready, the buffer (from the pool) reads it
// without blocking; would-block gives the buffer back and waits again
// (honouring the connection's read deadline). An error or the end of the
// stream is left for the next ordinary read to find.
func waitReadable(r *reader) error {
	src := r.src.(*connSource)
	return r.rc.Read(func(fd uintptr) bool {
		r.take()
		src.fd, src.raw = int(fd), true
		_, err := r.br.Peek(1)
		src.raw = false
		if err == syscall.EAGAIN || err == syscall.EWOULDBLOCK {
			r.release()
			return false
		}
		return true
	})
}
