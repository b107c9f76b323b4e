// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp_test

import (
	"bufio"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/cairnmq/cairn/internal/brokertest"
)

// rawClient is a STOMP 1.2 connection driven frame by frame.
type rawClient struct {
	nc net.Conn
	w  *frame.Writer
	r  *frame.Reader
}

func rawConnect(t *testing.T, addr string) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	c := &rawClient{nc: nc, w: frame.NewWriter(nc), r: frame.NewReader(bufio.NewReader(nc))}
	c.write(t, frame.New("CONNECT", "accept-version", "1.2", "host", "/"))
	if f := c.read(t); f.Command != "CONNECTED" {
		t.Fatalf("CONNECT: %s %s", f.Command, f.Header.Get("message"))
	}
	return c
}

func (c *rawClient) write(t *testing.T, fs ...*frame.Frame) {
	t.Helper()
	for _, f := range fs {
		if err := c.w.Write(f); err != nil {
			t.Fatal(err)
		}
	}
}

func (c *rawClient) read(t *testing.T) *frame.Frame {
	t.Helper()
	f, err := c.r.Read()
	if err != nil {
		t.Fatal(err)
	}
	if f == nil {
		return c.read(t) // a heart-beat
	}
	return f
}

// until reads frames up to the RECEIPT receipt, and returns the bodies of
// the MESSAGEs before it.
func (c *rawClient) until(t *testing.T, receipt string) []string {
	t.Helper()
	var bodies []string
	for {
		f := c.read(t)
		switch f.Command {
		case "MESSAGE":
			bodies = append(bodies, string(f.Body))
		case "RECEIPT":
			if f.Header.Get("receipt-id") == receipt {
				return bodies
			}
		case "ERROR":
			t.Fatalf("ERROR %s: %s", f.Header.Get("code"), f.Header.Get("message"))
		}
	}
}

// A MESSAGE written to an auto-ack subscriber is consumed, even when the
// UNSUBSCRIBE follows at once: it is never handed to the next subscriber
// too. (Before, the UNSUBSCRIBE closed the subscription without waiting for
// the written message's auto ack, and gave the message back: 4 times in 20
// it reached the next subscriber as well, marked redelivered.) And a
// MESSAGE still queued when the UNSUBSCRIBE is read is not written.
func TestUnsubscribeAfterAutoAckDelivery(t *testing.T) {
	k := brokertest.Start(t, brokertest.Options{})
	first := rawConnect(t, k.Addr)
	next := rawConnect(t, k.Addr)
	for round := range 50 {
		q := fmt.Sprintf("/queue/u%d", round)
		send := frame.New("SEND", "destination", q, "persistent", "true")
		send.Body = []byte("m")
		first.write(t,
			frame.New("SUBSCRIBE", "destination", q, "id", "s", "ack", "auto"),
			send,
			frame.New("UNSUBSCRIBE", "id", "s", "receipt", "u"))
		got := first.until(t, "u")
		// Anything for s after the UNSUBSCRIBE's RECEIPT is a protocol
		// error; the marker's RECEIPT bounds the wait.
		first.write(t, frame.New("SEND", "destination", "/queue/none", "receipt", "after"))
		if late := first.until(t, "after"); len(late) > 0 {
			t.Fatalf("round %d: %d MESSAGEs after the UNSUBSCRIBE's RECEIPT", round, len(late))
		}
		marker := frame.New("SEND", "destination", q, "receipt", "sent")
		marker.Body = []byte("marker")
		next.write(t, frame.New("SUBSCRIBE", "destination", q, "id", "n", "ack", "auto", "receipt", "subscribed"))
		next.until(t, "subscribed")
		next.write(t, marker)
		var again []string
		for f := next.read(t); string(f.Body) != "marker"; f = next.read(t) {
			if f.Command == "MESSAGE" {
				again = append(again, string(f.Body))
			}
		}
		if len(got)+len(again) != 1 {
			t.Fatalf("round %d: the message reached the first subscriber %d times and the next %d times, want once in all",
				round, len(got), len(again))
		}
		next.write(t, frame.New("UNSUBSCRIBE", "id", "n", "receipt", "done"))
		next.until(t, "done")
	}
}
