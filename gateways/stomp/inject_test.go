// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/cairnmq/cairn/internal/brokertest"
)

// versions are the STOMP versions a client may speak.
var versions = []string{"1.0", "1.1", "1.2"}

// peer is one STOMP connection of a given version, read with go-stomp's
// frame reader (a parser independent of the broker's).
type peer struct {
	version string
	nc      net.Conn
	r       *frame.Reader
}

func connectAs(t testing.TB, addr, version string) *peer {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	p := &peer{version: version, nc: nc, r: frame.NewReader(bufio.NewReader(nc))}
	p.write(t, "CONNECT\naccept-version:"+version+"\nhost:/\n\n\x00")
	if f := p.read(t); f.Command != "CONNECTED" {
		t.Fatalf("CONNECT %s: %s %s", version, f.Command, f.Header.Get("message"))
	}
	return p
}

func (p *peer) write(t testing.TB, raw string) {
	t.Helper()
	p.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := p.nc.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
}

// read returns the next frame (skipping heart-beats), or nil once the
// broker has closed the connection.
func (p *peer) read(t testing.TB) *frame.Frame {
	t.Helper()
	p.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := p.r.Read()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("STOMP %s: no frame within 10s", p.version)
			}
			return nil
		}
		if f != nil {
			return f
		}
	}
}

