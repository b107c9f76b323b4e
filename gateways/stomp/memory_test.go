// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp_test

import (
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/cairnmq/cairn/gateways/stomp"
)

// BenchmarkIdleConnectionMemory opens b.N connections, each subscribed to
// its own queue, and reports the Go heap and stack they hold once idle
// (B/idle-conn; the loopback clients' own sockets count too, a few hundred
// bytes). `cairn bench broker --idle` measures the broker's RSS instead.
//
//	go test -run '^$' -bench IdleConnectionMemory -benchtime 5000x ./gateways/stomp
func BenchmarkIdleConnectionMemory(b *testing.B) {
	n := start(b, b.TempDir(), stomp.Options{MaxConnections: b.N + 100, MaxUnconnected: 10 * (b.N + 100), MaxPerAddress: -1})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, 0, b.N)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < b.N; i++ {
		c, err := net.Dial("tcp", n.addr)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "CONNECT\naccept-version:1.2\nhost:x\nheart-beat:0,0\n\n\x00SUBSCRIBE\nid:0\ndestination:/queue/idle-%d\nack:client-individual\nreceipt:r\n\n\x00", i)
	}
	buf := make([]byte, 512)
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		got := 0
		for got < 2 { // CONNECTED, then the SUBSCRIBE's RECEIPT
			k, err := c.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			for _, ch := range buf[:k] {
				if ch == 0 {
					got++
				}
			}
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse) / float64(b.N)
	b.ReportMetric(per, "B/idle-conn")
	b.ReportMetric(float64(after.StackInuse-before.StackInuse)/float64(b.N), "stack-B/idle-conn")
}
