// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/cairnmq/cairn/gateways/stomp"
	"github.com/cairnmq/cairn/internal/certtest"
	"github.com/cairnmq/cairn/internal/interop"
)

// wsClient is a Go WebSocket client speaking STOMP by hand.
type wsClient struct {
	t *testing.T
	c *websocket.Conn
}

func wsDial(t *testing.T, url string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"v12.stomp"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Subprotocol() != "v12.stomp" {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	t.Cleanup(func() { c.CloseNow() })
	return &wsClient{t: t, c: c}
}

func (w *wsClient) send(typ websocket.MessageType, s string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, typ, []byte(s)); err != nil {
		w.t.Fatal(err)
	}
}

// frames reads messages until it has n frames (heart-beat newlines
// skipped), and returns them with the type of the message each began in.
func (w *wsClient) frames(n int) ([]string, []websocket.MessageType) {
	w.t.Helper()
	var out []string
	var types []websocket.MessageType
	buf := ""
	for len(out) < n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		typ, b, err := w.c.Read(ctx)
		cancel()
		if err != nil {
			w.t.Fatalf("reading: %v (have %q)", err, out)
		}
		buf += string(b)
		for {
			buf = strings.TrimLeft(buf, "\n")
			i := strings.IndexByte(buf, 0)
			if i < 0 {
				break
			}
			out, types = append(out, buf[:i]), append(types, typ)
			buf = buf[i+1:]
		}
	}
	return out, types
}

// TestWebSocket: STOMP over WebSocket with a Go client: v12.stomp
// negotiated; CONNECT without host (as Spring's relay sends it); frames
// split across messages and packed into one; text and binary messages
// read; a lone newline as a heart-beat; a MESSAGE whose body is not UTF-8
// goes in a binary message; the limits and ERROR codes are the TCP
// listener's.
func TestWebSocket(t *testing.T) {
	n := start(t, t.TempDir(), stomp.Options{Limits: stomp.Limits{MaxBodyBytes: 1024}})
	hs := httptest.NewServer(n.srv.WebSocketHandler())
	defer hs.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/stomp"

	c := wsDial(t, url)
	c.send(websocket.MessageText, "CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\x00")
	if f, _ := c.frames(1); !strings.HasPrefix(f[0], "CONNECTED\n") || !strings.Contains(f[0], "version:1.2") {
		t.Fatalf("CONNECT: %q", f)
	}
	c.send(websocket.MessageText, "\n") // a heart-beat, as stompjs sends one
	// A SUBSCRIBE split across two messages, then two SENDs packed into one
	// binary message.
	c.send(websocket.MessageText, "SUBSCRIBE\nid:1\ndestina")
	c.send(websocket.MessageText, "tion:/queue/ws\nreceipt:s\n\n\x00")
	c.send(websocket.MessageBinary, "SEND\ndestination:/queue/ws\n\nhello\x00SEND\ndestination:/queue/ws\ncontent-length:3\n\n\xff\xfe\x00\x00")
	f, types := c.frames(3)
	if !strings.HasPrefix(f[0], "RECEIPT\n") || !strings.HasSuffix(f[1], "\n\nhello") || !strings.HasSuffix(f[2], "\n\n\xff\xfe\x00"[:len("\n\n\xff\xfe")]) {
		t.Fatalf("frames: %q", f)
	}
	if types[1] != websocket.MessageText {
		t.Errorf("a UTF-8 MESSAGE came in a %v message", types[1])
	}
	if types[2] != websocket.MessageBinary {
		t.Errorf("a MESSAGE whose body is not UTF-8 came in a %v message", types[2])
	}

	// The TCP listener's limits and codes: a body over the limit.
	d := wsDial(t, url)
	d.send(websocket.MessageText, "CONNECT\naccept-version:1.2\n\n\x00SEND\ndestination:/queue/ws\n\n"+strings.Repeat("x", 2000)+"\x00")
	f, _ = d.frames(2)
	if !strings.HasPrefix(f[1], "ERROR\n") || !strings.Contains(f[1], "code:frame-too-large") {
		t.Fatalf("an oversized frame over WebSocket: %q", f[1])
	}
}

