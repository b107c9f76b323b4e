// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"bytes"
	"testing"
)

// FuzzDecodeProjection: a snapshot passes its journal's checksum before
// the broker decodes it, but whatever the bytes, decoding returns an error
// or a projection and never panics; what decodes re-encodes to a snapshot
// that decodes to the same encoding.
func FuzzDecodeProjection(f *testing.F) {
	p := newProjection()
	p.applied, p.seq = 1000, 77
	q := p.queue("orders")
	q.bound = 60
	for s := uint64(50); s < 70; s++ {
		q.pending[s] = pref{index: 900 + s, meta: packMeta(int(s)*10, uint8(s%10)), expires: secs(s % 3 * 1_900_000_000)}
	}
	q.redeliveries = map[uint64]uint32{52: 3}
	p.queue("empty")
	p.dedup.add("producer-1:5")
	p.durable[durableKey{"client-a", "sub-1"}] = durableSpec{topic: "prices", selector: "region = 'EU'"}
	v5 := p.encode()
	f.Add(v5)
	f.Add(encodeV4(p))
	f.Add(newProjection().encode())
	f.Add(v5[:len(v5)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodeProjection(data)
		if err != nil {
			return
		}
		once := p.encode()
		p2, err := decodeProjection(once)
		if err != nil {
			t.Fatalf("a decoded snapshot re-encodes to one that does not decode: %v", err)
		}
		if twice := p2.encode(); !bytes.Equal(once, twice) {
			t.Fatalf("re-encoding is not stable:\n%x\n%x", once, twice)
		}
	})
}
