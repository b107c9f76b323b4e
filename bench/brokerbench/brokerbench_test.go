// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package brokerbench

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cairnmq/cairn/internal/brokertest"
)

func startCairn(t *testing.T) string { return brokertest.Start(t, brokertest.Options{}).Addr }

func TestRunAgainstCairn(t *testing.T) {
	addr := startCairn(t)
	for _, o := range []Options{
		{Producers: 2, Consumers: 2, Count: 2000, Persistent: true, Receipt: true, AckMode: "client-individual", Destination: "/queue/q1"},
		{Producers: 2, Consumers: 2, Count: 4000, Persistent: true, AckMode: "client", Prefetch: 10, Destination: "/queue/q2"},
		{Producers: 1, Consumers: 3, Count: 1000, Size: 256, Destination: "/topic/t1"},
		{Producers: 1, Consumers: 1, Count: 500, Selector: SelectorMatchingAll, Destination: "/queue/q3"},
		// With go-stomp clients (channels deep enough for the prefetch).
		{Producers: 2, Consumers: 2, Count: 4000, Persistent: true, AckMode: "client-individual", Prefetch: 1000,
			Client: "go-stomp", GoStompChannels: 2048, Destination: "/queue/q4"},
		{Producers: 2, Consumers: 2, Count: 2000, Persistent: true, Receipt: true, AckMode: "client-individual",
			Client: "go-stomp", Destination: "/queue/q5"},
		{Producers: 1, Consumers: 2, Count: 500, Size: 256, Client: "go-stomp", Destination: "/topic/t2"},
	} {
		t.Run(o.Destination, func(t *testing.T) {
			o.Addr, o.Drain = addr, 3*time.Second
			r, err := Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			want := int64(o.Count)
			if strings.HasPrefix(o.Destination, "/topic/") {
				want *= int64(o.Consumers)
			}
			if r.Sent != int64(o.Count) || r.Received != want || r.Lost != 0 || r.Duplicates != 0 {
				t.Fatalf("%+v", r)
			}
			if r.P50Ms <= 0 || r.P99Ms < r.P50Ms {
				t.Fatalf("latencies: %+v", r)
			}
		})
	}
}

// TestRunCountsLossAndDuplicates drains a scripted broker that, like
// ActiveMQ, ends each frame with an extra EOL and hands out the next
// MESSAGE only once the last is acknowledged. It delivers sequences 0, 1, 1
// of three: one lost, one duplicated. A client that held its ACKs while
// it waited would get only the first.
func TestRunCountsLossAndDuplicates(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		served <- script(ln, []uint64{0, 1, 1})
	}()
	r, err := Run(context.Background(), Options{Addr: ln.Addr().String(), Producers: 0, Consumers: 1, Count: 3, Size: 1024,
		AckMode: "client-individual", Destination: "/queue/x", Drain: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Received != 3 || r.Lost != 1 || r.Duplicates != 1 {
		t.Fatalf("want 3 received, 1 lost, 1 duplicated: %+v", r)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

func script(ln net.Listener, seqs []uint64) error {
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	frame := func() (string, error) {
		s, err := r.ReadString(0)
		return strings.TrimLeft(s, "\r\n"), err
	}
	if f, err := frame(); err != nil || !strings.HasPrefix(f, "CONNECT\n") {
		return fmt.Errorf("want CONNECT: %q %v", f, err)
	}
	fmt.Fprint(c, "CONNECTED\nversion:1.2\n\n\x00\n")
	f, err := frame()
	if err != nil || !strings.HasPrefix(f, "SUBSCRIBE\n") || !strings.Contains(f, "\nreceipt:1\n") {
		return fmt.Errorf("want SUBSCRIBE with receipt 1: %q %v", f, err)
	}
	fmt.Fprint(c, "RECEIPT\nreceipt-id:1\n\n\x00\n")
	body := make([]byte, 1024)
	for i, seq := range seqs {
		binary.LittleEndian.PutUint64(body, uint64(time.Now().UnixNano()))
		binary.LittleEndian.PutUint64(body[8:], 0)
		binary.LittleEndian.PutUint64(body[16:], seq)
		fmt.Fprintf(c, "MESSAGE\ndestination:/queue/x\nmessage-id:m%d\nsubscription:0\nack:ID\\ca%d\ncontent-length:%d\n\n%s\x00\n", i, i, len(body), body)
		f, err := frame()
		if err != nil || f != fmt.Sprintf("ACK\nid:ID\\ca%d\n\n\x00", i) {
			return fmt.Errorf("want the ACK of message %d: %q %v", i, f, err)
		}
	}
	// Stay until the client goes: it ends the run, not the broker.
	for {
		if _, err := frame(); err != nil {
			return nil
		}
	}
}

func TestRunRefusesAnUnknownClient(t *testing.T) {
	if _, err := Run(context.Background(), Options{Addr: "127.0.0.1:1", Client: "stomp.py", Consumers: 1}); err == nil || !strings.Contains(err.Error(), "--client") {
		t.Fatalf("an unknown --client: %v", err)
	}
}
