// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package interop finds the real clients that interop tests run (Debian's
// python3-stomp, npm's stompjs): a test skips without one, and fails
// without one when CAIRN_REQUIRE_INTEROP is set (scripts/test sets it once
// it has installed them).
package interop

import (
	"os"
	"os/exec"
	"testing"
)

// Python returns the Python that has stomp.py (python3-stomp).
func Python(t testing.TB) string {
	t.Helper()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import stomp").Run(); err != nil {
		Missing(t, "python3-stomp (scripts/test installs it)", err)
	}
	return py
}

// Missing skips t, or fails it under CAIRN_REQUIRE_INTEROP, for want of
// what.
func Missing(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CAIRN_REQUIRE_INTEROP") != "" {
		t.Fatalf("%s is not installed: %v", what, err)
	}
	t.Skipf("%s is not installed", what)
}
