// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"errors"
	"sync"

	"github.com/cairnmq/cairn/journal"
)

// Standby is broker state kept warm while another broker owns the journal:
// a standby feeds it the journal's records as they are written (from a
// snapshot, then in order), and at takeover Open (Options.Standby) starts
// from it and replays only what it has not read. It builds exactly what
// Open's own replay builds, with the same code.
//
// Apply and the read methods may be called from different goroutines; Open
// takes the state over, after which the Standby is spent.
type Standby struct {
	mu sync.Mutex
	rb *rebuild
}

// NewStandby starts standby state from a snapshot: index and data as
// journal.Snapshotter's LoadSnapshot returns them (data nil: no snapshot).
func NewStandby(index uint64, data []byte) (*Standby, error) {
	rb, err := newRebuild(index, data)
	if err != nil {
		return nil, err
	}
	return &Standby{rb: rb}, nil
}

// From is the index the standby must be fed from, for a journal whose first
// record is first (1 if unknown: records before the journal's logical first
// are harmless to apply).
func (s *Standby) From(first uint64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rb == nil {
		return 0
	}
	return s.rb.from(first)
}

// errSpent says Open already took the Standby's state.
var errSpent = errors.New("core: standby state already taken over")

// Apply takes the next record. Records must come in order, whole batches
// only; an error leaves the state unusable (start a new Standby).
func (s *Standby) Apply(r journal.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rb == nil {
		return errSpent
	}
	if err := s.rb.apply(r); err != nil {
		s.rb = nil
		return err
	}
	return nil
}

// Read is the index of the last record applied (0: none yet).
func (s *Standby) Read() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rb == nil {
		return 0
	}
	return s.rb.read
}

// Pending is how many messages the state holds.
func (s *Standby) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rb == nil {
		return 0
	}
	return s.rb.p.pendingCount()
}

// take hands the state to Open, once.
func (s *Standby) take() *rebuild {
	s.mu.Lock()
	defer s.mu.Unlock()
	rb := s.rb
	s.rb = nil
	return rb
}
