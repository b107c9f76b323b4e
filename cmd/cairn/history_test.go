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
	"sync"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/cairnmq/cairn/gateways/stompclient"
)

// history is receipted load on a queue from two producers and two
// consumers on the failover client (across addrs), and what each saw: the
// record that fault tests check at the end.
type history struct {
	dest   string
	ctx    context.Context
	cancel context.CancelFunc

	mu         sync.Mutex
	receipted  map[string]bool
	ackedAt    map[string]bool // acks confirmed
	seen       map[string]bool
	deliveries int
	unmarked   []string // repeated deliveries without redelivered:true
	afterAck   []string // deliveries after a confirmed ack

	stop, consumerDone chan struct{}
	producers, conss   sync.WaitGroup
}

// startHistory starts the load; it runs until check (at most 10 minutes).
func startHistory(t *testing.T, addrs []string, dest string) *history {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	h := &history{dest: dest, ctx: ctx, cancel: cancel, receipted: map[string]bool{}, ackedAt: map[string]bool{}, seen: map[string]bool{},
		stop: make(chan struct{}), consumerDone: make(chan struct{})}
	t.Cleanup(cancel)
	opts := stompclient.Options{Addrs: addrs, Logger: slog.New(slog.DiscardHandler), ReceiptTimeout: 3 * time.Second,
		HeartBeat: time.Second, RetryMax: 100 * time.Millisecond}
	for p := range 2 {
		h.producers.Add(1)
		go func() {
			defer h.producers.Done()
			c, err := stompclient.Dial(ctx, opts)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for i := 0; ; i++ {
				select {
				case <-h.stop:
					return
				default:
				}
				body := fmt.Sprintf("p%d-%d", p, i)
				if err := c.Send(ctx, dest, []byte(body), "persistent", "true"); err != nil {
					if ctx.Err() == nil {
						t.Errorf("send %s: %v", body, err)
					}
					return
				}
				h.mu.Lock()
				h.receipted[body] = true
				h.mu.Unlock()
			}
		}()
	}
	for range 2 {
		h.conss.Add(1)
		go func() {
			defer h.conss.Done()
			c, err := stompclient.Dial(ctx, opts)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			sub, err := c.Subscribe(dest, gostomp.AckClientIndividual, "activemq.prefetchSize", "20")
			if err != nil {
				t.Error(err)
				return
			}
			for {
				var m *gostomp.Message
				select {
				case m = <-sub.C:
				case <-h.consumerDone:
					return
				}
				if m == nil {
					return
				}
				body := string(m.Body)
				h.mu.Lock()
				h.deliveries++
				if h.ackedAt[body] {
					h.afterAck = append(h.afterAck, body)
				}
				if h.seen[body] && m.Header.Get("redelivered") != "true" {
					h.unmarked = append(h.unmarked, body)
				}
				h.seen[body] = true
				h.mu.Unlock()
				if err := sub.AckWait(m); err == nil {
					h.mu.Lock()
					h.ackedAt[body] = true
					h.mu.Unlock()
				} else if !errors.Is(err, stompclient.ErrStale) {
					// The connection broke during the ack: it may or may not
					// have happened; the message may come again, marked.
					continue
				}
			}
		}()
	}
	return h
}

// counts is how many SENDs were receipted and messages seen so far.
func (h *history) counts() (receipted, seen int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.receipted), len(h.seen)
}

// check stops the producers, lets the consumers drain what is left, and
// checks the history: every receipted message delivered, none after its
// ack was confirmed, every repeat marked redelivered.
func (h *history) check(t *testing.T) {
	t.Helper()
	close(h.stop)
	h.producers.Wait()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		h.mu.Lock()
		missing := 0
		for b := range h.receipted {
			if !h.seen[b] {
				missing++
			}
		}
		h.mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			t.Fatalf("%d receipted messages never delivered", missing)
		}
	}
	close(h.consumerDone)
	h.conss.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.afterAck) > 0 {
		t.Fatalf("%d deliveries after a confirmed ack, e.g. %v", len(h.afterAck), h.afterAck[:min(5, len(h.afterAck))])
	}
	if len(h.unmarked) > 0 {
		t.Fatalf("%d repeated deliveries without redelivered:true, e.g. %v", len(h.unmarked), h.unmarked[:min(5, len(h.unmarked))])
	}
	t.Logf("%d receipted sends, %d deliveries of %d messages, %d acks confirmed", len(h.receipted), h.deliveries, len(h.seen), len(h.ackedAt))
}
