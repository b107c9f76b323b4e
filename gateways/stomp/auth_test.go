// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp_test

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/cairnmq/cairn/gateways/auth"
	"github.com/cairnmq/cairn/gateways/stomp"
)

func usersFile(t *testing.T, users ...string) *auth.Users {
	t.Helper()
	content := "users:\n"
	for i := 0; i+1 < len(users); i += 2 {
		h, err := auth.Hash(users[i+1])
		if err != nil {
			t.Fatal(err)
		}
		content += "  " + users[i] + ":\n    password: " + h + "\n"
	}
	p := filepath.Join(t.TempDir(), "users.yaml")
	os.WriteFile(p, []byte(content), 0o600)
	u, err := auth.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestLogins: with users, CONNECT needs a good login and passcode (go-stomp
// clients); a bad one gets ERROR bad-credentials naming the user and not
// the passcode, and repeated failures from one address are slowed down;
// anonymous clients only with AllowAnonymous.
func TestLogins(t *testing.T) {
	users := usersFile(t, "alice", "s3cret")
	n := start(t, t.TempDir(), stomp.Options{Users: users})
	c, err := gostomp.Dial("tcp", n.addr, gostomp.ConnOpt.Login("alice", "s3cret"))
	if err != nil {
		t.Fatalf("a good login: %v", err)
	}
	c.Disconnect()
	for _, bad := range [][2]string{{"alice", "wrong"}, {"mallory", "s3cret"}, {"", ""}} {
		_, err := gostomp.Dial("tcp", n.addr, gostomp.ConnOpt.Login(bad[0], bad[1]))
		if err == nil {
			t.Fatalf("CONNECT as %q/%q was taken", bad[0], bad[1])
		}
		if bad[1] != "" && strings.Contains(err.Error(), bad[1]) {
			t.Errorf("the ERROR shows the passcode: %v", err)
		}
	}
	// The raw ERROR: its code, and the connection closed after it.
	conn, r := raw(t, n.addr)
	conn.Write([]byte("CONNECT\naccept-version:1.2\nlogin:alice\npasscode:nope\n\n\x00"))
	cmd, h := readFrame(t, r)
	if cmd != "ERROR" || h["code"] != "bad-credentials" || !strings.Contains(h["message"], "alice") {
		t.Fatalf("a bad login got %s %v", cmd, h)
	}
	// Four failures from this address so far: the next ones wait.
	start := time.Now()
	if _, err := gostomp.Dial("tcp", n.addr, gostomp.ConnOpt.Login("alice", "nope")); err == nil {
		t.Fatal("a bad login was taken")
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Errorf("the fifth failure in a row was answered after %s, not slowed down", waited)
	}

	anon := start2(t, stomp.Options{Users: users, AllowAnonymous: true})
	c, err = gostomp.Dial("tcp", anon)
	if err != nil {
		t.Fatalf("anonymous with AllowAnonymous: %v", err)
	}
	c.Disconnect()
}

func start2(t *testing.T, o stomp.Options) string { return start(t, t.TempDir(), o).addr }

// TestClientIDInUse: a second connection with a client-id already
// connected is refused (ActiveMQ's InvalidClientIDException); once the
// first goes, the id is free again.
func TestClientIDInUse(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{})
	first, err := gostomp.Dial("tcp", n.addr, gostomp.ConnOpt.Header("client-id", "orders-app"))
	if err != nil {
		t.Fatal(err)
	}
	conn, r := raw(t, n.addr)
	conn.Write([]byte("CONNECT\naccept-version:1.2\nclient-id:orders-app\n\n\x00"))
	if cmd, h := readFrame(t, r); cmd != "ERROR" || h["code"] != "client-id-in-use" {
		t.Fatalf("a second orders-app got %s %v", cmd, h)
	}
	first.Disconnect()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := gostomp.Dial("tcp", n.addr, gostomp.ConnOpt.Header("client-id", "orders-app"))
		if err == nil {
			c.Disconnect()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orders-app after the first disconnected: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAuthorization: ActiveMQ's entries (read, write, admin by queue or
// topic pattern, for groups): allowed operations work, denied ones get
// ERROR access-denied naming the user, the operation and the destination,
// and a denied SEND stores nothing (a composite one, none of its parts);
// wildcard subscriptions need an entry covering the pattern; temporary
// destinations are their owner's; anonymous clients are group anonymous.
func TestAuthorization(t *testing.T) {
	hash := func(pw string) string { h, _ := auth.Hash(pw); return h }
	p := filepath.Join(t.TempDir(), "users.yaml")
	os.WriteFile(p, []byte(`users:
  alice:
    password: `+hash("a")+`
    groups: [orders]
  bob:
    password: `+hash("b")+`
    groups: [shop]
authorization:
  - queue: orders.>
    read: [orders]
    write: [orders]
  - queue: orders.new
    write: [shop]
  - topic: prices.>
    read: [anonymous, orders]
`), 0o600)
	users, err := auth.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	n := start(t, t.TempDir(), stomp.Options{Users: users, AllowAnonymous: true})
	login := func(user, pw string) (net.Conn, *bufio.Reader) {
		c, r := raw(t, n.addr)
		io.WriteString(c, "CONNECT\naccept-version:1.2\nlogin:"+user+"\npasscode:"+pw+"\n\n\x00")
		if cmd, h := readFrame(t, r); cmd != "CONNECTED" {
			t.Fatalf("%s: %s %v", user, cmd, h)
		}
		return c, r
	}
	expect := func(who string, c net.Conn, r *bufio.Reader, frameText, want, message string) {
		t.Helper()
		io.WriteString(c, frameText)
		cmd, h := readFrame(t, r)
		msg := strings.ReplaceAll(h["message"], `\c`, ":") // readFrame does not unescape
		if want == "RECEIPT" && cmd != "RECEIPT" || want != "RECEIPT" && (cmd != "ERROR" || h["code"] != want || !strings.Contains(msg, message)) {
			t.Fatalf("%s: %q got %s %v, want %s %q", who, frameText, cmd, h, want, message)
		}
	}
	c, r := login("alice", "a")
	expect("alice", c, r, "SEND\ndestination:/queue/orders.eu\npersistent:true\nreceipt:1\n\nx\x00", "RECEIPT", "")
	expect("alice", c, r, "SUBSCRIBE\nid:2\ndestination:/temp-queue/mine\nreceipt:3\n\n\x00", "RECEIPT", "")
	expect("alice", c, r, "SUBSCRIBE\nid:1\ndestination:/queue/orders.>\nreceipt:2\n\n\x00", "RECEIPT", "")
	c, r = login("alice", "a")
	expect("alice", c, r, "SEND\ndestination:/queue/other\nreceipt:4\n\nx\x00", "access-denied", "User alice is not authorized to write to: queue://other")

	c, r = login("bob", "b")
	expect("bob", c, r, "SEND\ndestination:/queue/orders.new\npersistent:true\nreceipt:1\n\nx\x00", "RECEIPT", "")
	expect("bob", c, r, "SEND\ndestination:/queue/orders.new,/queue/orders.eu\npersistent:true\nreceipt:2\n\nx\x00", "access-denied", "queue://orders.eu")
	c, r = login("bob", "b")
	expect("bob", c, r, "SUBSCRIBE\nid:1\ndestination:/queue/orders.new\nreceipt:1\n\n\x00", "access-denied", "User bob is not authorized to read from: queue://orders.new")

	c, r = raw(t, n.addr)
	io.WriteString(c, "CONNECT\naccept-version:1.2\n\n\x00")
	readFrame(t, r)
	expect("anonymous", c, r, "SUBSCRIBE\nid:1\ndestination:/topic/prices.eur\nreceipt:1\n\n\x00", "RECEIPT", "")
	expect("anonymous", c, r, "SEND\ndestination:/topic/prices.eur\nreceipt:2\n\nx\x00", "access-denied", "User anonymous is not authorized to write to: topic://prices.eur")

	// What was allowed is stored; the denied composite stored nothing.
	if st, _ := n.broker.QueueStats("orders.new"); st.Enqueued != 1 { // (alice's orders.> may have taken it)
		t.Fatalf("orders.new was sent %d messages, want bob's one allowed SEND", st.Enqueued)
	}
}

// TestDurableBelongsToItsUser: over STOMP, a durable subscription alice
// made cannot be taken or removed by bob under the same client-id.
func TestDurableBelongsToItsUser(t *testing.T) {
	users := usersFile(t, "alice", "a", "bob", "b")
	n := start(t, t.TempDir(), stomp.Options{Users: users})
	c, r := raw(t, n.addr)
	io.WriteString(c, "CONNECT\naccept-version:1.2\nlogin:alice\npasscode:a\nclient-id:billing\n\n\x00")
	readFrame(t, r)
	io.WriteString(c, "SUBSCRIBE\nid:1\ndestination:/topic/invoices\nactivemq.subscriptionName:all\nreceipt:1\n\n\x00DISCONNECT\nreceipt:2\n\n\x00")
	if cmd, _ := readFrame(t, r); cmd != "RECEIPT" {
		t.Fatalf("alice's durable SUBSCRIBE: %s", cmd)
	}
	readFrame(t, r)
	for _, f := range []string{
		"SUBSCRIBE\nid:1\ndestination:/topic/invoices\nactivemq.subscriptionName:all\nreceipt:1\n\n\x00",
		"UNSUBSCRIBE\nid:1\nactivemq.subscriptionName:all\nreceipt:1\n\n\x00",
	} {
		c, r := raw(t, n.addr)
		io.WriteString(c, "CONNECT\naccept-version:1.2\nlogin:bob\npasscode:b\nclient-id:billing\n\n\x00")
		if cmd, h := readFrame(t, r); cmd != "CONNECTED" {
			t.Fatalf("bob: %s %v", cmd, h)
		}
		io.WriteString(c, f)
		if cmd, h := readFrame(t, r); cmd != "ERROR" || h["code"] != "access-denied" {
			t.Fatalf("bob's %q got %s %v", strings.SplitN(f, "\n", 2)[0], cmd, h)
		}
	}
}