// FuzzSendAcrossVersions sends a SEND holding any header line and body,
// from a producer of any version, to subscribers of all three versions,
// and checks what each receives: nothing a producer sends can change the
// framing of what another client gets. Each subscriber reads the same
// MESSAGEs, in order, with the same bodies, each a MESSAGE of its own
// subscription and destination; a STOMP 1.2 subscriber gets every header;
// 1.0 and 1.1 subscribers get each header that their version can carry
// intact, with the 1.2 subscriber's value, and no other.
//
// The seeds run with go test; go test -fuzz FuzzSendAcrossVersions
// ./gateways/stomp explores (it needs no more than loopback).
func FuzzSendAcrossVersions(f *testing.F) {
	f.Add(uint8(2), "x-note", `a\nb`, []byte("body"))                                                      // an escaped line feed
	f.Add(uint8(2), "x-note", `a\n\nMESSAGE\ndestination:/topic/f\nsubscription:s\n\nforged`, []byte("b")) // a forged frame for 1.0
	f.Add(uint8(2), `x\cnote`, `v`, []byte("b"))                                                           // a colon in a name
	f.Add(uint8(2), "x-note", `end\r`, []byte("b"))                                                        // a carriage return
	f.Add(uint8(1), "x-note", "a\rb", []byte("b"))                                                         // a raw carriage return from 1.1
	f.Add(uint8(0), "x-note", `a\nb\c\\`, []byte("b"))                                                     // 1.0's lenient escapes
	f.Add(uint8(0), "x-note", "a:b:c", []byte("b"))                                                        // colons in a 1.0 value
	f.Add(uint8(2), "x-note", "v\x00", []byte("b"))                                                        // a NUL
	f.Add(uint8(2), "x-note", "\xff", []byte("b"))                                                         // not UTF-8
	f.Add(uint8(1), "x-note", "v\n\nbody\x00SEND\ndestination:/topic/f", []byte("b"))                      // frames inside the producer's own
	f.Add(uint8(2), "x-note", "plain", []byte("with\x00a NUL"))

	k := brokertest.Start(f, brokertest.Options{})
	subs := make([]*peer, len(versions))
	for i, v := range versions {
		subs[i] = connectAs(f, k.Addr, v)
		subs[i].write(f, fmt.Sprintf("SUBSCRIBE\ndestination:/topic/f\nid:s%d\nack:auto\nreceipt:ok\n\n\x00", i))
		if r := subs[i].read(f); r.Command != "RECEIPT" {
			f.Fatalf("SUBSCRIBE %s: %s %s", v, r.Command, r.Header.Get("message"))
		}
	}
	round := 0
	f.Fuzz(func(t *testing.T, pv uint8, key, value string, body []byte) {
		round++
		v := versions[int(pv)%len(versions)]
		prod := connectAs(t, k.Addr, v)
		marker := fmt.Sprintf("marker-%d", round)
		prod.write(t, "SEND\ndestination:/topic/f\n"+key+":"+value+"\n"+
			fmt.Sprintf("content-length:%d\n\n", len(body))+string(body)+"\x00")
		markerFrame := "SEND\ndestination:/topic/f\nreceipt:" + marker + "\ncontent-length:" + fmt.Sprint(len(marker)) + "\n\n" + marker + "\x00"
		prod.write(t, markerFrame)
		// The producer's own connection may end in an ERROR: then the
		// marker goes on a new one.
		for {
			r := prod.read(t)
			if r == nil || r.Command == "ERROR" {
				prod = connectAs(t, k.Addr, v)
				prod.write(t, markerFrame)
				continue
			}
			if r.Command == "RECEIPT" && r.Header.Get("receipt-id") == marker {
				break
			}
		}
		got := make([][]*frame.Frame, len(subs))
		for i, s := range subs {
			for {
				m := s.read(t)
				if m == nil {
					t.Fatalf("STOMP %s subscriber: the broker closed the connection", s.version)
				}
				if m.Command != "MESSAGE" {
					t.Fatalf("STOMP %s subscriber: a %s frame (%q), want only MESSAGEs", s.version, m.Command, m.Header.Get("message"))
				}
				if id := m.Header.Get("subscription"); id != fmt.Sprint("s", i) {
					t.Fatalf("STOMP %s subscriber: a MESSAGE for subscription %q", s.version, id)
				}
				if d := m.Header.Get("destination"); d != "/topic/f" {
					t.Fatalf("STOMP %s subscriber: a MESSAGE for destination %q", s.version, d)
				}
				if string(m.Body) == marker {
					break
				}
				got[i] = append(got[i], m)
			}
		}
		full := got[len(got)-1] // the 1.2 subscriber's
		for i, msgs := range got[:len(got)-1] {
			ver := versions[i]
			if len(msgs) != len(full) {
				t.Fatalf("STOMP %s subscriber got %d MESSAGEs, 1.2 got %d", ver, len(msgs), len(full))
			}
			for j, m := range msgs {
				want := full[j]
				if string(m.Body) != string(want.Body) {
					t.Fatalf("STOMP %s subscriber: body %q, 1.2 got %q", ver, m.Body, want.Body)
				}
				wantHeaders := map[string]string{}
				for h := 0; h < want.Header.Len(); h++ {
					hk, hv := want.Header.GetAt(h)
					if hk == "subscription" || hk == "ack" {
						continue
					}
					if carries(ver, hk, hv) {
						if ver == "1.0" {
							// go-stomp decodes escapes in 1.0 too.
							hk, hv = lenient10.Replace(hk), lenient10.Replace(hv)
						}
						if _, dup := wantHeaders[hk]; !dup {
							wantHeaders[hk] = hv
						}
					}
				}
				gotHeaders := map[string]string{}
				for h := 0; h < m.Header.Len(); h++ {
					hk, hv := m.Header.GetAt(h)
					if hk == "subscription" {
						continue
					}
					if _, dup := gotHeaders[hk]; !dup {
						gotHeaders[hk] = hv
					}
				}
				for hk, hv := range wantHeaders {
					if gv, ok := gotHeaders[hk]; !ok || gv != hv {
						t.Fatalf("STOMP %s subscriber: header %q = %q (present %t), 1.2 got %q", ver, hk, gv, ok, hv)
					}
				}
				for hk := range gotHeaders {
					if _, ok := wantHeaders[hk]; !ok {
						t.Fatalf("STOMP %s subscriber: header %q = %q, which 1.2 did not get or %s cannot carry", ver, hk, gotHeaders[hk], ver)
					}
				}
			}
		}
	})
}

// carries reports whether a header reaches a client of version intact,
// by STOMP's rules (the broker's own copy of this rule is deliverable in
// wire.go; this one is written from the specification, for the test).
func carries(version, k, v string) bool {
	switch version {
	case "1.1":
		return !strings.ContainsRune(k+v, '\r')
	case "1.0":
		return !strings.ContainsAny(k, "\n\r:") && !strings.ContainsAny(v, "\n\r")
	}
	return true
}

// lenient10 is how go-stomp reads a header of any version, STOMP 1.0's
// (which has no escapes) included.
var lenient10 = strings.NewReplacer(`\r`, "\r", `\n`, "\n", `\c`, ":", `\\`, `\`)
