// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package replication

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/dirlock"
)

// LeaseFile is the file in the journal directory that names the master.
const LeaseFile = "LEASE"

// FileOptions configures a FileLocker.
type FileOptions struct {
	// ID names this broker in the lease and in logs (default NewID()).
	ID string
	// TTL is how long a master's lease lasts without renewal (default 5s).
	// The master renews every TTL/4; it stops writing once TTL has passed on
	// its own clock since the start of its last successful renewal; a
	// standby takes the lease only after it has seen no renewal for
	// TTL + TTL/5 + 2 polls on its clock. A standby uses the longer of its
	// own TTL and the one the master wrote in the lease.
	TTL time.Duration
	// Poll is how often a standby tries the lock and reads the lease
	// (default 50ms): the takeover delay after a master's process dies.
	Poll time.Duration
	// Logger receives renewal trouble and loss (default slog.Default()).
	Logger *slog.Logger
}

func (o *FileOptions) fill() {
	if o.ID == "" {
		o.ID = NewID()
	}
	if o.TTL <= 0 {
		o.TTL = 5 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 50 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// FileLocker elects a master among brokers sharing a journal directory. It
// combines two mechanisms, because neither is enough alone:
//
//   - An exclusive flock on the directory's LOCK file (package dirlock),
//     held for the master's life. The kernel drops it the moment the
//     master's process dies, so after kill -9 a standby takes over within
//     one poll. But a master that is alive and stuck (SIGSTOP, a hung disk,
//     an NFS client cut off from the server) keeps its flock.
//   - A lease in the LEASE file: epoch, holder, a renewal counter and the
//     holder's TTL, replaced atomically (write a temporary file, rename).
//     The master renews it every TTL/4. A standby that finds the flock held
//     but sees no renewal for longer than the TTL (plus a margin) takes the
//     lease without the flock, with the next epoch. The old master cannot
//     write by then: its Valid fails once TTL has passed since its last
//     renewal began, and a renewal that itself took longer than the margin
//     counts as a loss, so a renewal delayed past a takeover never revives
//     the old master. Clocks are each process's monotonic clock; nothing
//     compares wall clocks between machines.
//
// A standby that took the lease without the flock keeps trying to take the
// flock, and holds it once the old master's process is gone.
//
// Only a holder that has written a lease can lose it to expiry: a directory
// locked by an offline tool (cairn journal ...), or by a broker that released
// its lease, is waited for until the flock is dropped.
//
// On NFS the flock is an NFS lock (NFSv4: held under the client's lease,
// lost if the client cannot renew it within the server's lease time, 90s by
// default). The LEASE file is read by opening it each time, which NFS's
// close-to-open consistency keeps fresh. See README, "High availability".
type FileLocker struct {
	dir  string
	opts FileOptions
}

// NewFileLocker returns a Locker on the journal directory dir.
func NewFileLocker(dir string, opts FileOptions) *FileLocker {
	opts.fill()
	return &FileLocker{dir: dir, opts: opts}
}

// ID returns the id this locker writes in the lease.
func (f *FileLocker) ID() string { return f.opts.ID }

// errContended says another standby took an expired lease at the same time.
var errContended = errors.New("replication: another standby took the lease")

// Acquire implements Locker.
func (f *FileLocker) Acquire(ctx context.Context, wait func(Waiting)) (Lease, error) {
	start := time.Now()
	var (
		seen     string    // the lease file as last read
		seenAt   time.Time // when it last changed
		reported Holder
		lastRep  time.Time
	)
	for {
		lock, err := dirlock.TryLock(f.dir)
		if err == nil {
			prev, _ := ReadLease(f.dir)
			how := "holder gone" // its process died or dropped the flock
			switch {
			case prev.ID == "":
				how = "free"
			case prev.Released:
				how = "released"
			}
			l, err := f.take(lock, prev, how, start)
			if err != nil {
				lock.Release()
				return nil, err
			}
			return l, nil
		}
		if !errors.Is(err, journal.ErrLocked) {
			return nil, err
		}
		raw, _ := os.ReadFile(filepath.Join(f.dir, LeaseFile))
		info, _ := parseLease(raw)
		now := time.Now()
		if seenAt.IsZero() || string(raw) != seen {
			seen, seenAt = string(raw), now
		}
		ttl := max(f.opts.TTL, info.TTL)
		limit := ttl + ttl/5 + 2*f.opts.Poll
		stale := now.Sub(seenAt)
		if info.ID != "" && !info.Released && stale > limit {
			l, err := f.take(nil, info, "expired", start)
			if err == nil {
				return l, nil
			}
			if !errors.Is(err, errContended) {
				return nil, err
			}
			seenAt = time.Time{} // someone else won: watch its renewals
			continue
		}
		if wait != nil && (info.Holder != reported || now.Sub(lastRep) >= time.Second) {
			reported, lastRep = info.Holder, now
			w := Waiting{Holder: info.Holder, Renewed: stale, ExpiresIn: limit - stale}
			if info.ID == "" || info.Released {
				w.ExpiresIn = 0
			}
			wait(w)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(f.opts.Poll):
		}
	}
}

// take writes this broker's lease over prev's. lock is the flock if we hold
// it, nil if the lease is taken from a holder that stopped renewing.
func (f *FileLocker) take(lock *dirlock.Lock, prev LeaseInfo, how string, start time.Time) (*fileLease, error) {
	host, _ := os.Hostname()
	l := &fileLease{f: f, lock: lock,
		info: LeaseInfo{Holder: Holder{ID: f.opts.ID, Host: host, PID: os.Getpid(), Epoch: prev.Epoch + 1}, TTL: f.opts.TTL}}
	l.start(f.opts.TTL, time.Now(), f.opts.Logger)
	l.epoch = l.info.Epoch
	l.took = Acquisition{How: how, Previous: prev.Holder}
	var err error
	if l.dirID, err = os.Stat(f.dir); err != nil {
		return nil, fmt.Errorf("replication: %w", err)
	}
	if err := l.write(true); err != nil {
		return nil, err
	}
	if lock == nil {
		// Another standby may have seen the same expiry: let both renames
		// land, then see whose stands.
		time.Sleep(2 * f.opts.Poll)
		cur, err := ReadLease(f.dir)
		if err != nil {
			return nil, err
		}
		if cur.Holder != l.info.Holder {
			return nil, errContended
		}
	}
	l.took.Waited = time.Since(start)
	l.lockHeld.Store(lock != nil)
	go l.keepAlive(l.renew)
	return l, nil
}

// fileLease is a lease held through a FileLocker.
type fileLease struct {
	leaseClock
	relOnce  sync.Once
	f        *FileLocker
	lockHeld atomic.Bool // the flock is held (mirrors lock != nil)
	dirID    os.FileInfo // the journal directory as it was at acquisition

	// Owned by keepAlive (and take, before it starts).
	info LeaseInfo
	lock *dirlock.Lock
}

// renew checks the lease file still names this lease and rewrites it with
// the next renewal count. It returns non-nil once the lease is lost.
func (l *fileLease) renew() error {
	ttl := l.ttl
	t0 := l.now()
	if err := l.Valid(); err != nil {
		return err
	}
	if fi, err := os.Stat(l.f.dir); err == nil && !os.SameFile(fi, l.dirID) || errors.Is(err, os.ErrNotExist) {
		// Removed or replaced under us: whatever is there now is not ours.
		return l.lose(fmt.Errorf("%w: the journal directory %s was removed or replaced", ErrLost, l.f.dir))
	}
	cur, err := ReadLease(l.f.dir)
	switch {
	case err != nil:
		l.f.opts.Logger.Warn("replication: cannot read the lease; will retry until it expires", "err", err)
		return nil
	case cur.Epoch > l.info.Epoch || cur.Epoch == l.info.Epoch && cur.Holder != l.info.Holder:
		return l.lose(fmt.Errorf("%w: taken over by %s", ErrLost, cur.Holder))
	case cur.Epoch < l.info.Epoch:
		// A deposed master's renewal landed after ours: ours still stands.
		l.f.opts.Logger.Warn("replication: a stale lease write from an older epoch; restoring ours", "stale", cur.Holder.String())
	}
	l.info.Seq++
	if err := l.write(false); err != nil {
		l.f.opts.Logger.Warn("replication: cannot renew the lease; will retry until it expires", "err", err)
		return nil
	}
	if took := time.Duration(l.now() - t0); took > ttl/5 {
		// A standby waits TTL/5 past the TTL; a renewal slower than that may
		// have landed after it took over.
		return l.lose(fmt.Errorf("%w: renewal took %s, longer than the %s a standby allows", ErrLost, took.Round(time.Millisecond), ttl/5))
	}
	l.renewed(t0)
	if l.lock == nil {
		if lock, err := dirlock.TryLock(l.f.dir); err == nil {
			l.lock = lock // the old master's process is gone
			l.lockHeld.Store(true)
			l.f.opts.Logger.Info("replication: took the journal's flock; the previous master's process is gone", "epoch", l.info.Epoch)
		}
	}
	return nil
}

// write replaces the lease file with l.info. A renewal (not durable)
// overwrites the file in place: it is one fixed-size record with a
// checksum, in blocks the file already has, so that a full disk cannot
// make the master lose its lease (a new file needs new blocks). A reader
// that catches the write half done sees a bad checksum and reads again.
// Taking the lease (durable) writes a new file and renames it over.
func (l *fileLease) write(durable bool) error {
	l.info.Renewed = time.Now()
	path := filepath.Join(l.f.dir, LeaseFile)
	rec := []byte(l.info.encodeFile())
	if !durable {
		if done, err := overwrite(path, rec); done || err != nil {
			if err != nil {
				return fmt.Errorf("replication: renew lease %s: %w", path, err)
			}
			return nil
		}
	}
	tmp := path + "." + l.f.opts.ID + ".tmp"
	err := os.WriteFile(tmp, rec, journal.FileMode)
	if err == nil && durable {
		err = syncFile(tmp)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil && durable {
		err = syncFile(l.f.dir)
	}
	if err != nil {
		os.Remove(tmp)
		if errors.Is(err, syscall.ENOSPC) {
			// A full disk: no block for a new file. The lease's own file,
			// overwritten in place and fsynced, needs none.
			if done, oerr := overwrite(path, rec); done && oerr == nil {
				if !durable {
					return nil
				}
				if oerr = syncFile(path); oerr == nil {
					return nil
				}
			}
		}
		return fmt.Errorf("replication: write lease %s: %w", path, err)
	}
	return nil
}

// overwrite writes rec over the file at path from its start, if the file is
// exactly len(rec) bytes; done says it was.
func overwrite(path string, rec []byte) (done bool, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return false, nil // not there (yet): written anew
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() != int64(len(rec)) {
		return false, nil // an older broker's lease: written anew
	}
	if _, err := f.WriteAt(rec, 0); err != nil {
		return true, err
	}
	return true, f.Close()
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Release marks the lease released and drops the flock, so that a standby
// takes over within one poll.
func (l *fileLease) Release() error {
	var err error
	l.relOnce.Do(func() {
		l.released.Store(true)
		l.halt()
		if l.Err() == nil {
			if cur, rerr := ReadLease(l.f.dir); rerr == nil && cur.Holder == l.info.Holder {
				l.info.Released = true
				err = l.write(true)
			}
		}
		if l.lock != nil {
			if rerr := l.lock.Release(); err == nil {
				err = rerr
			}
		}
	})
	return err
}

func (l *fileLease) abandon() {
	l.relOnce.Do(func() {
		l.halt()
		l.lose(fmt.Errorf("%w: abandoned (the holder was killed)", ErrLost))
		if l.lock != nil {
			l.lock.Release()
		}
	})
}

// LeaseInfo is the content of a lease file.
type LeaseInfo struct {
	Holder
	Seq      uint64        // renewals so far
	Renewed  time.Time     // wall clock of the last renewal (for people; never compared across hosts)
	TTL      time.Duration // the holder's TTL
	Released bool          // the holder gave the lease up
}

func (i LeaseInfo) encode() string {
	return fmt.Sprintf("epoch=%d id=%s host=%s pid=%d seq=%d renewed=%s ttl=%s released=%t\n",
		i.Epoch, i.ID, i.Host, i.PID, i.Seq, i.Renewed.UTC().Format(time.RFC3339Nano), i.TTL, i.Released)
}

// leaseFileSize is the size of the lease file's one record.
const leaseFileSize = 512

// encodeFile is the lease file's record: encode's fields, a CRC32C of them,
// spaces up to leaseFileSize, and a line feed.
func (i LeaseInfo) encodeFile() string {
	fields := strings.TrimSuffix(i.encode(), "\n")
	rec := fmt.Sprintf("%s crc=%08x", fields, crc32.Checksum([]byte(fields), crcTable))
	return rec + strings.Repeat(" ", max(leaseFileSize-1-len(rec), 0)) + "\n"
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func parseLease(b []byte) (LeaseInfo, error) {
	var i LeaseInfo
	if !strings.HasSuffix(string(b), "\n") {
		return i, errors.New("incomplete")
	}
	if k := strings.LastIndex(string(b), " crc="); k >= 0 {
		want, err := strconv.ParseUint(strings.TrimSpace(string(b[k+len(" crc="):])), 16, 32)
		if err != nil || crc32.Checksum(b[:k], crcTable) != uint32(want) {
			return i, errors.New("bad checksum (read while being written?)")
		}
		b = b[:k]
	}
	for _, kv := range strings.Fields(string(b)) {
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "epoch":
			i.Epoch, err = strconv.ParseUint(v, 10, 64)
		case "id":
			i.ID = v
		case "host":
			i.Host = v
		case "pid":
			i.PID, err = strconv.Atoi(v)
		case "seq":
			i.Seq, err = strconv.ParseUint(v, 10, 64)
		case "renewed":
			i.Renewed, err = time.Parse(time.RFC3339Nano, v)
		case "ttl":
			i.TTL, err = time.ParseDuration(v)
		case "released":
			i.Released, err = strconv.ParseBool(v)
		}
		if err != nil {
			return LeaseInfo{}, fmt.Errorf("field %s: %w", k, err)
		}
	}
	return i, nil
}

// ReadLease reads the lease file in dir. A missing file is an empty
// LeaseInfo and no error.
func ReadLease(dir string) (LeaseInfo, error) {
	path := filepath.Join(dir, LeaseFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return LeaseInfo{}, nil
	}
	if err != nil {
		return LeaseInfo{}, err
	}
	i, err := parseLease(b)
	if err != nil {
		return LeaseInfo{}, fmt.Errorf("replication: %s: %w", path, err)
	}
	return i, nil
}

// hasLock reports whether this lease holds the flock.
func (l *fileLease) hasLock() bool {
	return l.lockHeld.Load()
}
