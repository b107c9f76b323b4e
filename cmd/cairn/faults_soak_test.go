// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

//go:build soak

package main

import (
	"time"

	"github.com/cairnmq/cairn/internal/faults"
)

// faultsSchedule is TestFaults' long run (-tags soak): the short run's
// faults over and over for 10 minutes.
func faultsSchedule() []faults.Fault {
	s := time.Second
	var out []faults.Fault
	for at := 3 * s; at < 600*s; at += 30 * s {
		out = append(out,
			faults.Fault{At: at, Kind: faults.Kill9},
			faults.Fault{At: at + 4*s, Kind: faults.Stop, For: 2 * s},
			faults.Fault{At: at + 9*s, Kind: faults.Flood, Count: 500, For: 3 * s},
			faults.Fault{At: at + 14*s, Kind: faults.Stall, For: 5 * s},
			faults.Fault{At: at + 21*s, Kind: faults.FullDisk, For: 3 * s})
	}
	return out
}
