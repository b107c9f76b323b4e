// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package dirlock holds an exclusive flock on a directory's LOCK file, with
// the holder's pid, host and start time written in it so that whoever finds
// the directory locked can say by whom. It is the interlock that keeps two
// processes from writing one journal, and, for master/standby, the election.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cairnmq/cairn/journal"
)

// FileName is the lock file inside the locked directory.
const FileName = "LOCK"

// Holder describes who holds (or last held) a lock.
type Holder struct {
	PID   int
	Host  string
	Since time.Time
}

func (h Holder) String() string {
	if h.PID == 0 {
		return "an unknown process"
	}
	return fmt.Sprintf("pid %d on host %s (since %s)", h.PID, h.Host, h.Since.Format(time.RFC3339))
}

// LockedError says the directory is held by someone else. It wraps
// journal.ErrLocked.
type LockedError struct {
	Dir    string
	Holder Holder
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("journal %s is locked by %s", e.Dir, e.Holder)
}

func (e *LockedError) Unwrap() error { return journal.ErrLocked }

// Lock is a held directory lock. The lock lives as long as the process keeps
// the file open; the kernel releases it if the process dies.
type Lock struct {
	f *os.File
}

// TryLock takes the lock on dir without waiting. If another process (or
// another Lock in this one) holds it, the error is a *LockedError naming it.
func TryLock(dir string) (*Lock, error) {
	f, err := flock(dir)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	info := fmt.Sprintf("pid=%d host=%s since=%s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339Nano))
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(info), 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: write holder: %w", dir, err)
	}
	return &Lock{f: f}, nil
}

// flock opens dir's LOCK file and takes the lock without waiting.
func flock(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, FileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			h, _ := ReadHolder(dir)
			return nil, &LockedError{Dir: dir, Holder: h}
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}

// ReadHolder reads who holds, or last held, the lock on dir.
func ReadHolder(dir string) (Holder, error) {
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		return Holder{}, err
	}
	var h Holder
	for _, kv := range strings.Fields(string(b)) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "pid":
			h.PID, _ = strconv.Atoi(v)
		case "host":
			h.Host = v
		case "since":
			h.Since, _ = time.Parse(time.RFC3339Nano, v)
		}
	}
	return h, nil
}

// IsHeld reports whether some process holds the lock on dir right now, and
// who. It takes and drops the lock to find out, without writing the LOCK
// file, so call it only where contending for a moment is harmless (offline
// tools).
func IsHeld(dir string) (bool, Holder) {
	f, err := flock(dir)
	if err == nil {
		f.Close()
		return false, Holder{}
	}
	var le *LockedError
	if errors.As(err, &le) {
		return true, le.Holder
	}
	return false, Holder{}
}

// Release drops the lock. The LOCK file stays; its contents say who held it last.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
