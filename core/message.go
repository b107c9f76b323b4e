// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"strconv"
	"strings"
)

// Message is one message as the broker holds it. A Message is immutable once
// sent; deliveries carry their own redelivery state.
type Message struct {
	// Seq is the broker-wide sequence number, the message's identity.
	Seq         uint64
	Destination Destination
	Persistent  bool
	// Priority is 0–9 (ActiveMQ's default is 4).
	Priority uint8
	// Timestamp and Expires are Unix milliseconds; Expires 0 means never.
	Timestamp int64
	Expires   int64
	// Header holds every other header of the SEND, in order, as key/value
	// pairs: correlation-id, reply-to, type, content-type and the
	// application's properties.
	Header []string
	Body   []byte
	// Origin names the connection that sent it (for noLocal); not stored.
	Origin uint64
	// index is the journal record of its enqueue, once stored (paging
	// reads it back from there).
	index uint64
}

// TempDestination is the destination a temporary queue or topic (STOMP's
// /temp-queue/, /temp-topic/) is held under: scope is the connection that
// owns it. Such names start with $, which clients cannot name directly.
func TempDestination(kind Kind, scope, name string) Destination {
	return Destination{kind, "$temp:" + scope + ":" + name}
}

// messageOverhead is the fixed part of a Message's Size.
const messageOverhead = 192

// Size is about how many bytes m takes in memory: its body, its headers
// and a fixed overhead, which counts the Message itself (128 bytes) and
// what a queue keeps for it waiting or in flight (its entry, its places in
// the pending list, the in-flight maps and the connection's write queue).
func (m *Message) Size() int {
	n := messageOverhead + len(m.Body)
	for _, h := range m.Header {
		n += len(h) + 16
	}
	return n
}

// ID is the message-id clients see: "ID:cairn-<seq>".
func (m *Message) ID() string { return FormatID(m.Seq) }

// FormatID is the message-id of sequence seq.
func FormatID(seq uint64) string { return "ID:cairn-" + strconv.FormatUint(seq, 10) }

// ParseID returns the sequence in a message-id made by FormatID.
func ParseID(id string) (uint64, bool) {
	s, ok := strings.CutPrefix(id, "ID:cairn-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil && n > 0
}

// Get returns the first value of header key, or "".
func (m *Message) Get(key string) string {
	for i := 0; i+1 < len(m.Header); i += 2 {
		if m.Header[i] == key {
			return m.Header[i+1]
		}
	}
	return ""
}
