// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package replication

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cairnmq/cairn/internal/natstest"
)

func kvLocker(t *testing.T, nc *nats.Conn, id string, ttl time.Duration, replicas int) Locker {
	t.Helper()
	k, err := NewKVLocker(nc, KVOptions{Key: "J1", ID: id, TTL: ttl, Replicas: replicas, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestKVLocker on a 3-node cluster: one holder at a time; a release hands
// over at once; a holder that stops renewing (frozen, or its process gone)
// loses the lease when its TTL runs out, is no longer valid by then, and
// finds it taken when it wakes.
func TestKVLocker(t *testing.T) {
	if testing.Short() {
		t.Skip("3-node cluster")
	}
	servers := natstest.StartCluster(t)
	const ttl = time.Second
	a := <-acquireAsync(t, kvLocker(t, natstest.Connect(t, servers...), "a", ttl, 3), nil)
	if a == nil {
		t.FailNow()
	}
	bch := acquireAsync(t, kvLocker(t, natstest.Connect(t, servers...), "b", ttl, 3), nil)
	select {
	case b := <-bch:
		t.Fatalf("b acquired epoch %d while a renews", b.Epoch())
	case <-time.After(3 * ttl):
	}
	if err := a.Valid(); err != nil {
		t.Fatal(err)
	}
	a.(*kvLease).pause()
	frozen := time.Now()
	b := <-bch
	if b == nil {
		t.FailNow()
	}
	took := time.Since(frozen)
	if err := a.Valid(); !errors.Is(err, ErrLost) {
		t.Fatalf("frozen master still valid when the standby took over (%s after the freeze): %v", took, err)
	}
	if took > ttl+time.Second {
		t.Logf("standby took over %s after the freeze (TTL %s)", took, ttl)
	}
	if b.Epoch() <= a.Epoch() || b.Took().How != "expired" || b.Took().Previous.ID != "a" {
		t.Fatalf("b: epoch %d (a's %d), %+v", b.Epoch(), a.Epoch(), b.Took())
	}
	if err := a.(*kvLease).renew(); !errors.Is(err, ErrLost) {
		t.Fatalf("woken master renewed: %v", err)
	}
	// b hands over to c at once on release.
	cch := acquireAsync(t, kvLocker(t, natstest.Connect(t, servers...), "c", ttl, 3), nil)
	time.Sleep(200 * time.Millisecond)
	released := time.Now()
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	c := <-cch
	if c == nil {
		t.FailNow()
	}
	if d := time.Since(released); d > ttl/2 {
		t.Fatalf("c took %s after b released", d)
	}
	if c.Epoch() <= b.Epoch() {
		t.Fatalf("epochs not increasing: %d then %d", b.Epoch(), c.Epoch())
	}
	info, rev, err := ReadKVLease(context.Background(), natstest.Connect(t, servers...), "CAIRN_LEASES", "J1")
	if err != nil || info.ID != "c" || info.Epoch != c.Epoch() || rev < c.Epoch() {
		t.Fatalf("lease entry %+v rev %d, %v", info, rev, err)
	}
	// Released, the lease shows no holder.
	if err := c.Release(); err != nil {
		t.Fatal(err)
	}
	if info, _, err := ReadKVLease(context.Background(), natstest.Connect(t, servers...), "CAIRN_LEASES", "J1"); err != nil || info.ID != "" {
		t.Fatalf("lease entry after release: %+v, %v", info, err)
	}
}
