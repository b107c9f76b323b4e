// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/cairnmq/cairn/gateways/stompclient"
)

// launchServeAt is launchServe on a given address.
func launchServeAt(t *testing.T, data, addr string, args ...string) *serveProc {
	t.Helper()
	p := launchServe(t, data, append([]string{"--listen", addr}, args...)...)
	p.addr = addr
	return p
}

// TestFailoverSoak: consecutive kill -9 failovers of a master with a warm
// standby, under continuous load from producers and consumers on the
// failover client. No receipted message is lost, no message whose ack was
// confirmed is delivered again, and every repeated delivery carries
// redelivered:true. 20 failovers (5 with -short, 200 with -tags soak;
// CAIRN_SOAK_FAILOVERS sets any other number).
func TestFailoverSoak(t *testing.T) {
	rounds := soakFailovers
	if testing.Short() {
		rounds = 5
	}
	if s := os.Getenv("CAIRN_SOAK_FAILOVERS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	data := t.TempDir()
	addrs := []string{freeAddr(t), freeAddr(t)}
	ttl := []string{"--lease-ttl", "2s"}
	procs := []*serveProc{launchServeAt(t, data, addrs[0], ttl...), nil}
	procs[0].waitLog(t, "cairn listening", 20*time.Second)
	procs[1] = launchServeAt(t, data, addrs[1], ttl...)
	procs[1].waitLog(t, "standby: waiting for the journal", 20*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rounds)*30*time.Second)
	defer cancel()
	opts := stompclient.Options{Addrs: addrs, Logger: slog.New(slog.DiscardHandler), ReceiptTimeout: 3 * time.Second,
		HeartBeat: time.Second, RetryMax: 100 * time.Millisecond}
	var (
		mu         sync.Mutex
		receipted  = map[string]bool{}
		ackedAt    = map[string]bool{} // acks confirmed
		seen       = map[string]bool{}
		deliveries int
		unmarked   []string // repeated deliveries without redelivered:true
		afterAck   []string // deliveries after a confirmed ack
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for p := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := stompclient.Dial(ctx, opts)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf("p%d-%d", p, i)
				if err := c.Send(ctx, "/queue/soak", []byte(body), "persistent", "true"); err != nil {
					if ctx.Err() == nil {
						t.Errorf("send %s: %v", body, err)
					}
					return
				}
				mu.Lock()
				receipted[body] = true
				mu.Unlock()
			}
		}()
	}
	consumerDone := make(chan struct{})
	var cwg sync.WaitGroup
	for range 2 {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			c, err := stompclient.Dial(ctx, opts)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			sub, err := c.Subscribe("/queue/soak", gostomp.AckClientIndividual, "activemq.prefetchSize", "20")
			if err != nil {
				t.Error(err)
				return
			}
			for {
				var m *gostomp.Message
				select {
				case m = <-sub.C:
				case <-consumerDone:
					return
				}
				if m == nil {
					return
				}
				body := string(m.Body)
				mu.Lock()
				deliveries++
				if ackedAt[body] {
					afterAck = append(afterAck, body)
				}
				if seen[body] && m.Header.Get("redelivered") != "true" {
					unmarked = append(unmarked, body)
				}
				seen[body] = true
				mu.Unlock()
				if err := sub.AckWait(m); err == nil {
					mu.Lock()
					ackedAt[body] = true
					mu.Unlock()
				} else if !errors.Is(err, stompclient.ErrStale) {
					// The connection broke during the ack: it may or may not
					// have happened; the message may come again, marked.
					continue
				}
			}
		}()
	}

	cur := 0
	for r := 1; r <= rounds; r++ {
		time.Sleep(200 * time.Millisecond) // load on this master
		master, standby := procs[cur], procs[1-cur]
		if err := master.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		master.cmd.Wait()
		took := connectWhenUp(t, standby.addr, 20*time.Second)
		mu.Lock()
		t.Logf("failover %d: the standby on %s served %s after the kill (%d receipted, %d seen so far)", r, standby.addr, took, len(receipted), len(seen))
		mu.Unlock()
		procs[cur] = launchServeAt(t, data, master.addr, ttl...)
		procs[cur].waitLog(t, "standby: waiting for the journal", 20*time.Second)
		cur = 1 - cur
	}
	close(stop)
	wg.Wait()
	// Let the consumers drain what is left.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		missing := 0
		for b := range receipted {
			if !seen[b] {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			t.Fatalf("%d receipted messages never delivered", missing)
		}
	}
	close(consumerDone)
	cwg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(afterAck) > 0 {
		t.Fatalf("%d deliveries after a confirmed ack, e.g. %v", len(afterAck), afterAck[:min(5, len(afterAck))])
	}
	if len(unmarked) > 0 {
		t.Fatalf("%d repeated deliveries without redelivered:true, e.g. %v", len(unmarked), unmarked[:min(5, len(unmarked))])
	}
	if len(receipted) < 20*rounds {
		t.Fatalf("only %d receipted sends over %d failovers: too little load to mean anything", len(receipted), rounds)
	}
	t.Logf("%d failovers: %d receipted sends, %d deliveries of %d messages, %d acks confirmed", rounds, len(receipted), deliveries, len(seen), len(ackedAt))
}
