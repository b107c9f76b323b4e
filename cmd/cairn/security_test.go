// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/cairnmq/cairn/internal/certtest"
	"github.com/cairnmq/cairn/internal/interop"
)

// TestSafeByDefault: with no users file, cairn serve and cairn gateway
// refuse an address other than loopback, naming the flag that allows it;
// --allow-anonymous does.
func TestSafeByDefault(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--listen", "0.0.0.0:0", "--data", t.TempDir()},
		{"gateway", "--listen", ":0", "--upstream", "127.0.0.1:1"},
	} {
		out, err := exec.Command(binary(t), args...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitUsage || !strings.Contains(string(out), "--allow-anonymous") || !strings.Contains(string(out), "--users") {
			t.Fatalf("cairn %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	p := launch(t, "", "serve", "--listen", "0.0.0.0:0", "--data", t.TempDir(), "--allow-anonymous")
	p.waitLog(t, "cairn listening", 30*time.Second)
}

// TestUsersReloadOnSIGHUP: cairn serve --users: a good login works, a bad
// one is refused; after the file gains a user and SIGHUP, the new user logs
// in and the connection made before is still up. A file that no longer
// parses is not taken, and the users before stay.
func TestUsersReloadOnSIGHUP(t *testing.T) {
	hash := func(pw string) string {
		cmd := exec.Command(binary(t), "passwd")
		cmd.Stdin = strings.NewReader(pw + "\n")
		out, err := cmd.Output()
		if err != nil || !strings.HasPrefix(string(out), "$2a$") {
			t.Fatalf("cairn passwd: %v %q", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	file := filepath.Join(t.TempDir(), "users.yaml")
	os.WriteFile(file, []byte("users:\n  alice:\n    password: "+hash("pw-alice-4711")+"\n"), 0o600)
	p := startServe(t, t.TempDir(), "--users", file)
	alice, err := gostomp.Dial("tcp", p.addr, gostomp.ConnOpt.Login("alice", "pw-alice-4711"))
	if err != nil {
		t.Fatalf("alice: %v", err)
	}
	defer alice.Disconnect()
	if c, err := gostomp.Dial("tcp", p.addr, gostomp.ConnOpt.Login("bob", "pw-bob-0815")); err == nil {
		c.Disconnect()
		t.Fatal("bob logged in before he was in the file")
	}
	p.waitLog(t, "login refused", 10*time.Second)
	os.WriteFile(file, []byte("users:\n  alice:\n    password: "+hash("pw-alice-4711")+"\n  bob:\n    password: "+hash("pw-bob-0815")+"\n"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "users reloaded", 10*time.Second)
	bob, err := gostomp.Dial("tcp", p.addr, gostomp.ConnOpt.Login("bob", "pw-bob-0815"))
	if err != nil {
		t.Fatalf("bob after the reload: %v", err)
	}
	bob.Disconnect()
	if err := alice.Send("/queue/x", "text/plain", []byte("still here"), gostomp.SendOpt.Receipt); err != nil {
		t.Fatalf("alice's connection after the reload: %v", err)
	}
	os.WriteFile(file, []byte("users: [broken"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "users file not reloaded", 10*time.Second)
	c, err := gostomp.Dial("tcp", p.addr, gostomp.ConnOpt.Login("bob", "pw-bob-0815"))
	if err != nil {
		t.Fatalf("bob after a broken file was refused: %v", err)
	}
	c.Disconnect()
	if log := p.log(); strings.Contains(log, "pw-bob-0815") || strings.Contains(log, "pw-alice-4711") || !strings.Contains(log, "user=bob") {
		t.Errorf("the log shows a passcode, or does not name the refused user:\n%s", log)
	}
}

// TestServeTLS: cairn serve --tls-listen beside the plain listener: Go's
// TLS client and stomp.py over TLS (python3-stomp, which scripts/test
// installs) send and receive through it, with the test's own authority.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, ca.PEM, 0o600)
	_, cert, key := ca.Issue(t, dir, "server", 2, time.Now().Add(time.Hour), false)
	tlsAddr := freeAddr(t)
	p := startServe(t, t.TempDir(), "--tls-listen", tlsAddr, "--tls-cert", cert, "--tls-key", key)
	p.waitLog(t, "cairn listening on TLS too", 10*time.Second)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.PEM)
	tc, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	c, err := gostomp.Connect(tc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	sub, err := c.Subscribe("/queue/tls", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	py := interop.Python(t)
	host, port, _ := net.SplitHostPort(tlsAddr)
	script := `
import sys, stomp
c = stomp.Connection12([(sys.argv[1], int(sys.argv[2]))])
c.set_ssl(for_hosts=[(sys.argv[1], int(sys.argv[2]))], ca_certs=sys.argv[3])
c.connect(wait=True)
c.send('/queue/tls', 'from stomp.py over TLS', headers={'receipt': 'r1'})
c.disconnect()
`
	if out, err := exec.Command(py, "-c", script, host, port, caFile).CombinedOutput(); err != nil {
		t.Fatalf("stomp.py over TLS: %v\n%s", err, out)
	}
	select {
	case m := <-sub.C:
		if string(m.Body) != "from stomp.py over TLS" {
			t.Fatalf("got %q", m.Body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stomp.py's message over TLS did not arrive")
	}
}

// TestServeWebSocket: cairn serve --ws-listen serves STOMP over WebSocket
// beside TCP; a message sent over TCP reaches a WebSocket subscriber.
func TestServeWebSocket(t *testing.T) {
	wsAddr := freeAddr(t)
	p := startServe(t, t.TempDir(), "--ws-listen", wsAddr)
	p.waitLog(t, "cairn listening on WebSocket too", 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+wsAddr+"/stomp", &websocket.DialOptions{Subprotocols: []string{"v12.stomp"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.Write(ctx, websocket.MessageText, []byte("CONNECT\naccept-version:1.2\n\n\x00SUBSCRIBE\nid:1\ndestination:/queue/w\nreceipt:r\n\n\x00"))
	for _, want := range []string{"CONNECTED", "RECEIPT"} {
		_, b, err := ws.Read(ctx)
		if err != nil || !strings.HasPrefix(string(b), want) {
			t.Fatalf("want %s: %q %v", want, b, err)
		}
	}
	c, err := gostomp.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	c.Send("/queue/w", "text/plain", []byte("to the browser"), gostomp.SendOpt.Receipt)
	_, b, err := ws.Read(ctx)
	if err != nil || !strings.HasPrefix(string(b), "MESSAGE") || !strings.HasSuffix(string(b), "to the browser\x00") {
		t.Fatalf("the WebSocket subscriber got %q %v", b, err)
	}
}
