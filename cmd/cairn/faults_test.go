// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnmq/cairn/internal/faults"
	"github.com/cairnmq/cairn/replication/node"
)

// TestFaults runs a real cairn serve under receipted load (three producers,
// two consumers acknowledging each message with a receipted COMMIT) and
// injects, on a schedule: kill -9 and a restart, SIGSTOP for 2 s, a flood
// of 500 bare sockets, a consumer that reads nothing with a prefetch of
// 100,000, a full disk for 3 s (the data is on a 96 MiB tmpfs where one can
// be mounted), and a second kill -9. Then it checks the history: nothing
// receipted is lost, nothing whose ack was confirmed comes back, every
// repeat is marked redelivered, and the journal and the RSS stay within
// their bounds. About 40 s; with -tags soak, 10 minutes and every fault
// many times (just faults-soak).
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("a 40 s process test")
	}
	disk := ""
	data := filepath.Join(t.TempDir(), "data")
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=96m,mode=0700", "cairn-faults", filepath.Dir(data)).CombinedOutput(); err == nil {
		disk = filepath.Dir(data)
		t.Cleanup(func() { exec.Command("umount", disk).Run() })
	} else {
		t.Logf("no tmpfs to fill (%v: %s): the full-disk fault is skipped", err, out)
	}
	schedule := faultsSchedule()
	var total time.Duration
	for _, f := range schedule {
		total = max(total, f.At+f.For)
	}
	const memMB = 128
	rep, err := faults.Run(context.Background(), faults.Options{
		Binary: binary(t), Data: data, Disk: disk,
		Args:     []string{"--memory-limit-mb", "128", "--snapshot-mb", "4"},
		Duration: total + 3*time.Second, Drain: 60 * time.Second,
		// 3 × 1,000 SENDs a second, which two consumers acking each with a
		// receipted COMMIT keep up with on a loaded 2-core machine, so that
		// the journal does not fill the disk by itself (the full-disk
		// fault fills it from outside, and producers then meet it).
		Producers: 3, Consumers: 2, Size: 2048, Rate: 1000, Faults: schedule,
		// The RSS bound is the one cairn serve states (node.RSSBound: the
		// memory limit, the read budget, the journal's buffers, a fixed
		// overhead and the collector's eighth). The journal's, beyond 2 × what was pending: 2 snapshot
		// intervals + 2 segments (23 MiB each with a 10 MiB --max-body) + 8
		// MiB for snapshot files.
		MaxRSS: memoryBound(memMB), JournalOverhead: 2*4<<20 + 2*23<<20 + 8<<20,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("faults: %v", rep.Faults)
	t.Logf("sent %d, receipted %d, delivered %d (%d again, marked), acked %d; peak RSS %d MiB, peak journal %d MiB, peak pending %d MiB",
		rep.Sent, rep.Receipted, rep.Delivered, rep.Redelivered, rep.Acked, rep.PeakRSS>>20, rep.PeakJournal>>20, rep.PeakPending>>20)
	t.Logf("broker events: %v", rep.Events)
	if disk != "" && rep.Events["journal: the disk is full"] == 0 {
		t.Fatal("the full-disk fault filled the disk but the journal never met it")
	}
	if rep.Receipted < 100 {
		t.Fatalf("only %d SENDs receipted: the load did not run", rep.Receipted)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
}

// memoryBound is the RSS cairn serve stays within at --memory-limit-mb mb
// and its other defaults.
func memoryBound(mb int64) int64 {
	o := node.NewOptions()
	o.Broker.MemoryLimit = mb << 20
	return node.RSSBound(o)
}
