// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package gateways will hold the client-facing listeners (gateways/stomp) and the upstream bridge
// tier (gateways/bridge). Nothing is built here yet; see DESIGN.md.
package gateways
