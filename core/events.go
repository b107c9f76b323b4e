// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cairnmq/cairn/journal"
)

// Journal record types: the broker's events. Each is one journal record;
// the events of one transaction commit are one atomic batch.
const (
	// evEnqueue: a persistent message was sent to a queue.
	evEnqueue journal.RecordType = 1
	// evAck: messages of a queue were acknowledged and are gone.
	evAck journal.RecordType = 2
	// evDispatched: a queue may have delivered messages with sequence up to
	// a bound. Written before a delivery passes the bound, so that after a
	// crash a message that may have been delivered comes back with
	// redelivered:true.
	evDispatched journal.RecordType = 3
	// evRedelivered: messages of a queue were given back for redelivery (a
	// NACK, or their consumer went away): each one's redelivery count goes
	// up by one. Written lazily (journal.LazyAppender): a count lost in a
	// crash is one redelivery short, never a message.
	evRedelivered journal.RecordType = 4
	// evExpired: messages of a queue passed their expiry and are gone (as
	// evAck; kept apart for inspection and statistics).
	evExpired journal.RecordType = 5
	// evPurged: messages of a queue were removed by an operator's purge (as
	// evAck; a large purge is several records in one batch).
	evPurged journal.RecordType = 6
	// evDeleted: a queue, purged in the same batch, was removed. Payload:
	// the destination (as evDispatched, with bound 0).
	evDeleted journal.RecordType = 7
	// evDurable: a durable topic subscription was created. Payload: client
	// id, name, topic.
	evDurable journal.RecordType = 8
	// evUndurable: a durable topic subscription was removed (its queue is
	// deleted in a record of its own). Payload as evDurable.
	evUndurable journal.RecordType = 9
)

// Event payloads are a sequence of fields: uvarints, and byte strings as a
// uvarint length followed by the bytes.

type encoder struct{ b []byte }

func (e *encoder) uint(v uint64)  { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int64)    { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) bytes(p []byte) { e.uint(uint64(len(p))); e.b = append(e.b, p...) }
func (e *encoder) str(s string)   { e.uint(uint64(len(s))); e.b = append(e.b, s...) }

func (e *encoder) dest(d Destination) {
	e.uint(uint64(d.Kind))
	e.str(d.Name)
}

var errShort = errors.New("event ends early")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errShort
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) str() string { return string(d.bytes()) }

func (d *decoder) dest() Destination {
	k := Kind(d.uint())
	name := d.str()
	if d.err == nil && k != Queue && k != Topic {
		d.err = fmt.Errorf("destination kind %d", k)
	}
	return Destination{Kind: k, Name: name}
}

func encodeEnqueue(m *Message) []byte {
	e := encoder{b: make([]byte, 0, 64+len(m.Body))}
	e.uint(m.Seq)
	e.dest(m.Destination)
	e.uint(uint64(m.Priority))
	e.int(m.Timestamp)
	e.int(m.Expires)
	e.uint(uint64(len(m.Header)))
	for _, h := range m.Header {
		e.str(h)
	}
	e.bytes(m.Body)
	return e.b
}

func decodeEnqueue(p []byte) (*Message, error) {
	d := decoder{b: p}
	m := &Message{Persistent: true}
	m.Seq = d.uint()
	m.Destination = d.dest()
	m.Priority = uint8(d.uint())
	m.Timestamp = d.int()
	m.Expires = d.int()
	n := d.uint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.err = errShort
	}
	if d.err == nil {
		m.Header = make([]string, n)
		for i := range m.Header {
			m.Header[i] = d.str()
		}
	}
	m.Body = append([]byte(nil), d.bytes()...)
	return m, d.check("enqueue")
}

// enqHead is what the projection keeps of an enqueue record: the message's
// sequence, queue, priority and expiry, its Size, and its DedupHeader id. peekEnqueue
// reads it without copying the body or the headers, and checks the record
// as decodeEnqueue does.
type enqHead struct {
	seq     uint64
	dest    Destination
	prio    uint8
	expires int64
	size    int
	dedupID string
}

// peekEnqueue reads an enqueue record's enqHead. names interns queue
// names (nil: none): a replay meets the same few names a million times.
func peekEnqueue(p []byte, names map[string]string) (enqHead, error) {
	d := decoder{b: p}
	var h enqHead
	h.seq = d.uint()
	kind := Kind(d.uint())
	name := d.bytes()
	if d.err == nil && kind != Queue && kind != Topic {
		d.err = fmt.Errorf("destination kind %d", kind)
	}
	h.dest = Destination{Kind: kind, Name: intern(names, name)}
	h.prio = uint8(d.uint())
	d.int() // timestamp
	h.expires = d.int()
	n := d.uint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.err = errShort
	}
	h.size = messageOverhead // as Message.Size
	for i := uint64(0); i < n && d.err == nil; i++ {
		k := d.bytes()
		h.size += len(k) + 16
		if i%2 == 0 && i+1 < n && string(k) == DedupHeader {
			v := d.bytes()
			h.size += len(v) + 16
			h.dedupID = string(v)
			i++
		}
	}
	h.size += len(d.bytes())
	return h, d.check("enqueue")
}

// intern returns b as a string, the same string for the same bytes while
// names has room.
func intern(names map[string]string, b []byte) string {
	if s, ok := names[string(b)]; ok {
		return s
	}
	s := string(b)
	if names != nil && len(names) < 1<<12 {
		names[s] = s
	}
	return s
}

func (d *decoder) check(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d bytes after the event", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("%s event: %w", what, d.err)
	}
	return nil
}

func encodeAck(dest Destination, seqs []uint64) []byte {
	e := encoder{b: make([]byte, 0, 16+len(dest.Name)+4*len(seqs))}
	e.dest(dest)
	e.uint(uint64(len(seqs)))
	for _, s := range seqs {
		e.uint(s)
	}
	return e.b
}

func decodeAck(p []byte) (Destination, []uint64, error) {
	d := decoder{b: p}
	dest := d.dest()
	n := d.uint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.err = errShort
	}
	var seqs []uint64
	if d.err == nil {
		seqs = make([]uint64, n)
		for i := range seqs {
			seqs[i] = d.uint()
		}
	}
	return dest, seqs, d.check("ack")
}

func encodeDispatched(dest Destination, upTo uint64) []byte {
	e := encoder{}
	e.dest(dest)
	e.uint(upTo)
	return e.b
}

func decodeDispatched(p []byte) (Destination, uint64, error) {
	d := decoder{b: p}
	dest := d.dest()
	upTo := d.uint()
	return dest, upTo, d.check("dispatched")
}
