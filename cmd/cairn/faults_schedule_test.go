// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

//go:build !soak

package main

import (
	"time"

	"github.com/cairnmq/cairn/internal/faults"
)

// faultsSchedule is TestFaults' short run, for CI: each fault once.
func faultsSchedule() []faults.Fault {
	s := time.Second
	return []faults.Fault{
		{At: 3 * s, Kind: faults.Kill9},
		{At: 7 * s, Kind: faults.Stop, For: 2 * s},
		{At: 12 * s, Kind: faults.Flood, Count: 500, For: 3 * s},
		{At: 17 * s, Kind: faults.Stall, For: 5 * s},
		{At: 24 * s, Kind: faults.FullDisk, For: 3 * s},
		{At: 30 * s, Kind: faults.Kill9},
	}
}
