// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

//go:build soak

package main

// soakFailovers: the long soak, go test -tags soak -run TestFailoverSoak ./cmd/cairn.
const soakFailovers = 200
