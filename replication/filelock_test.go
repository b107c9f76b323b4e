// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package replication

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnmq/cairn/journal/dirlock"
)

// steady is the TTL of a lease a test needs to stay valid throughout. A
// renewal slower than TTL/5 gives the lease up (see renew), and a loaded CI
// machine has taken 94ms over one; 2s allows 400ms.
const steady = 2 * time.Second

func acquire(t *testing.T, dir, id string, ttl time.Duration) Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := NewFileLocker(dir, FileOptions{ID: id, TTL: ttl, Poll: 10 * time.Millisecond}).Acquire(ctx, nil)
	if err != nil {
		t.Fatalf("%s: acquire: %v", id, err)
	}
	t.Cleanup(func() { l.Release() })
	return l
}

func fileLocker(dir, id string, ttl time.Duration) Locker {
	return NewFileLocker(dir, FileOptions{ID: id, TTL: ttl, Poll: 10 * time.Millisecond})
}

// acquireAsync starts Acquire and returns a channel that yields the lease
// (closed if Acquire fails); the lease is released when the test ends.
func acquireAsync(t *testing.T, locker Locker, waits *[]Waiting) <-chan Lease {
	t.Helper()
	ch := make(chan Lease, 1)
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	exited := make(chan struct{})
	t.Cleanup(func() { cancel(); <-exited })
	go func() {
		defer close(exited)
		l, err := locker.Acquire(ctx, func(w Waiting) {
			mu.Lock()
			defer mu.Unlock()
			if waits != nil {
				*waits = append(*waits, w)
			}
		})
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("acquire: %v", err)
			}
			close(ch)
			return
		}
		ch <- l
		<-ctx.Done()
		l.Release()
	}()
	return ch
}

func mustNotAcquire(t *testing.T, ch <-chan Lease, d time.Duration) {
	t.Helper()
	select {
	case l := <-ch:
		t.Fatalf("acquired epoch %d while another broker holds the lease", l.Epoch())
	case <-time.After(d):
	}
}

func TestFileLockerHandsOverOnRelease(t *testing.T) {
	dir := t.TempDir()
	a := acquire(t, dir, "a", time.Second)
	if a.Epoch() != 1 || a.Took().How != "free" {
		t.Fatalf("first lease: epoch %d, how %q; want 1, free", a.Epoch(), a.Took().How)
	}
	var waits []Waiting
	bch := acquireAsync(t, fileLocker(dir, "b", time.Second), &waits)
	// Well past a's TTL: a renews, so b must keep waiting.
	mustNotAcquire(t, bch, 2500*time.Millisecond)
	if err := a.Valid(); err != nil {
		t.Fatalf("a renewing but not valid: %v", err)
	}
	released := time.Now()
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	b := <-bch
	if b == nil {
		t.FailNow()
	}
	t.Logf("b took over %s after the release", time.Since(released))
	if b.Epoch() != 2 || b.Took().How != "released" || b.Took().Previous.ID != "a" {
		t.Fatalf("b: epoch %d, %+v; want epoch 2, released by a", b.Epoch(), b.Took())
	}
	if len(waits) == 0 || waits[0].Holder.ID != "a" {
		t.Fatalf("b reported waiting for %+v, want a", waits)
	}
	if a.Valid() == nil {
		t.Fatal("a still valid after release")
	}
}

func TestFileLockerHolderGone(t *testing.T) {
	dir := t.TempDir()
	a := acquire(t, dir, "a", time.Second).(*fileLease)
	bch := acquireAsync(t, fileLocker(dir, "b", time.Second), nil)
	mustNotAcquire(t, bch, 300*time.Millisecond)
	// The kernel drops a dead process's flock; its lease says nothing.
	a.pause()
	a.lock.Release()
	b := <-bch
	if b == nil {
		t.FailNow()
	}
	if b.Took().How != "holder gone" || b.Epoch() != 2 {
		t.Fatalf("b: epoch %d, %+v", b.Epoch(), b.Took())
	}
}

