// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

//go:build soak

package main

import (
	"os"
	"testing"
	"time"
)

// TestGatewaySoak (-tags soak; `just gateway-soak`) runs the gateway tier's
// fault tests over and over, each round on fresh processes, for 10 minutes
// (CAIRN_SOAK, a Go duration, to change it): a master killed under a
// gateway, a gateway killed under load, a master frozen under a gateway,
// and an upstream cut off by a network partition. Each round checks its
// whole history (nothing receipted lost, nothing acked delivered again,
// every repeat marked redelivered, no client left hanging).
func TestGatewaySoak(t *testing.T) {
	d := 10 * time.Minute
	if s := os.Getenv("CAIRN_SOAK"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatalf("CAIRN_SOAK: %v", err)
		}
	}
	rounds := []struct {
		name string
		run  func(*testing.T)
	}{
		{"master killed", gatewayAcrossAMasterKill},
		{"gateway killed", gatewayKill9UnderLoad},
		{"master frozen", gatewayAcrossAFrozenMaster},
		{"partition", gatewayAcrossAPartition},
	}
	end := time.Now().Add(d)
	n := 0
	for time.Now().Before(end) && !t.Failed() {
		r := rounds[n%len(rounds)]
		t.Run(r.name, r.run)
		n++
	}
	t.Logf("%d rounds in %s", n, d)
}
