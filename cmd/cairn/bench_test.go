// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// `cairn bench floor` serves scenario (a) for `cairn bench broker`, and on
// SIGTERM exits 0 and removes its ring.
func TestBenchFloorAndBroker(t *testing.T) {
	addr := freeAddr(t)
	dir := filepath.Join(t.TempDir(), "floor")
	var logs strings.Builder
	fl := exec.Command(binary(t), "bench", "floor", "--listen", addr, "--dir", dir)
	fl.Stderr = &logs
	if err := fl.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fl.Process.Kill(); fl.Wait() })
	connectWhenUp(t, addr, 10*time.Second)
	out, err := exec.Command(binary(t), "bench", "broker", "--addr", addr, "--producers", "1", "--consumers", "1",
		"--persistent", "--receipt", "--count", "200", "--json").Output()
	if err != nil {
		t.Fatalf("bench broker: %v\n%s", err, out)
	}
	var r struct{ Sent, Received, Lost, Duplicates int64 }
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.Sent != 200 || r.Received != 200 || r.Lost != 0 || r.Duplicates != 0 {
		t.Fatalf("against the floor: %+v, want 200 sent and received", r)
	}
	fl.Process.Signal(syscall.SIGTERM)
	if err := fl.Wait(); err != nil {
		t.Fatalf("bench floor after SIGTERM: %v\n%s", err, logs.String())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("bench floor left %s behind (%v)", dir, err)
	}
}
