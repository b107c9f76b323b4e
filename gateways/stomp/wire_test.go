// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"testing"

	"github.com/go-stomp/stomp/v3/frame"
)

// FuzzReader feeds arbitrary bytes to the frame reader: it must never panic,
// never return a frame over the limits, and fail only with a protocol error
// or the end of the input. Frames it accepts must survive a write and a
// second read unchanged.
func FuzzReader(f *testing.F) {
	seeds := []string{
		"CONNECT\naccept-version:1.2\nhost:x\n\n\x00",
		"SEND\ndestination:/queue/a\ncontent-length:5\n\nhello\x00\n\n",
		"SEND\ndestination:/queue/a\nk:a\\cb\\nc\\\\\n\nbody\x00",
		"SUBSCRIBE\nid:1\ndestination:/topic/t\nack:client-individual\n\n\x00",
		"ACK\nid:ID:cairn-7\ntransaction:tx1\n\n\x00",
		"\n\n\r\nDISCONNECT\nreceipt:9\n\n\x00",
		"SEND\r\ndestination:/queue/a\r\n\r\nx\x00",
		"SEND\ndestination:/queue/a\ncontent-length:999999999\n\n",
		"FROB\n\n\x00",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	lim := Limits{MaxHeaders: 16, MaxHeaderBytes: 256, MaxBodyBytes: 1024}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newReader(bytes.NewReader(data), lim)
		for range 64 {
			fr, err := r.read()
			if err != nil {
				var pe *protocolError
				if !errors.As(err, &pe) && !isEOF(err) {
					t.Fatalf("reader failed with %v, neither a protocol error nor the end of input", err)
				}
				return
			}
			if fr == nil {
				continue
			}
			if fr.Header.Len() > lim.MaxHeaders || len(fr.Body) > lim.MaxBodyBytes {
				t.Fatalf("frame over the limits: %d headers, %d-byte body", fr.Header.Len(), len(fr.Body))
			}
			var buf bytes.Buffer
			w := bufio.NewWriter(&buf)
			writeFrame(w, withLength(fr), r.version)
			w.Flush()
			again, err := newReader(&buf, Limits{MaxHeaders: 10000, MaxHeaderBytes: 1 << 20, MaxBodyBytes: 1 << 20}).read()
			if err != nil || again == nil {
				t.Fatalf("frame %q did not read back: %v", fr.Command, err)
			}
			if again.Command != fr.Command || !bytes.Equal(again.Body, fr.Body) {
				t.Fatalf("frame changed on a round trip: %q %q -> %q %q", fr.Command, fr.Body, again.Command, again.Body)
			}
		}
	})
}

// withLength sets content-length, so a body holding NULs survives.
func withLength(f *frame.Frame) *frame.Frame {
	c := f.Clone()
	c.Header.Del(frame.ContentLength)
	c.Header.Add(frame.ContentLength, strconv.Itoa(len(c.Body)))
	return c
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// A NUL byte or invalid UTF-8 in a header name or value is refused with
// code bad-header, in every version, escaped or not.
func TestHeaderText(t *testing.T) {
	for _, version := range []string{"1.0", "1.1", "1.2"} {
		for _, h := range []string{"k:a\x00b", "k\x00:v", "k:\xff\xfe", "k\xc3:v", "k:ok\xe2\x82", "k:\\\\\x00"} {
			r := newReader(bytes.NewReader([]byte("SEND\ndestination:/queue/a\n"+h+"\n\nbody\x00")), Limits{MaxHeaders: 16, MaxHeaderBytes: 256, MaxBodyBytes: 1024})
			r.version = version
			_, err := r.read()
			var pe *protocolError
			if !errors.As(err, &pe) || pe.code != "bad-header" {
				t.Errorf("STOMP %s, header %q: %v, want code bad-header", version, h, err)
			}
		}
		r := newReader(bytes.NewReader([]byte("SEND\ndestination:/queue/a\nk:caf\xc3\xa9 \xe2\x82\xac\n\nbody\x00")), Limits{MaxHeaders: 16, MaxHeaderBytes: 256, MaxBodyBytes: 1024})
		r.version = version
		if f, err := r.read(); err != nil || f.Header.Get("k") != "café €" {
			t.Errorf("STOMP %s: a UTF-8 header: %v %v", version, f, err)
		}
	}
}

// Every ERROR code is a row of the README's table, so a client author
// finds it and what it means.
func TestCodesDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range Codes {
		if !bytes.Contains(readme, []byte("| `"+string(c)+"` | ")) {
			t.Errorf("ERROR code %q is not a row of README.md's table of codes", c)
		}
	}
}
