// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnmq/cairn/gateways/stomp"
)

// dialFrom connects to addr from the loopback address from (127.0.0.0/8
// is all loopback on Linux), so a test can be several hosts.
func dialFrom(t *testing.T, from, addr string) (net.Conn, error) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// connectFrom opens a STOMP 1.2 connection from address from and returns
// its reader once CONNECTED, or the ERROR's code.
func connectFrom(t *testing.T, from, addr string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	c, err := dialFrom(t, from, addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, "CONNECT\naccept-version:1.2\nhost:/\n\n\x00")
	r := bufio.NewReader(c)
	cmd, h := readFrame(t, r)
	if cmd != "CONNECTED" {
		return c, r, h["code"]
	}
	return c, r, ""
}

// refused reports whether the server answered a bare socket with an ERROR
// of code too-many-connections and closed it, within 2 s (it answers at
// once; a socket it took gets no answer before its connect timeout).
func refused(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, err := bufio.NewReader(c).ReadString(0)
	if err != nil {
		return false // still open: not answered
	}
	if !strings.HasPrefix(b, "ERROR\n") || !strings.Contains(b, "code:too-many-connections") {
		t.Errorf("a refused socket got %q", b) // (called from goroutines: no Fatal)
	}
	return true
}

// Sockets that never send CONNECT have a budget of their own, and one
// address a tenth of it: one host reopening bare sockets can lock out
// neither the clients already connected nor new clients from other
// addresses. (Before, such sockets counted towards MaxConnections: 2,000
// of them every 10 s locked every real client out.)
func TestBareSocketsCannotCrowdOut(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{MaxConnections: 5, MaxUnconnected: 20, ConnectTimeout: time.Minute})
	prod, _, code := connectFrom(t, "127.0.0.1", n.addr)
	if code != "" {
		t.Fatalf("a producer before the flood: %s", code)
	}
	cons, consR, code := connectFrom(t, "127.0.0.1", n.addr)
	if code != "" {
		t.Fatalf("a consumer before the flood: %s", code)
	}
	fmt.Fprint(cons, "SUBSCRIBE\ndestination:/queue/flood\nid:0\nack:auto\nreceipt:s\n\n\x00")
	if cmd, _ := readFrame(t, consR); cmd != "RECEIPT" {
		t.Fatalf("SUBSCRIBE: %s", cmd)
	}
	stillServed := func(what string) {
		t.Helper()
		fmt.Fprintf(prod, "SEND\ndestination:/queue/flood\n\n%s\x00", what)
		if cmd, _ := readFrame(t, consR); cmd != "MESSAGE" {
			t.Fatalf("%s: the consumer connected before it got %s", what, cmd)
		}
	}

	// One host: two of its bare sockets are taken, the rest refused.
	open := openAfter(t, n.addr, 50, func(int) string { return "127.0.0.2" })
	if open != 2 {
		t.Fatalf("one address holds %d bare sockets, want 2 (a tenth of MaxUnconnected 20)", open)
	}
	stillServed("after one host's flood")
	if _, _, code := connectFrom(t, "127.0.0.3", n.addr); code != "" {
		t.Fatalf("a new client from another address during one host's flood: %s", code)
	}

	// Many hosts fill the budget for bare sockets; more are refused, and
	// so are new clients until the flood's sockets time out (the budget
	// cannot tell them apart before their CONNECT), but not the connected.
	open = openAfter(t, n.addr, 30, func(i int) string { return fmt.Sprintf("127.0.1.%d", i+1) })
	if open != 18 {
		t.Fatalf("%d more bare sockets were taken, want 18 (MaxUnconnected 20, 2 taken)", open)
	}
	stillServed("after many hosts' flood")

	// And the budget stays full: no bare socket gets past it.
	if open := openAfter(t, n.addr, 3, func(int) string { return "127.0.0.4" }); open != 0 {
		t.Fatalf("%d bare sockets over the full budget were not refused", open)
	}
}

// openAfter opens k bare sockets, the i-th from address from(i), one after
// another, then waits for the server's answers all at once, and returns how
// many it took (did not refuse).
func openAfter(t *testing.T, addr string, k int, from func(i int) string) int {
	t.Helper()
	conns := make([]net.Conn, k)
	for i := range conns {
		c, err := dialFrom(t, from(i), addr)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	open := 0
	for _, c := range conns {
		wg.Go(func() {
			if !refused(t, c) {
				mu.Lock()
				open++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return open
}

// One source address may hold MaxPerAddress connections, connected or not.
func TestConnectionsPerAddress(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{MaxPerAddress: 3})
	for i := range 3 {
		if _, _, code := connectFrom(t, "127.0.0.5", n.addr); code != "" {
			t.Fatalf("connection %d from one address: %s", i, code)
		}
	}
	if _, _, code := connectFrom(t, "127.0.0.5", n.addr); code != "too-many-connections" {
		t.Fatalf("a fourth connection from one address: %q, want too-many-connections", code)
	}
	if _, _, code := connectFrom(t, "127.0.0.6", n.addr); code != "" {
		t.Fatalf("a connection from another address: %s", code)
	}
}

// A frame that has started must finish within the frame timeout: a SEND
// whose headers never end, or whose body comes a byte at a time, gets an
// ERROR with code frame-timeout and the connection is closed. (Before, 150
// such connections were all still open after 60 s.) Between frames the
// heart-beat (or the idle timeout) governs.
func TestFrameTimeout(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{FrameTimeout: 300 * time.Millisecond})
	for _, tc := range []struct{ name, start, drip string }{
		{"headers forever", "SEND\ndestination:/queue/slow\n", "x-h:1\n"},
		{"a body a byte at a time", "SEND\ndestination:/queue/slow\ncontent-length:100\n\n", "b"},
		{"a body without a length", "SEND\ndestination:/queue/slow\n\n", "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, r, code := connectFrom(t, "127.0.0.1", n.addr)
			if code != "" {
				t.Fatal(code)
			}
			fmt.Fprint(c, tc.start)
			began := time.Now()
			got := make(chan string, 1)
			go func() {
				cmd, h := readFrame(t, r)
				got <- cmd + " " + h["code"]
			}()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case g := <-got:
					if g != "ERROR frame-timeout" {
						t.Fatalf("got %s, want ERROR frame-timeout", g)
					}
					if d := time.Since(began); d < 300*time.Millisecond {
						t.Fatalf("cut after %v, before the 300ms frame timeout", d)
					}
					return
				case <-tick.C:
					if time.Since(began) > 5*time.Second {
						t.Fatal("still reading a frame begun 5s ago, under a 300ms frame timeout")
					}
					c.Write([]byte(tc.drip))
				}
			}
		})
	}
	// A connected client that is silent between frames is not cut by the
	// frame timeout (it negotiated no heart-beat; the idle timeout is off).
	c, r, _ := connectFrom(t, "127.0.0.1", n.addr)
	time.Sleep(600 * time.Millisecond)
	fmt.Fprint(c, "SEND\ndestination:/queue/slow\nreceipt:r\n\nlate\x00")
	if cmd, h := readFrame(t, r); cmd != "RECEIPT" {
		t.Fatalf("a client silent between frames: %s %v", cmd, h)
	}
}

