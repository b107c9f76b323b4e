// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"bytes"
	"errors"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	recs := []Record{
		{Type: 1, Data: nil},
		{Type: 7, Data: []byte("hello")},
		{Type: MaxOwnerType, Data: bytes.Repeat([]byte{0xAB}, 5000), Moved: 3},
	}
	var buf []byte
	for i, r := range recs {
		buf = AppendFrame(buf, uint64(10+i), BatchFlags(i, len(recs)), &r)
	}
	for i, want := range recs {
		f, err := DecodeFrame(buf, DefaultMaxRecordBytes)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Index != uint64(10+i) || f.Type != want.Type || !bytes.Equal(f.Data, want.Data) || f.Moved != want.Moved ||
			f.Flags&(FlagBatchStart|FlagBatchEnd) != BatchFlags(i, len(recs)) || f.Size != FrameSize(&want) {
			t.Fatalf("frame %d decoded as %+v", i, f)
		}
		buf = buf[f.Size:]
	}
}

func TestDecodeFrameRejects(t *testing.T) {
	good := AppendFrame(nil, 5, FlagBatchStart|FlagBatchEnd, &Record{Type: 2, Data: []byte("payload")})
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := map[string][]byte{
		"empty":      nil,
		"zeros":      make([]byte, 64),
		"short":      good[:HeaderSize-1],
		"body cut":   good[:len(good)-1],
		"bit flip":   mut(func(b []byte) []byte { b[len(b)-2] ^= 1; return b }),
		"huge len":   mut(func(b []byte) []byte { b[7] = 0x7f; return b }),
		"bad flags":  mut(func(b []byte) []byte { b[17] |= 0x80; return b }),
		"type zero":  mut(func(b []byte) []byte { b[16] = 0; return b }),
		"reserved":   mut(func(b []byte) []byte { b[18] = 1; return b }),
		"index flip": mut(func(b []byte) []byte { b[8] ^= 1; return b }),
	}
	for name, b := range cases {
		if _, err := DecodeFrame(b, 1<<20); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}

// FuzzDecodeFrame checks the decoder never panics, never reads past its
// input, and that whatever it accepts re-encodes to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(AppendFrame(nil, 1, FlagBatchStart|FlagBatchEnd, &Record{Type: 1, Data: []byte("x")}))
	f.Add(AppendFrame(nil, 9, FlagBatchEnd, &Record{Type: 3, Data: []byte("moved"), Moved: 2}))
	f.Add(make([]byte, HeaderSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeFrame(b, 1<<16)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if fr.Size > len(b) || fr.Type == 0 {
			t.Fatalf("accepted frame %+v from %d bytes", fr, len(b))
		}
		again := AppendFrame(nil, fr.Index, fr.Flags, &fr.Record)
		if !bytes.Equal(again, b[:fr.Size]) {
			t.Fatalf("re-encoding differs:\n%x\n%x", again, b[:fr.Size])
		}
	})
}
