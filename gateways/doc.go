// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package gateways holds the client-facing listeners: gateways/stomp is the
// STOMP 1.0/1.1/1.2 listener. The consumer-facing gateway tier
// (gateways/bridge) is not built yet; see DESIGN.md.
package gateways
