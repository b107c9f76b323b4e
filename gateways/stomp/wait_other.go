// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package stomp

// Elsewhere a connection keeps its read buffer while idle.
const canWait = false

func waitReadable(*reader) error { return nil }
