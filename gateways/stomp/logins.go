// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Failed logins, counted per source address, to slow down guessing.

package stomp

import "time"

// loginFailures is one address's recent failed logins.
type loginFailures struct {
	n    int
	last time.Time
}

const (
	freeFailures   = 3                // failures from one address answered at once
	failureMemory  = 10 * time.Minute // an address's failures are forgotten after this without one
	maxLoginDelay  = 5 * time.Second
	firstSlowDelay = 250 * time.Millisecond
)

// loginDelay is how long addr's next login waits before it is checked:
// nothing for its first few failures in a row, then 250ms doubling up to
// 5s.
func (s *Server) loginDelay(addr string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.failures[addr]
	if f == nil || time.Since(f.last) > failureMemory || f.n < freeFailures {
		return 0
	}
	return min(maxLoginDelay, firstSlowDelay<<min(f.n-freeFailures, 8))
}

// loginFailed counts a failed login from addr.
func (s *Server) loginFailed(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.failures == nil {
		s.failures = map[string]*loginFailures{}
	}
	if len(s.failures) > 100_000 {
		for a, f := range s.failures {
			if now.Sub(f.last) > failureMemory {
				delete(s.failures, a)
			}
		}
	}
	f := s.failures[addr]
	if f == nil || now.Sub(f.last) > failureMemory {
		f = &loginFailures{}
		s.failures[addr] = f
	}
	f.n++
	f.last = now
}

// loginSucceeded forgets addr's failures.
func (s *Server) loginSucceeded(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.failures, addr)
}