// IdleTimeout closes a connected client that negotiated no heart-beat and
// sends nothing.
func TestIdleTimeout(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{IdleTimeout: 200 * time.Millisecond})
	_, r, _ := connectFrom(t, "127.0.0.1", n.addr)
	if cmd, h := readFrame(t, r); cmd != "ERROR" || h["code"] != "idle-timeout" {
		t.Fatalf("an idle client got %s %v, want ERROR idle-timeout", cmd, h)
	}
}

// The bytes of partly read frames across all connections stay within
// ReadMemory: a body that does not fit waits for another frame to finish,
// and is read once there is room; one larger than all of it is refused.
// (Before, fifty connections each stalling just short of a 10 MiB body
// held 540 MB, whatever the memory limit.)
func TestReadMemoryBudget(t *testing.T) {
	const budget = 1 << 20
	n := start(t, t.TempDir(), stomp.Options{ReadMemory: budget, FrameTimeout: 10 * time.Second,
		Limits: stomp.Limits{MaxBodyBytes: 2 << 20}})
	body := strings.Repeat("x", 700<<10)
	a, ar, _ := connectFrom(t, "127.0.0.1", n.addr)
	b, br, _ := connectFrom(t, "127.0.0.1", n.addr)
	// a's body is read part way: it holds 700 KiB of the 1 MiB.
	fmt.Fprintf(a, "SEND\ndestination:/queue/big\nreceipt:a\ncontent-length:%d\n\n%s", len(body), body[:1000])
	time.Sleep(100 * time.Millisecond)
	// b's frame does not fit beside it: b waits, and its RECEIPT comes
	// only after a's frame ends.
	fmt.Fprintf(b, "SEND\ndestination:/queue/big\nreceipt:b\ncontent-length:%d\n\n%s\x00", len(body), body)
	bDone := make(chan string, 1)
	go func() { cmd, h := readFrame(t, br); bDone <- cmd + h["receipt-id"] + h["code"] }()
	select {
	case g := <-bDone:
		t.Fatalf("a second 700 KiB body was read beside a stalled one under a 1 MiB budget: %s", g)
	case <-time.After(300 * time.Millisecond):
	}
	fmt.Fprintf(a, "%s\x00", body[1000:])
	if cmd, h := readFrame(t, ar); cmd != "RECEIPT" {
		t.Fatalf("a: %s %v", cmd, h)
	}
	if g := <-bDone; g != "RECEIPTb" {
		t.Fatalf("b, once a's frame was read: %s", g)
	}
	// Over the whole budget: refused before anything is allocated.
	c, cr, _ := connectFrom(t, "127.0.0.1", n.addr)
	fmt.Fprintf(c, "SEND\ndestination:/queue/big\ncontent-length:%d\n\n", 3<<19)
	if cmd, h := readFrame(t, cr); cmd != "ERROR" || h["code"] != "frame-too-large" {
		t.Fatalf("a 1.5 MiB body under a 1 MiB budget: %s %v", cmd, h)
	}

	// A stalled frame gives its share back when it times out: the next
	// one fits.
	n2 := start(t, t.TempDir(), stomp.Options{ReadMemory: budget, FrameTimeout: 300 * time.Millisecond})
	s, sr, _ := connectFrom(t, "127.0.0.1", n2.addr)
	fmt.Fprintf(s, "SEND\ndestination:/queue/big\ncontent-length:%d\n\nstalled", len(body))
	if cmd, h := readFrame(t, sr); cmd != "ERROR" || h["code"] != "frame-timeout" {
		t.Fatalf("a stalled body: %s %v", cmd, h)
	}
	d, dr, _ := connectFrom(t, "127.0.0.1", n2.addr)
	fmt.Fprintf(d, "SEND\ndestination:/queue/big\nreceipt:d\ncontent-length:%d\n\n%s\x00", len(body), body)
	if cmd, h := readFrame(t, dr); cmd != "RECEIPT" {
		t.Fatalf("a body after a stalled one timed out: %s %v", cmd, h)
	}
}
