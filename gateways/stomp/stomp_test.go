// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/gateways/stomp"
	"github.com/cairnmq/cairn/internal/brokertest"
	"github.com/cairnmq/cairn/internal/interop"
	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/journaltest"
	"github.com/cairnmq/cairn/journal/wal"
)

var quiet = slog.New(slog.DiscardHandler)

// node is a broker on a journal directory with a STOMP listener on loopback.
type node struct {
	dir    string
	log    *wal.Log
	broker *core.Broker
	srv    *stomp.Server
	addr   string
}

func start(t testing.TB, dir string, opts stomp.Options) *node {
	t.Helper()
	l, err := wal.Open(dir, wal.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	b, err := core.Open(core.Options{Journal: l, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	n := &node{dir: dir, log: l, broker: b, srv: stomp.NewServer(stomp.CoreBroker(b), opts), addr: ln.Addr().String()}
	go n.srv.Serve(ln)
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	if n.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.srv.Close(ctx)
	n.broker.Close()
	n.log.Close()
	n.srv = nil
}

func dial(t *testing.T, addr string, opts ...func(*gostomp.Conn) error) *gostomp.Conn {
	t.Helper()
	opts = append([]func(*gostomp.Conn) error{gostomp.ConnOpt.UnsubscribeReceiptTimeout(2 * time.Second)}, opts...)
	c, err := gostomp.Dial("tcp", addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.MustDisconnect() })
	return c
}

// unsubscribe unsubscribes sub and waits for the broker's RECEIPT.
// go-stomp's Unsubscribe can miss the wake-up of a RECEIPT that comes back
// at once (it broadcasts its condition without holding the lock) and then
// waits out its timeout; so a timeout counts when the RECEIPT did close the
// subscription's channel. Without a RECEIPT, go-stomp puts an error on the
// channel and leaves it open.
func unsubscribe(t *testing.T, sub *gostomp.Subscription) {
	t.Helper()
	err := sub.Unsubscribe()
	if errors.Is(err, &gostomp.ErrUnsubscribeReceiptTimeout) {
		for {
			select {
			case _, ok := <-sub.C:
				if !ok {
					return // closed by the RECEIPT
				}
			case <-time.After(time.Second):
				t.Fatal(err)
			}
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

func recv(t *testing.T, sub *gostomp.Subscription) *gostomp.Message {
	t.Helper()
	select {
	case m := <-sub.C:
		if m.Err != nil {
			t.Fatalf("subscription error: %v", m.Err)
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
	}
	return nil
}

func noMessage(t *testing.T, sub *gostomp.Subscription, within time.Duration) {
	t.Helper()
	select {
	case m := <-sub.C:
		t.Fatalf("unexpected message %q (err %v)", m.Body, m.Err)
	case <-time.After(within):
	}
}

func TestQueueSendReceiveAck(t *testing.T) {
	for _, v := range []gostomp.Version{gostomp.V10, gostomp.V11, gostomp.V12} {
		t.Run(string(v), func(t *testing.T) {
			n := start(t, t.TempDir(), stomp.Options{})
			c := dial(t, n.addr, gostomp.ConnOpt.AcceptVersion(v))
			if c.Version() != v {
				t.Fatalf("negotiated %s, want %s", c.Version(), v)
			}
			for i := range 3 {
				err := c.Send("/queue/orders", "text/plain", []byte(fmt.Sprint("m", i)),
					gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true"), gostomp.SendOpt.Header("colour", "blue:green"))
				if err != nil {
					t.Fatal(err)
				}
			}
			sub, err := c.Subscribe("/queue/orders", gostomp.AckClientIndividual)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				m := recv(t, sub)
				if string(m.Body) != fmt.Sprint("m", i) {
					t.Fatalf("message %d body %q", i, m.Body)
				}
				if m.Header.Get("persistent") != "true" || m.ContentType != "text/plain" {
					t.Fatalf("headers: %v", m.Header)
				}
				if v != gostomp.V10 && m.Header.Get("colour") != "blue:green" {
					t.Fatalf("property colour = %q", m.Header.Get("colour"))
				}
				if err := c.Ack(m); err != nil {
					t.Fatal(err)
				}
			}
			// A receipted no-op makes sure the acks were processed.
			if err := c.Send("/queue/other", "text/plain", nil, gostomp.SendOpt.Receipt); err != nil {
				t.Fatal(err)
			}
			if s, _ := n.broker.QueueStats("orders"); s.Pending != 0 || s.InFlight != 0 {
				t.Fatalf("after acking all: %+v", s)
			}
		})
	}
}

// Unacknowledged messages come back, marked redelivered, when their
// consumer goes away; client acks are cumulative.
func TestRedeliveryAndCumulativeAck(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{})
	p := dial(t, n.addr)
	for i := range 4 {
		if err := p.Send("/queue/work", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatal(err)
		}
	}
	c1, err := gostomp.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := c1.Subscribe("/queue/work", gostomp.AckClient)
	var got []*gostomp.Message
	for range 4 {
		got = append(got, recv(t, sub))
	}
	if err := c1.Ack(got[1]); err != nil { // acks 0 and 1 (cumulative)
		t.Fatal(err)
	}
	c1.Disconnect()

	c2 := dial(t, n.addr)
	sub2, _ := c2.Subscribe("/queue/work", gostomp.AckClientIndividual)
	for _, want := range []string{"2", "3"} {
		m := recv(t, sub2)
		if string(m.Body) != want || m.Header.Get("redelivered") != "true" {
			t.Fatalf("redelivery: body %q redelivered %q, want %s and true", m.Body, m.Header.Get("redelivered"), want)
		}
		c2.Ack(m)
	}
	noMessage(t, sub2, 200*time.Millisecond)
}

func TestTopicFanout(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{})
	var subs []*gostomp.Subscription
	for range 3 {
		c := dial(t, n.addr)
		s, err := c.Subscribe("/topic/news", gostomp.AckAuto)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	// The subscriptions reach the topic asynchronously; a receipted frame
	// on each connection would be exact, a short wait is enough here.
	time.Sleep(100 * time.Millisecond)
	p := dial(t, n.addr)
	for i := range 5 {
		if err := p.Send("/topic/news", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range subs {
		for i := range 5 {
			if m := recv(t, s); string(m.Body) != fmt.Sprint(i) {
				t.Fatalf("topic message %d = %q", i, m.Body)
			}
		}
	}
}

func TestTransactions(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{})
	c := dial(t, n.addr)
	tx := c.Begin()
	tx.Send("/queue/tx", "text/plain", []byte("a"), gostomp.SendOpt.Header("persistent", "true"))
	tx.Send("/queue/tx", "text/plain", []byte("b"), gostomp.SendOpt.Header("persistent", "true"))
	sub, _ := c.Subscribe("/queue/tx", gostomp.AckClientIndividual)
	noMessage(t, sub, 100*time.Millisecond)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	a, b := recv(t, sub), recv(t, sub)
	if string(a.Body) != "a" || string(b.Body) != "b" {
		t.Fatalf("committed %q %q", a.Body, b.Body)
	}
	tx2 := c.Begin()
	tx2.Send("/queue/tx", "text/plain", []byte("aborted"))
	tx2.Ack(a)
	tx2.Abort()
	tx3 := c.Begin()
	tx3.Ack(a)
	tx3.Ack(b)
	if err := tx3.CommitWithReceipt(); err != nil {
		t.Fatal(err)
	}
	noMessage(t, sub, 100*time.Millisecond)
	if s, _ := n.broker.QueueStats("tx"); s.Pending != 0 || s.InFlight != 0 {
		t.Fatalf("after the commit: %+v", s)
	}
}

// raw speaks to the listener byte by byte.
func raw(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c, bufio.NewReader(c)
}

// readFrame reads one frame's command and headers (and skips its body).
func readFrame(t *testing.T, r *bufio.Reader) (string, map[string]string) {
	t.Helper()
	cmd := ""
	for cmd == "" {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading a frame: %v", err)
		}
		cmd = strings.TrimRight(line, "\r\n")
	}
	h := map[string]string{}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(line, ":")
		if _, ok := h[k]; !ok {
			h[k] = v
		}
	}
	if _, err := r.ReadString(0); err != nil {
		t.Fatal(err)
	}
	return cmd, h
}

// TestBackslashesOn10: STOMP 1.0 has no header escapes. A 1.0 client's
// backslashes are its header's own characters: a 1.0 subscriber gets them
// back as they were sent, and a 1.2 subscriber gets them escaped.
func TestBackslashesOn10(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{})
	const value = `C:\temp\n\c`
	subscribe := func(version string) *bufio.Reader {
		c, r := raw(t, n.addr)
		io.WriteString(c, "CONNECT\naccept-version:"+version+"\n\n\x00")
		if cmd, h := readFrame(t, r); cmd != "CONNECTED" || h["version"] != version {
			t.Fatalf("CONNECT %s: %s %v", version, cmd, h)
		}
		io.WriteString(c, "SUBSCRIBE\nid:s\ndestination:/topic/esc\nreceipt:r\n\n\x00")
		if cmd, _ := readFrame(t, r); cmd != "RECEIPT" {
			t.Fatalf("SUBSCRIBE: %s", cmd)
		}
		return r
	}
	r10, r12 := subscribe("1.0"), subscribe("1.2")
	c, r := raw(t, n.addr)
	io.WriteString(c, "CONNECT\naccept-version:1.0\n\n\x00")
	readFrame(t, r)
	io.WriteString(c, "SEND\ndestination:/topic/esc\nx-path:"+value+"\nreceipt:r\n\nb\x00")
	if cmd, h := readFrame(t, r); cmd != "RECEIPT" {
		t.Fatalf("SEND with backslashes on 1.0: %s %v", cmd, h)
	}
	if _, h := readFrame(t, r10); h["x-path"] != value {
		t.Errorf("the 1.0 subscriber got x-path %q, want %q as sent", h["x-path"], value)
	}
	if _, h := readFrame(t, r12); h["x-path"] != strings.NewReplacer(`\`, `\\`, ":", `\c`).Replace(value) {
		t.Errorf("the 1.2 subscriber got x-path %q, want it escaped by 1.2's rules", h["x-path"])
	}
}

// Bad input gets an ERROR frame with a stable code and the connection is
// closed; everyone else is unaffected.
func TestBadInput(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{Limits: stomp.Limits{MaxBodyBytes: 1024, MaxHeaders: 10, MaxHeaderBytes: 256}})
	good := dial(t, n.addr)
	sub, err := good.Subscribe("/queue/steady", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	const connect = "CONNECT\naccept-version:1.2\nhost:x\n\n\x00"
	cases := []struct {
		name, input, code string
	}{
		{"garbage", "\x01\x02garbage\n\n\x00", "unknown-command"},
		{"unknown command", connect + "FROB\n\n\x00", "unknown-command"},
		{"header without colon", connect + "SEND\ndestination /queue/a\n\n\x00", "malformed-frame"},
		{"missing destination", connect + "SEND\n\nbody\x00", "missing-header"},
		{"bad destination", connect + "SEND\ndestination:/elsewhere/a\n\n\x00", "bad-destination"},
		{"body over the limit by content-length", connect + "SEND\ndestination:/queue/a\ncontent-length:5000\n\n", "frame-too-large"},
		{"body over the limit without length", connect + "SEND\ndestination:/queue/a\n\n" + strings.Repeat("x", 3000) + "\x00", "frame-too-large"},
		{"too many headers", connect + "SEND\ndestination:/queue/a\n" + strings.Repeat("h:v\n", 11) + "\n\x00", "too-many-headers"},
		{"header too long", connect + "SEND\ndestination:/queue/a\nh:" + strings.Repeat("v", 400) + "\n\n\x00", "header-too-large"},
		{"send before connect", "SEND\ndestination:/queue/a\n\n\x00", "not-connected"},
		{"bad version", "CONNECT\naccept-version:2.0\n\n\x00", "bad-version"},
		{"unknown ack", connect + "ACK\nid:ID:cairn-999\n\n\x00", "unknown-ack"},
		{"bad escape", connect + "SEND\ndestination:/queue/a\nk:\\t\n\n\x00", "malformed-frame"},
		{"statistics request without reply-to", connect + "SEND\ndestination:/queue/ActiveMQ.Statistics.Destination.a\n\n\x00", "bad-header"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, r := raw(t, n.addr)
			io.WriteString(c, tc.input)
			cmd, h := readFrame(t, r)
			if cmd == "CONNECTED" {
				cmd, h = readFrame(t, r)
			}
			if cmd != "ERROR" || h["code"] != tc.code || h["message"] == "" {
				t.Fatalf("got %s %v, want ERROR with code %s", cmd, h, tc.code)
			}
			// The specification's negotiation: the versions the server speaks.
			if tc.code == "bad-version" && h["version"] != "1.0,1.1,1.2" {
				t.Fatalf("ERROR for an unsupported version has version header %q, want 1.0,1.1,1.2", h["version"])
			}
			if _, err := r.ReadByte(); err == nil {
				// Only the ERROR frame's trailing bytes may follow; then EOF.
				if _, err := io.ReadAll(r); err != nil {
					t.Fatalf("connection not closed after ERROR: %v", err)
				}
			}
		})
	}
	// The well-behaved client was never disturbed.
	p := dial(t, n.addr)
	if err := p.Send("/queue/steady", "text/plain", []byte("still here"), gostomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, sub); string(m.Body) != "still here" {
		t.Fatalf("got %q", m.Body)
	}
}

func TestConnectTimeoutAndLimit(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{ConnectTimeout: 200 * time.Millisecond, MaxConnections: 2})
	c, r := raw(t, n.addr)
	_ = c
	if cmd, h := readFrame(t, r); cmd != "ERROR" || h["code"] != "connect-timeout" {
		t.Fatalf("silent connection got %s %v", cmd, h)
	}
	for deadline := time.Now().Add(5 * time.Second); n.srv.Connections() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the timed-out connection is still counted")
		}
	}
	dial(t, n.addr)
	dial(t, n.addr)
	// MaxConnections counts connected clients: the third is refused at
	// its CONNECT.
	c3, r3 := raw(t, n.addr)
	fmt.Fprint(c3, "CONNECT\naccept-version:1.2\nhost:/\n\n\x00")
	if cmd, h := readFrame(t, r3); cmd != "ERROR" || h["code"] != "too-many-connections" {
		t.Fatalf("third connection got %s %v", cmd, h)
	}
}

func clone(t *testing.T, src string) string { return journaltest.CloneDir(t, src) }

// After a crash: acked messages stay gone, delivered and unacked ones come
// back marked redelivered, and every receipted persistent message is there
// once. Non-persistent messages are gone.
func TestCrashRecovery(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{})
	p := dial(t, n.addr)
	for i := range 10 {
		if err := p.Send("/queue/q", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Send("/queue/q", "text/plain", []byte("transient"), gostomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	c := dial(t, n.addr)
	sub, _ := c.Subscribe("/queue/q", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("activemq.prefetchSize", "5"))
	for i := range 5 {
		m := recv(t, sub)
		if i < 3 {
			if err := c.Ack(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Send("/queue/sync", "text/plain", nil, gostomp.SendOpt.Receipt); err != nil { // the acks are processed
		t.Fatal(err)
	}
	crashed := clone(t, n.dir)
	n.stop()

	n2 := start(t, crashed, stomp.Options{})
	if rec := n2.broker.Recovery(); rec.Messages != 7 {
		t.Fatalf("recovered %+v, want 7 pending persistent messages", rec)
	}
	c2 := dial(t, n2.addr)
	sub2, _ := c2.Subscribe("/queue/q", gostomp.AckClientIndividual)
	for i := 3; i < 10; i++ {
		m := recv(t, sub2)
		if string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("after the crash got %q, want %d", m.Body, i)
		}
		if i < 5 && m.Header.Get("redelivered") != "true" {
			t.Fatalf("message %d was delivered before the crash but is not marked redelivered", i)
		}
		c2.Ack(m)
	}
	noMessage(t, sub2, 200*time.Millisecond)
}

// TestStompPyInterop runs stomp.py (Debian's python3-stomp, which
// scripts/test installs) against the listener on STOMP 1.0, 1.1 and 1.2.
// Without python3-stomp it is skipped, unless CAIRN_REQUIRE_INTEROP is set
// (scripts/test and CI set it), when that is a failure.
func TestStompPyInterop(t *testing.T) {
	py := interop.Python(t)
	n := start(t, t.TempDir(), stomp.Options{})
	host, port, _ := net.SplitHostPort(n.addr)
	out, err := exec.Command(py, "testdata/interop.py", host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("stomp.py: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}

// Heart-beats: the server sends them at the interval the client asks for,
// and drops a client that goes silent for longer than its promised interval
// times the grace factor.
func TestHeartBeats(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{HeartBeat: 50 * time.Millisecond, HeartBeatGrace: 2})
	c, r := raw(t, n.addr)
	io.WriteString(c, "CONNECT\naccept-version:1.2\nhost:x\nheart-beat:100,100\nrequest-id:42\n\n\x00")
	cmd, h := readFrame(t, r)
	if cmd != "CONNECTED" || h["heart-beat"] != "100,100" || h["response-id"] != "42" || h["version"] != "1.2" {
		t.Fatalf("got %s %v, want CONNECTED with heart-beat 100,100, response-id 42, version 1.2", cmd, h)
	}
	// The server's heart-beats (bare EOLs) arrive while we stay silent, and
	// after about 200ms of silence it gives up on us.
	start := time.Now()
	beats := 0
	for {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatalf("connection ended without an ERROR after %d heart-beats: %v", beats, err)
		}
		if b == '\n' {
			beats++
			continue
		}
		r.UnreadByte()
		break
	}
	cmd, h = readFrame(t, r)
	if cmd != "ERROR" || h["code"] != "heartbeat-timeout" {
		t.Fatalf("got %s %v, want ERROR heartbeat-timeout", cmd, h)
	}
	if beats == 0 {
		t.Fatal("no heart-beats from the server")
	}
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Fatalf("dropped after %v, before the 200ms grace", el)
	}
}

// NACK redelivers (marked redelivered), UNSUBSCRIBE stops deliveries,
// subscription ids are checked, and DISCONNECT is receipted.
func TestNackUnsubscribeDisconnect(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{})
	c := dial(t, n.addr)
	if err := c.Send("/queue/n", "text/plain", []byte("again"), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe("/queue/n", gostomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	m := recv(t, sub)
	if err := c.Nack(m); err != nil {
		t.Fatal(err)
	}
	m = recv(t, sub)
	if string(m.Body) != "again" || m.Header.Get("redelivered") != "true" {
		t.Fatalf("after NACK: %q redelivered=%q", m.Body, m.Header.Get("redelivered"))
	}
	c.Ack(m)
	unsubscribe(t, sub)
	c.Send("/queue/n", "text/plain", []byte("later"), gostomp.SendOpt.Receipt)
	if st, _ := n.broker.QueueStats("n"); st.Consumers != 0 || st.Pending != 1 {
		t.Fatalf("after UNSUBSCRIBE: %+v", st)
	}

	raw1, r := raw(t, n.addr)
	io.WriteString(raw1, "CONNECT\naccept-version:1.2\nhost:x\n\n\x00"+
		"SUBSCRIBE\nid:s1\ndestination:/queue/x\n\n\x00"+
		"UNSUBSCRIBE\nid:nope\n\n\x00")
	readFrame(t, r) // CONNECTED
	if cmd, h := readFrame(t, r); cmd != "ERROR" || h["code"] != "unknown-subscription" {
		t.Fatalf("UNSUBSCRIBE of an unknown id: %s %v", cmd, h)
	}
	raw2, r2 := raw(t, n.addr)
	io.WriteString(raw2, "CONNECT\naccept-version:1.2\nhost:x\n\n\x00"+
		"SUBSCRIBE\nid:s1\ndestination:/queue/x\n\n\x00"+
		"SUBSCRIBE\nid:s1\ndestination:/queue/y\nreceipt:r2\n\n\x00")
	readFrame(t, r2)
	if cmd, h := readFrame(t, r2); cmd != "ERROR" || h["code"] != "duplicate-subscription" || h["receipt-id"] != "r2" {
		t.Fatalf("a second subscription with the same id: %s %v", cmd, h)
	}
	raw3, r3 := raw(t, n.addr)
	io.WriteString(raw3, "CONNECT\naccept-version:1.2\nhost:x\n\n\x00DISCONNECT\nreceipt:bye\n\n\x00")
	readFrame(t, r3)
	if cmd, h := readFrame(t, r3); cmd != "RECEIPT" || h["receipt-id"] != "bye" {
		t.Fatalf("DISCONNECT: %s %v", cmd, h)
	}
	if _, err := r3.ReadByte(); err == nil {
		if _, err := io.ReadAll(r3); err != nil {
			t.Fatalf("connection open after DISCONNECT: %v", err)
		}
	}
}

// With the broker's persistent-by-default option, a SEND without a
// persistent header is journaled and survives a restart.
func TestPersistentByDefault(t *testing.T) {
	dir := t.TempDir()
	k := brokertest.Start(t, brokertest.Options{Dir: dir, Core: core.Options{PersistentByDefault: true}})
	c, err := gostomp.Dial("tcp", k.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Send("/queue/p", "text/plain", []byte("kept"), gostomp.SendOpt.Receipt)
	c.Send("/queue/p", "text/plain", []byte("not kept"), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "false"))
	c.Disconnect()
	k.Stop()
	n := start(t, dir, stomp.Options{})
	if rec := n.broker.Recovery(); rec.Messages != 1 {
		t.Fatalf("after a restart %d messages, want the 1 sent without a persistent header", rec.Messages)
	}
}

// TestPriorities: STOMP priority headers order a queue strictly, and
// activemq.priority ranks consumers.
func TestPriorities(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{})
	c := dial(t, n.addr)
	for i, p := range []string{"1", "9", "4", "9", "0", "5"} {
		if err := c.Send("/queue/prio", "text/plain", []byte(fmt.Sprint(i, "-p", p)), gostomp.SendOpt.Receipt,
			gostomp.SendOpt.Header("priority", p), gostomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := c.Subscribe("/queue/prio", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 6 {
		got = append(got, string((<-sub.C).Body))
	}
	if want := "[1-p9 3-p9 5-p5 2-p4 0-p1 4-p0]"; fmt.Sprint(got) != want {
		t.Fatalf("order %v, want %s", got, want)
	}
	if _, err := c.Subscribe("/queue/x", gostomp.AckAuto, gostomp.SubscribeOpt.Header("activemq.priority", "high")); err != nil {
		t.Fatal(err) // go-stomp learns of the ERROR later
	}
	if m := <-sub.C; m == nil || m.Err == nil || !strings.Contains(m.Err.Error(), "activemq.priority") {
		t.Fatalf("a bad activemq.priority: %v", m)
	}
}

// TestCompositeSend: a SEND to "/queue/a,/queue/b,/topic/c" reaches each.
func TestCompositeSend(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{})
	c := dial(t, n.addr)
	topic, err := c.Subscribe("/topic/comp.c", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send("/queue/comp.a, /queue/comp.b,/topic/comp.c", "text/plain", []byte("x"), gostomp.SendOpt.Receipt,
		gostomp.SendOpt.Header("persistent", "true")); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"/queue/comp.a", "/queue/comp.b"} {
		sub, err := c.Subscribe(q, gostomp.AckAuto)
		if err != nil {
			t.Fatal(err)
		}
		if m := <-sub.C; m.Err != nil || string(m.Body) != "x" || m.Destination != q {
			t.Fatalf("%s: %v %q %s", q, m.Err, m.Body, m.Destination)
		}
	}
	if m := <-topic.C; m.Err != nil || string(m.Body) != "x" {
		t.Fatalf("topic: %v %q", m.Err, m.Body)
	}
	if err := c.Send("/queue/ok,nowhere", "text/plain", nil, gostomp.SendOpt.Receipt); err == nil {
		t.Fatal("a composite with a bad part was accepted")
	}
}

// TestBrowse: SUBSCRIBE with browser:true shows a queue's messages in
// dispatch order, takes none, and ends with browser:end.
func TestBrowse(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{})
	c := dial(t, n.addr)
	for i, p := range []string{"4", "9", "4"} {
		if err := c.Send("/queue/br", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Receipt,
			gostomp.SendOpt.Header("priority", p), gostomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 { // browsing twice shows the same
		sub, err := c.Subscribe("/queue/br", gostomp.AckAuto, gostomp.SubscribeOpt.Header("browser", "true"))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			m := <-sub.C
			if m.Err != nil {
				t.Fatal(m.Err)
			}
			if m.Header.Get("browser") == "end" {
				break
			}
			got = append(got, string(m.Body))
		}
		if fmt.Sprint(got) != "[1 0 2]" {
			t.Fatalf("browsed %v, want [1 0 2]", got)
		}
		unsubscribe(t, sub)
	}
	if st, _ := n.broker.QueueStats("br"); st.Pending != 3 {
		t.Fatalf("after browsing: %+v", st)
	}
}

// TestTempDestinationsAndNoLocal: request/reply over a temporary queue
// named in reply-to, which is gone when its connection ends; a noLocal
// topic subscriber does not get its own connection's messages.
func TestTempDestinationsAndNoLocal(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{})
	requester, err := gostomp.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	replies, err := requester.Subscribe("/temp-queue/replies", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	if err := requester.Send("/queue/requests", "text/plain", []byte("ping"), gostomp.SendOpt.Receipt,
		gostomp.SendOpt.Header("reply-to", "/temp-queue/replies")); err != nil {
		t.Fatal(err)
	}
	server := dial(t, n.addr)
	reqs, _ := server.Subscribe("/queue/requests", gostomp.AckAuto)
	req := <-reqs.C
	replyTo := req.Header.Get("reply-to")
	if !strings.HasPrefix(replyTo, "/remote-temp-queue/") {
		t.Fatalf("reply-to arrived as %q", replyTo)
	}
	if err := server.Send(replyTo, "text/plain", []byte("pong"), gostomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	if m := <-replies.C; m.Err != nil || string(m.Body) != "pong" || m.Destination != "/temp-queue/replies" {
		t.Fatalf("reply: %v %q %s", m.Err, m.Body, m.Destination)
	}
	requester.Disconnect()
	deadline := time.Now().Add(5 * time.Second)
	for {
		temps := 0
		for _, q := range n.broker.Queues() {
			if strings.HasPrefix(q.Destination.Name, "$temp:") {
				temps++
			}
		}
		if temps == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d temporary queues outlived their connection", temps)
		}
		time.Sleep(10 * time.Millisecond)
	}

	a, b := dial(t, n.addr), dial(t, n.addr)
	chat, err := a.Subscribe("/topic/chat", gostomp.AckAuto, gostomp.SubscribeOpt.Header("activemq.noLocal", "true"))
	if err != nil {
		t.Fatal(err)
	}
	a.Send("/topic/chat", "text/plain", []byte("mine"), gostomp.SendOpt.Receipt)
	b.Send("/topic/chat", "text/plain", []byte("theirs"), gostomp.SendOpt.Receipt)
	if m := <-chat.C; string(m.Body) != "theirs" {
		t.Fatalf("a noLocal subscriber got %q", m.Body)
	}
}

// TestTopicWildcards: "*" matches one segment, ">" the rest; MESSAGE frames
// name the topic each message was published to.
func TestTopicWildcards(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{})
	c := dial(t, n.addr)
	all, _ := c.Subscribe("/topic/prices.>", gostomp.AckAuto)
	one, _ := c.Subscribe("/topic/prices.*.eur", gostomp.AckAuto)
	for _, topic := range []string{"/topic/prices.gold.eur", "/topic/prices.gold.usd", "/topic/news.gold"} {
		if err := c.Send(topic, "text/plain", []byte(topic), gostomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"/topic/prices.gold.eur", "/topic/prices.gold.usd"} {
		if m := <-all.C; m.Destination != want || string(m.Body) != want {
			t.Fatalf("prices.> got %q on %s, want %s", m.Body, m.Destination, want)
		}
	}
	if m := <-one.C; m.Destination != "/topic/prices.gold.eur" {
		t.Fatalf("prices.*.eur got %s", m.Destination)
	}
	select {
	case m := <-one.C:
		t.Fatalf("prices.*.eur also got %s", m.Destination)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestQueueWildcards: a wildcard queue subscription consumes from every
// matching queue, those there before and those made after; MESSAGE frames
// name the queue; ACKs reach the right queue; UNSUBSCRIBE ends it all.
func TestQueueWildcards(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{})
	c := dial(t, n.addr)
	send := func(q, body string) {
		t.Helper()
		if err := c.Send(q, "text/plain", []byte(body), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatal(err)
		}
	}
	send("/queue/orders.eu", "eu-1")
	send("/queue/orders.eu.late", "not matched")
	sub, err := c.Subscribe("/queue/orders.*", gostomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	next := func() *gostomp.Message {
		t.Helper()
		select {
		case m := <-sub.C:
			if m.Err != nil {
				t.Fatal(m.Err)
			}
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("no delivery")
		}
		return nil
	}
	if m := next(); string(m.Body) != "eu-1" || m.Destination != "/queue/orders.eu" {
		t.Fatalf("got %q on %s", m.Body, m.Destination)
	} else if err := c.Ack(m); err != nil {
		t.Fatal(err)
	}
	send("/queue/orders.us", "us-1") // a queue made after the SUBSCRIBE
	m := next()
	if string(m.Body) != "us-1" || m.Destination != "/queue/orders.us" {
		t.Fatalf("got %q on %s", m.Body, m.Destination)
	}
	if err := c.Ack(m); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		eu, _ := n.broker.QueueStats("orders.eu")
		us, _ := n.broker.QueueStats("orders.us")
		if eu.Depth() == 0 && us.Depth() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acks did not reach their queues: %+v %+v", eu, us)
		}
		time.Sleep(10 * time.Millisecond)
	}
	unsubscribe(t, sub)
	send("/queue/orders.eu", "eu-2")
	if st, _ := n.broker.QueueStats("orders.eu"); st.Consumers != 0 {
		t.Fatalf("after UNSUBSCRIBE: %+v", st)
	}
	if st, _ := n.broker.QueueStats("orders.eu.late"); st.Pending != 1 {
		t.Fatalf("orders.eu.late: %+v", st)
	}
}

// TestExclusiveAndGroupsOverSTOMP: activemq.exclusive and JMSXGroupID
// through real connections.
func TestExclusiveAndGroupsOverSTOMP(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{})
	p := dial(t, n.addr)
	a, b := dial(t, n.addr), dial(t, n.addr)
	ex, _ := a.Subscribe("/queue/ex", gostomp.AckAuto, gostomp.SubscribeOpt.Header("activemq.exclusive", "true"))
	other, _ := b.Subscribe("/queue/ex", gostomp.AckAuto)
	// SUBSCRIBE gets no answer: a receipted frame after it on each
	// connection means the broker has it.
	for _, c := range []*gostomp.Conn{a, b} {
		if err := c.Send("/queue/sync", "text/plain", nil, gostomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		p.Send("/queue/ex", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Receipt)
	}
	for i := range 5 {
		if m := <-ex.C; string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("exclusive consumer got %q", m.Body)
		}
	}
	select {
	case m := <-other.C:
		t.Fatalf("the non-exclusive consumer got %q", m.Body)
	case <-time.After(100 * time.Millisecond):
	}

	g1, _ := a.Subscribe("/queue/grp", gostomp.AckAuto)
	g2, _ := b.Subscribe("/queue/grp", gostomp.AckAuto)
	for _, c := range []*gostomp.Conn{a, b} {
		if err := c.Send("/queue/sync", "text/plain", nil, gostomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		group := fmt.Sprint("g", i%4)
		p.Send("/queue/grp", "text/plain", []byte(fmt.Sprint(group, "-", i)), gostomp.SendOpt.Receipt,
			gostomp.SendOpt.Header("JMSXGroupID", group))
	}
	owner := map[string]int{}
	for got := 0; got < 20; got++ {
		var m *gostomp.Message
		who := 0
		select {
		case m = <-g1.C:
			who = 1
		case m = <-g2.C:
			who = 2
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of 20 group messages", got)
		}
		g := m.Header.Get("JMSXGroupID")
		if o, ok := owner[g]; ok && o != who {
			t.Fatalf("group %s went to consumers %d and %d", g, o, who)
		}
		owner[g] = who
	}
}

// A SUBSCRIBE's RECEIPT means the subscription is registered: a topic
// message sent by anyone once the RECEIPT is in reaches it. And the RECEIPT
// comes before any MESSAGE of the new subscription, even when a queue has
// messages waiting. (The RECEIPT once went out before the subscription
// was made, and a busy broker lost the first topic messages.)
func TestSubscribeReceiptMeansSubscribed(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{})
	const connect = "CONNECT\naccept-version:1.2\nhost:x\n\n\x00"
	sub, sr := raw(t, n.addr)
	pub, pr := raw(t, n.addr)
	for _, c := range []net.Conn{sub, pub} {
		io.WriteString(c, connect)
	}
	for _, r := range []*bufio.Reader{sr, pr} {
		if cmd, h := readFrame(t, r); cmd != "CONNECTED" {
			t.Fatalf("CONNECT: %s %v", cmd, h)
		}
	}
	const rounds = 200
	pub.SetDeadline(time.Now().Add(20 * time.Second))
	for i := range rounds {
		fmt.Fprintf(sub, "SUBSCRIBE\nid:%d\ndestination:/topic/r%d\nreceipt:s%d\n\n\x00", i, i, i)
		if cmd, h := readFrame(t, sr); cmd != "RECEIPT" || h["receipt-id"] != fmt.Sprintf("s%d", i) {
			t.Fatalf("round %d: want the SUBSCRIBE's RECEIPT, got %s %v", i, cmd, h)
		}
		fmt.Fprintf(pub, "SEND\ndestination:/topic/r%d\nreceipt:p%d\n\nm%d\x00", i, i, i)
		if cmd, h := readFrame(t, pr); cmd != "RECEIPT" {
			t.Fatalf("round %d: SEND: %s %v", i, cmd, h)
		}
		sub.SetReadDeadline(time.Now().Add(2 * time.Second))
		if cmd, h := readFrame(t, sr); cmd != "MESSAGE" || h["subscription"] != fmt.Sprint(i) {
			t.Fatalf("round %d: the topic message sent after the RECEIPT: got %s %v", i, cmd, h)
		}
	}
	// A queue with messages waiting: RECEIPT first, then the MESSAGEs.
	sub.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range 3 {
		fmt.Fprintf(pub, "SEND\ndestination:/queue/waiting\nreceipt:q%d\n\nq%d\x00", i, i)
		if cmd, _ := readFrame(t, pr); cmd != "RECEIPT" {
			t.Fatalf("SEND to the queue: %s", cmd)
		}
	}
	io.WriteString(sub, "SUBSCRIBE\nid:q\ndestination:/queue/waiting\nreceipt:sq\n\n\x00")
	if cmd, h := readFrame(t, sr); cmd != "RECEIPT" || h["receipt-id"] != "sq" {
		t.Fatalf("want the RECEIPT before the waiting MESSAGEs, got %s %v", cmd, h)
	}
	for i := range 3 {
		if cmd, h := readFrame(t, sr); cmd != "MESSAGE" || h["subscription"] != "q" {
			t.Fatalf("waiting message %d: got %s %v", i, cmd, h)
		}
	}
}

// smallSendBuffers makes every accepted connection's send buffer small,
// so that a client that does not read fills it quickly.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// startSmallBuffers starts a broker on a journal that never syncs (these
// tests are about sockets, not disks) behind a listener whose connections
// have small send buffers.
func startSmallBuffers(t *testing.T) (addr string, b *core.Broker) {
	t.Helper()
	k := brokertest.Start(t, brokertest.Options{Journal: wal.Options{Sync: journal.SyncNever},
		Wrap: func(ln net.Listener) net.Listener { return smallSendBuffers{ln} }})
	return k.Addr, k.Core
}

// connectRaw opens a raw connection to addr and CONNECTs with STOMP 1.2.
func connectRaw(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, r := raw(t, addr)
	io.WriteString(c, "CONNECT\naccept-version:1.2\nhost:x\n\n\x00")
	if cmd, h := readFrame(t, r); cmd != "CONNECTED" {
		t.Fatalf("CONNECT: %s %v", cmd, h)
	}
	return c, r
}

// A producer that sends receipted SENDs and never reads its RECEIPTs fills
// its socket; that holds up only itself: its queue still takes a new
// consumer, which gets the queue's messages.
func TestUnreadReceiptsHoldOnlyTheirConnection(t *testing.T) {
	addr, _ := startSmallBuffers(t)
	dial := func() (net.Conn, *bufio.Reader) { return connectRaw(t, addr) }
	// Three such producers, each on its own queue: the RECEIPT a broker
	// gets stuck writing may be one written while the message's queue is
	// held for its dispatch (the case this is about), or not, depending on
	// timing.
	const queues = 3
	for q := range queues {
		deaf, _ := dial()
		defer deaf.Close() // before the broker stops: its writer waits on this socket
		deaf.(*net.TCPConn).SetReadBuffer(4096)
		// 3,000 receipted SENDs, never reading a RECEIPT: about 75 KB of
		// RECEIPTs, far more than the two small socket buffers hold.
		var flood bytes.Buffer
		for i := range 3000 {
			fmt.Fprintf(&flood, "SEND\ndestination:/queue/shared%d\npersistent:true\nreceipt:%d\n\nx\x00", q, i)
		}
		go func() {
			deaf.SetWriteDeadline(time.Now().Add(5 * time.Second))
			deaf.Write(flood.Bytes())
		}()
	}
	time.Sleep(300 * time.Millisecond) // the broker takes what it can meanwhile
	for q := range queues {
		c, cr := dial()
		defer c.Close() // before the broker stops: it has more to write to this one
		c.SetDeadline(time.Now().Add(3 * time.Second))
		fmt.Fprintf(c, "SUBSCRIBE\nid:0\ndestination:/queue/shared%d\nack:auto\nreceipt:sub\n\n\x00", q)
		if cmd, h := readFrame(t, cr); cmd != "RECEIPT" {
			t.Fatalf("a new consumer of queue %d: %s %v", q, cmd, h)
		}
		for i := range 100 {
			if cmd, h := readFrame(t, cr); cmd != "MESSAGE" {
				t.Fatalf("queue %d, message %d: %s %v", q, i, cmd, h)
			}
		}
	}
}

// A consumer that stops reading fills its socket; the producer, whose
// goroutine writes the consumer's MESSAGEs itself when it can (flushNow),
// is not held up by it: every SEND still gets its RECEIPT. Once the
// consumer reads again it gets every message, whole and in order, and its
// auto acks empty the queue.
func TestDeafConsumerHoldsOnlyItself(t *testing.T) {
	addr, b := startSmallBuffers(t)
	dial := func() (net.Conn, *bufio.Reader) {
		c, r := connectRaw(t, addr)
		c.SetDeadline(time.Now().Add(20 * time.Second))
		return c, r
	}
	deaf, dr := dial()
	defer deaf.Close()
	deaf.(*net.TCPConn).SetReadBuffer(4096)
	io.WriteString(deaf, "SUBSCRIBE\nid:0\ndestination:/queue/deaf\nack:auto\nreceipt:s\n\n\x00")
	if cmd, h := readFrame(t, dr); cmd != "RECEIPT" {
		t.Fatalf("SUBSCRIBE: %s %v", cmd, h)
	}
	// 500 KiB of messages, far more than the consumer's small socket
	// buffers hold; each SEND waits for its RECEIPT.
	const n = 500
	body := strings.Repeat("x", 1024)
	p, pr := dial()
	p.SetDeadline(time.Now().Add(10 * time.Second))
	for i := range n {
		fmt.Fprintf(p, "SEND\ndestination:/queue/deaf\npersistent:true\nseq:%d\nreceipt:%d\n\n%s\x00", i, i, body)
		if cmd, h := readFrame(t, pr); cmd != "RECEIPT" || h["receipt-id"] != fmt.Sprint(i) {
			t.Fatalf("SEND %d: %s %v", i, cmd, h)
		}
	}
	deaf.(*net.TCPConn).SetReadBuffer(1 << 20) // reading again, at full speed
	for i := range n {
		cmd, h := readFrame(t, dr)
		if cmd != "MESSAGE" || h["seq"] != fmt.Sprint(i) || h["content-length"] != "1024" {
			t.Fatalf("message %d: %s %v", i, cmd, h)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		s, _ := b.QueueStats("deaf")
		if s.Depth() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue still holds %+v after every message was read (auto acks lost)", s)
		}
	}
}
