// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package core will be the broker state machine: destinations, subscriptions, dispatch, acks,
// transactions, redelivery, DLQ, expiry and selectors, as events on the journal and their replay.
// Nothing is built here yet; see DESIGN.md.
package core
