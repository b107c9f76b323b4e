// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/journal/wal"
)

func sendExpiring(t *testing.T, b *core.Broker, dest, body string, in time.Duration) {
	t.Helper()
	d, _ := core.ParseDestination(dest)
	m := &core.Message{Destination: d, Persistent: true, Priority: 4, Body: []byte(body), Expires: time.Now().Add(in).UnixMilli()}
	if err := b.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

// TestExpiry: expires is honoured on arrival, before dispatch and by the
// sweep; an expired persistent message leaves the journal (a restart does
// not bring it back), or, with ExpiredToDLQ, moves to the DLQ.
func TestExpiry(t *testing.T) {
	dir := t.TempDir()
	noSweep := core.Options{ExpirySweep: -1}
	b, stop := openOnWalWith(t, dir, wal.Options{}, noSweep)
	sendExpiring(t, b, "/queue/e", "already", -time.Second)
	if st, ok := b.QueueStats("e"); ok && st.Pending != 0 {
		t.Fatalf("expired on arrival but stored: %+v", st)
	}
	sendExpiring(t, b, "/queue/e", "soon", 100*time.Millisecond)
	send(t, b, "/queue/e", "keeps", true)
	time.Sleep(200 * time.Millisecond)
	_, in := subscribe(t, b, "/queue/e", core.SubscribeOptions{})
	if d := in.next(t); string(d.Msg.Body) != "keeps" {
		t.Fatalf("got %q, want only the unexpired message", d.Msg.Body)
	}
	in.none(t, 50*time.Millisecond)
	if st, _ := b.QueueStats("e"); st.Expired != 1 {
		t.Fatalf("stats after expiry before dispatch: %+v", st)
	}

	// A message expiring while the broker is down is gone after the
	// restart: replayed from the journal, and from a snapshot (which keeps
	// each pending message's expiry; the restart reads no message).
	for _, snapshot := range []bool{false, true} {
		sendExpiring(t, b, "/queue/down", "expires while down", 150*time.Millisecond)
		if snapshot {
			if res, err := b.Maintain(true); err != nil || res.Snapshot == 0 {
				t.Fatalf("maintenance: %+v, %v", res, err)
			}
		}
		stop()
		time.Sleep(200 * time.Millisecond)
		b, stop = openOnWalWith(t, dir, wal.Options{}, core.Options{ExpirySweep: 20 * time.Millisecond})
		if r := b.Recovery(); (r.Snapshot != 0) != snapshot {
			t.Fatalf("snapshot %v: recovery %+v", snapshot, r)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			st, _ := b.QueueStats("down")
			if st.Pending == 0 && st.Expired == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("snapshot %v: the sweep did not expire it: %+v", snapshot, st)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The sweep journaled it: it stays gone across another restart.
	stop()
	b, stop = openOnWalWith(t, dir, wal.Options{}, noSweep)
	if st, ok := b.QueueStats("down"); ok && st.Pending != 0 {
		t.Fatalf("an expired message came back after a restart: %+v", st)
	}
	stop()

	// ExpiredToDLQ.
	b, stop = openOnWalWith(t, dir, wal.Options{}, core.Options{ExpiredToDLQ: true, ExpirySweep: 20 * time.Millisecond})
	defer stop()
	sendExpiring(t, b, "/queue/x", "to the dlq", 50*time.Millisecond)
	_, dl := subscribe(t, b, "/queue/ActiveMQ.DLQ", core.SubscribeOptions{})
	d := dl.next(t)
	if string(d.Msg.Body) != "to the dlq" || d.Msg.Get(core.HeaderDLQCause) != "expired" || d.Msg.Expires != 0 {
		t.Fatalf("dead letter %q %v expires %d", d.Msg.Body, d.Msg.Header, d.Msg.Expires)
	}
}
