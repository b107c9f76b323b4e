// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cairnmq/cairn/journal"
)

// DetachTail gives the journal in dir a fresh copy of its tail segment, for
// a new master taking over from one that may still be alive (frozen, or cut
// off). The old master writes through a file it holds open; after the copy
// is renamed into place that file is unlinked, so a write the old master
// makes after waking up lands in a file nobody reads, instead of in the
// segment the new master appends to. Call it holding the right to write
// (a replication lease) and before Open.
//
// What it cannot stop: the old master creating a new segment file (its
// batch crossing a segment boundary) in the instant between its last lease
// check and the write. See README, "High availability".
func DetachTail(dir string) error {
	walDir := filepath.Join(dir, segmentDir)
	segs, err := listSegments(walDir)
	if errors.Is(err, os.ErrNotExist) || err == nil && len(segs) == 0 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("wal: detach tail: %w", err)
	}
	tail := segs[len(segs)-1].path
	tmp := tail + ".detach"
	if err := copyFile(tail, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("wal: detach tail %s: %w", tail, err)
	}
	if err := os.Rename(tmp, tail); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("wal: detach tail %s: %w", tail, err)
	}
	return syncDir(walDir)
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, journal.FileMode)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, src)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	return err
}
