// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package journaltest

import (
	"os"
	"testing"
)

// DamageFile flips every bit of a file's last byte: damage a checksum
// catches, at a place a test need not work out.
func DamageFile(t testing.TB, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		t.Fatalf("%s is empty: nothing to damage", path)
	}
	b[len(b)-1] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
