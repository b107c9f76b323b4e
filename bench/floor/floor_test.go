// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package floor

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnmq/cairn/bench/brokerbench"
)

func start(t *testing.T) (*Server, string, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return s, ln.Addr().String(), dir
}

// Scenario (a) against the floor: every message receipted, written to the
// ring in order, and delivered once.
func TestScenarioA(t *testing.T) {
	s, addr, dir := start(t)
	const n = 300
	r, err := brokerbench.Run(context.Background(), brokerbench.Options{Addr: addr, Producers: 1, Consumers: 1,
		Size: 1024, Count: n, Persistent: true, Receipt: true, Destination: "/queue/a", Drain: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != n || r.Received != n || r.Lost != 0 || r.Duplicates != 0 {
		t.Fatalf("sent %d, received %d, lost %d, duplicates %d; want %d, %d, 0, 0", r.Sent, r.Received, r.Lost, r.Duplicates, n, n)
	}
	if w := s.Writes(); w != n {
		t.Fatalf("%d ring writes, want %d", w, n)
	}
	// Block i of the ring holds message i: brokerbench stamps each body
	// with its producer (bytes 8-16) and sequence (bytes 16-24).
	ring, err := os.ReadFile(filepath.Join(dir, "FLOOR-RING"))
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, n - 1} {
		b := ring[i*block:]
		if seq := binary.LittleEndian.Uint64(b[16:]); seq != uint64(i) {
			t.Fatalf("ring block %d holds message %d", i, seq)
		}
	}
	if b := ring[n*block:]; binary.LittleEndian.Uint64(b[16:]) != 0 || b[0] != 0 {
		t.Fatalf("ring block %d is written; only %d messages were sent", n, n)
	}
}

// A bad frame gets an ERROR, and the server goes on serving others.
func TestBadFrame(t *testing.T) {
	_, addr, _ := start(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("CONNECT\nno colon here\n\n\x00"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	k, _ := c.Read(buf)
	if !strings.HasPrefix(string(buf[:k]), "ERROR\n") || !strings.Contains(string(buf[:k]), "no colon") {
		t.Fatalf("a header without a colon got %q, want an ERROR", buf[:k])
	}
	r, err := brokerbench.Run(context.Background(), brokerbench.Options{Addr: addr, Producers: 1, Consumers: 1,
		Size: 64, Count: 20, Receipt: true, Destination: "/queue/b", Drain: 3 * time.Second})
	if err != nil || r.Received != 20 {
		t.Fatalf("after a bad frame: received %d of 20, %v", r.Received, err)
	}
}
