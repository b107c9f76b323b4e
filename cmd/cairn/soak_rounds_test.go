// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

//go:build !soak

package main

// soakFailovers is how many kill -9 failovers TestFailoverSoak runs; the
// long soak (go test -tags soak ./cmd/cairn) runs 200.
const soakFailovers = 20
