// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package gateways holds what faces clients: gateways/stomp is the STOMP
// 1.0/1.1/1.2 listener, gateways/bridge the consumer-facing gateway tier
// that serves it from an upstream broker, and gateways/stompclient a
// failover-aware Go client.
package gateways
