// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
)

// replyNow (a SEND's RECEIPT, written while the message's queue is held)
// never waits on the socket, even a full one whose client reads nothing;
// what could not go out goes later, whole and in order, once the client
// reads.
func TestReplyNowNeverWaits(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	client.(*net.TCPConn).SetReadBuffer(4096)
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	server.(*net.TCPConn).SetWriteBuffer(4096)
	// Fill the socket until a write would wait.
	server.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	filled := 0
	for {
		n, err := server.Write(make([]byte, 1024))
		filled += n
		if err != nil {
			break
		}
	}
	server.SetWriteDeadline(time.Time{})
	ss := newSession(NewServer(nil, Options{Logger: slog.New(slog.DiscardHandler)}), server)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 100 {
			ss.replyNow(frame.New(frame.RECEIPT, frame.ReceiptId, fmt.Sprint(i)))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("replyNow waited on a full socket")
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(client)
	if _, err := r.Discard(filled); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		want := fmt.Sprintf("RECEIPT\nreceipt-id:%d\n\n\x00", i)
		got := make([]byte, len(want))
		if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, []byte(want)) {
			t.Fatalf("receipt %d: %q, %v; want %q", i, got, err, want)
		}
	}
}