// TestStompJS: the real @stomp/stompjs client (npm, under Node with ws;
// scripts/stompjs-setup installs them) over WebSocket: CONNECT, SUBSCRIBE
// with client-individual acks, text and binary bodies, heart-beats both
// ways.
func TestStompJS(t *testing.T) {
	modules, _ := filepath.Abs("../../.cache/stompjs/node_modules")
	if _, err := os.Stat(filepath.Join(modules, "@stomp", "stompjs")); err != nil {
		interop.Missing(t, "@stomp/stompjs (scripts/stompjs-setup installs it)", err)
	}
	n := start(t, t.TempDir(), stomp.Options{HeartBeat: 500 * time.Millisecond})
	hs := httptest.NewServer(n.srv.WebSocketHandler())
	defer hs.Close()
	out, err := exec.Command("node", "testdata/stompjs.js", modules, "ws"+strings.TrimPrefix(hs.URL, "http")+"/stomp").CombinedOutput()
	if err != nil {
		t.Fatalf("stompjs: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}

// TestStompJSInChromium: the real stompjs bundle in headless Chromium
// (Debian's chromium, driven by chromedp; scripts/stompjs-setup installs
// both), on a page this test serves, over the browser's own WebSocket.
func TestStompJSInChromium(t *testing.T) {
	bundle, _ := filepath.Abs("../../.cache/stompjs/node_modules/@stomp/stompjs/bundles/stomp.umd.min.js")
	browser, lookErr := exec.LookPath("chromium")
	_, statErr := os.Stat(bundle)
	if err := errors.Join(lookErr, statErr); err != nil {
		interop.Missing(t, "chromium or the stompjs bundle (scripts/stompjs-setup installs them)", err)
	}
	n := start(t, t.TempDir(), stomp.Options{HeartBeat: 500 * time.Millisecond})
	mux := http.NewServeMux()
	mux.Handle("/stomp", n.srv.WebSocketHandler())
	mux.HandleFunc("/stomp.umd.min.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, bundle) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, "testdata/stompjs.html") })
	hs := httptest.NewServer(mux)
	defer hs.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.Headless)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTime := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTime()
	if _, err := chromedp.Run(ctx, chromedp.Navigate(hs.URL+"/")); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.title !== "running"`, chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if title != "ok" {
		t.Fatalf("stompjs in Chromium: %s", title)
	}
}

// TestWebSocketOverTLS: wss:// with the listener's TLS configuration
// (ServeWebSocket on a TLS listener, as --ws-tls serves it), and a login
// checked as on TCP.
func TestWebSocketOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t)
	_, cert, key := ca.Issue(t, dir, "server", 2, time.Now().Add(time.Hour), false)
	cfg, err := stomp.TLSConfig(stomp.TLSFiles{Cert: cert, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	n := start(t, t.TempDir(), stomp.Options{Users: usersFile(t, "alice", "a")})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go n.srv.ServeWebSocket(tls.NewListener(ln, cfg))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.PEM)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "wss://"+ln.Addr().String()+"/stomp", &websocket.DialOptions{Subprotocols: []string{"v12.stomp"},
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	w := &wsClient{t: t, c: c}
	w.send(websocket.MessageText, "CONNECT\naccept-version:1.2\nlogin:alice\npasscode:wrong\n\n\x00")
	if f, _ := w.frames(1); !strings.HasPrefix(f[0], "ERROR\n") || !strings.Contains(f[0], "code:bad-credentials") {
		t.Fatalf("a bad login over wss: %q", f[0])
	}
	c2, _, err := websocket.Dial(ctx, "wss://"+ln.Addr().String()+"/stomp", &websocket.DialOptions{Subprotocols: []string{"v12.stomp"},
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseNow()
	w2 := &wsClient{t: t, c: c2}
	w2.send(websocket.MessageText, "CONNECT\naccept-version:1.2\nlogin:alice\npasscode:a\n\n\x00")
	if f, _ := w2.frames(1); !strings.HasPrefix(f[0], "CONNECTED\n") {
		t.Fatalf("alice over wss: %q", f[0])
	}
}
