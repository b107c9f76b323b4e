// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package journaltest

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// CloneDir copies the directory src to a new temporary directory and
// returns it. Copied while a journal is open and idle, it is what kill -9
// leaves: every write the process made, synced or not.
func CloneDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
