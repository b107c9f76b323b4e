// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp_test

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/cairnmq/cairn/gateways/stomp"
	"github.com/cairnmq/cairn/internal/certtest"
	"github.com/cairnmq/cairn/internal/logtest"
)

// tlsDial connects over TLS and speaks STOMP with go-stomp.
func tlsDial(addr string, cfg *tls.Config, opts ...func(*gostomp.Conn) error) (*gostomp.Conn, *tls.Conn, error) {
	tc, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, nil, err
	}
	c, err := gostomp.Connect(tc, opts...)
	if err != nil {
		tc.Close()
		return nil, nil, err
	}
	return c, tc, nil
}

// TestTLSListener: STOMP over TLS with go-stomp and Go's TLS client: TLS
// 1.2 at least; with a client CA, a client certificate is required and its
// name is the user (no login); a client without one, or with an expired
// one, is refused with a log line that says so; a renewed server
// certificate is served without a restart.
func TestTLSListener(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t)
	caFile := filepath.Join(dir, "ca.PEM")
	os.WriteFile(caFile, ca.PEM, 0o600)
	_, certFile, keyFile := ca.Issue(t, dir, "server", 10, time.Now().Add(time.Hour), false)
	alice, _, _ := ca.Issue(t, dir, "alice", 20, time.Now().Add(time.Hour), true)
	expired, _, _ := ca.Issue(t, dir, "old", 21, time.Now().Add(-time.Minute), true)
	cfg, err := stomp.TLSConfig(stomp.TLSFiles{Cert: certFile, Key: keyFile, ClientCA: caFile})
	if err != nil {
		t.Fatal(err)
	}
	var logs logtest.Buffer
	users := usersFile(t, "alice", "unused-password")
	n := start(t, t.TempDir(), stomp.Options{Users: users, CertUsers: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go n.srv.Serve(tls.NewListener(ln, cfg))
	addr := ln.Addr().String()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.PEM)

	c, tc, err := tlsDial(addr, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{alice}})
	if err != nil {
		t.Fatalf("alice's certificate: %v", err)
	}
	if v := tc.ConnectionState().Version; v < tls.VersionTLS12 {
		t.Fatalf("TLS version %x", v)
	}
	if err := c.Send("/queue/tls", "text/plain", []byte("over TLS"), gostomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	c.Disconnect()

	for name, cert := range map[string][]tls.Certificate{"no client certificate": nil, "an expired one": {expired}} {
		if c, _, err := tlsDial(addr, &tls.Config{RootCAs: roots, Certificates: cert}); err == nil {
			c.Disconnect()
			t.Fatalf("%s: connected", name)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); !(logs.Has("TLS handshake failed") && logs.Has("expired")); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the refusals are not logged as such:\n%s", logs.String())
		}
	}
	if _, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{alice}, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("a TLS 1.1 client connected")
	}

	// Renew the server's certificate in place: new connections get it.
	time.Sleep(1100 * time.Millisecond)
	ca.Issue(t, dir, "server", 11, time.Now().Add(time.Hour), false)
	var serial int64
	for deadline := time.Now().Add(5 * time.Second); serial != 11; time.Sleep(100 * time.Millisecond) {
		tc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{alice}})
		if err != nil {
			t.Fatal(err)
		}
		serial = tc.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
		tc.Close()
		if time.Now().After(deadline) {
			t.Fatalf("still serial %d after the certificate was renewed", serial)
		}
	}
	if strings.Contains(logs.String(), "panic") {
		t.Fatal(logs.String())
	}
}