// TestFileLockerExpiry is a frozen master: it holds the flock but stops
// renewing. The standby takes the lease once it has expired, by which time
// the frozen master's own Valid already fails; when the master wakes, its
// renewal finds it was taken over.
func TestFileLockerExpiry(t *testing.T) {
	dir := t.TempDir()
	const ttl = steady
	a := acquire(t, dir, "a", ttl).(*fileLease)
	bch := acquireAsync(t, fileLocker(dir, "b", ttl), nil)
	// Past TTL + TTL/5, a standby's wait: a's renewals keep b out.
	mustNotAcquire(t, bch, ttl+ttl/2)
	a.pause() // SIGSTOP, as far as the lease goes
	lastRenewal := a.base.Add(time.Duration(a.lastOK.Load()))
	b := <-bch
	if b == nil {
		t.FailNow()
	}
	took := time.Since(lastRenewal)
	if err := a.Valid(); !errors.Is(err, ErrLost) {
		t.Fatalf("frozen master still valid when the standby took over: %v", err)
	}
	if took < ttl {
		t.Fatalf("standby took over %s after the frozen master's last renewal, inside the TTL %s", took, ttl)
	}
	if b.Took().How != "expired" || b.Epoch() != 2 {
		t.Fatalf("b: epoch %d, %+v", b.Epoch(), b.Took())
	}
	// The master wakes: nothing brings it back.
	if err := a.renew(); !errors.Is(err, ErrLost) {
		t.Fatalf("woken master renewed: %v", err)
	}
	select {
	case <-a.Lost():
	default:
		t.Fatal("Lost not closed")
	}
	// b holds no flock yet (a's process lives); once a's flock goes, b takes it.
	a.lock.Release()
	deadline := time.Now().Add(5 * time.Second)
	for b.(*fileLease).hasLock() == false {
		if time.Now().After(deadline) {
			t.Fatal("b never took the flock after a dropped it")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := b.Valid(); err != nil {
		t.Fatal(err)
	}
}

// TestFileLockerStaleWrite: a deposed master's renewal lands after the new
// master's lease; the new master restores its own.
func TestFileLockerStaleWrite(t *testing.T) {
	dir := t.TempDir()
	const ttl = 400 * time.Millisecond
	a := acquire(t, dir, "a", ttl).(*fileLease)
	a.pause()
	stale, err := os.ReadFile(filepath.Join(dir, LeaseFile))
	if err != nil {
		t.Fatal(err)
	}
	b := <-acquireAsync(t, fileLocker(dir, "b", steady), nil)
	if b == nil {
		t.FailNow()
	}
	if err := os.WriteFile(filepath.Join(dir, LeaseFile), stale, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(steady / 2) // two of b's renewals
	cur, err := ReadLease(dir)
	if err != nil || cur.ID != "b" || cur.Epoch != 2 {
		t.Fatalf("lease after a stale write: %+v, %v; want b's epoch 2", cur, err)
	}
	if err := b.Valid(); err != nil {
		t.Fatal(err)
	}
}

// TestFileLockerWaitsForTool: a directory locked by an offline tool (no
// lease) is never taken by expiry.
func TestFileLockerWaitsForTool(t *testing.T) {
	dir := t.TempDir()
	tool, err := dirlock.TryLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	bch := acquireAsync(t, fileLocker(dir, "b", 200*time.Millisecond), nil)
	mustNotAcquire(t, bch, time.Second)
	tool.Release()
	if b := <-bch; b == nil || b.Took().How != "free" {
		t.Fatalf("after the tool: %v", b)
	}
}

// TestFileLockerOneOfMany: several standbys race for an expired lease; one
// wins, and at every moment at most one lease is valid.
func TestFileLockerOneOfMany(t *testing.T) {
	dir := t.TempDir()
	const ttl = 300 * time.Millisecond
	a := acquire(t, dir, "a", ttl).(*fileLease)
	var chans []<-chan Lease
	for _, id := range []string{"b", "c", "d"} {
		chans = append(chans, acquireAsync(t, fileLocker(dir, id, steady), nil))
	}
	time.Sleep(ttl)
	a.pause()
	var won Lease
	select {
	case won = <-chans[0]:
	case won = <-chans[1]:
	case won = <-chans[2]:
	case <-time.After(10 * time.Second):
		t.Fatal("no standby took over")
	}
	if won == nil {
		t.FailNow()
	}
	// Watch for a while: no second valid lease.
	for range 50 {
		valid := 0
		for _, ch := range chans {
			select {
			case l := <-ch:
				if l != nil {
					t.Fatalf("a second standby acquired epoch %d", l.Epoch())
				}
			default:
			}
		}
		if won.Valid() == nil {
			valid++
		}
		if a.Valid() == nil {
			valid++
		}
		if valid != 1 {
			t.Fatalf("%d valid leases", valid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFileLockerDirectoryReplaced: a master whose journal directory is
// removed and recreated under it (an operator's rm -rf) gives up, and never
// overwrites the lease of the master on the new directory.
func TestFileLockerDirectoryReplaced(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	os.Mkdir(dir, 0o755)
	const ttl = steady
	a := acquire(t, dir, "a", ttl)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(dir, 0o755)
	b := acquire(t, dir, "b", ttl)
	select {
	case <-a.Lost():
	case <-time.After(5 * ttl):
		t.Fatal("the master of a removed directory still holds its lease")
	}
	if err := a.Valid(); err == nil || !strings.Contains(err.Error(), "removed or replaced") {
		t.Fatalf("a lost its lease for another reason: %v", err)
	}
	time.Sleep(ttl / 2) // two of each lease's renewals
	if err := b.Valid(); err != nil {
		t.Fatalf("the new directory's master: %v", err)
	}
	if cur, _ := ReadLease(dir); cur.ID != "b" {
		t.Fatalf("lease names %q, want b", cur.ID)
	}
}

// A renewal overwrites the lease file in place (the same file, in the
// blocks it has), so that it needs no new blocks and a full disk cannot
// take the lease away; every version of it reads back whole, checksum and
// all, and a torn one is refused.
func TestLeaseRenewsInPlace(t *testing.T) {
	dir := t.TempDir()
	acquire(t, dir, "a", 400*time.Millisecond) // renewed every 100ms
	path := filepath.Join(dir, LeaseFile)
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	first, err := ReadLease(dir)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		cur, err := ReadLease(dir)
		if err != nil {
			continue // caught mid-write: refused, read again
		}
		if cur.Seq >= first.Seq+3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lease was not renewed 3 times in 5s: seq %d -> %d", first.Seq, cur.Seq)
		}
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || after.Size() != leaseFileSize {
		t.Fatalf("renewals replaced the lease file (same file %t, %d bytes), want it overwritten in place", os.SameFile(before, after), after.Size())
	}
	b, _ := os.ReadFile(path)
	torn := append([]byte(nil), b...)
	copy(torn, "epoch=9")
	if _, err := parseLease(torn); err == nil {
		t.Fatal("a lease record with a changed field parsed: its checksum is not checked")
	}
	legacy := first.encode()
	if got, err := parseLease([]byte(legacy)); err != nil || got.Epoch != first.Epoch {
		t.Fatalf("a lease without a checksum (an older broker's): %+v %v", got, err)
	}
}
