// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package bridge is the gateway tier: a consumer-facing node (`cairn
// gateway`) that serves STOMP clients with the same listener as the broker
// (gateways/stomp) and relays everything to an upstream broker, a master
// and its standbys, over a few upstream connections of its own (links).
//
// A gateway keeps no journal and never owns a message. A local queue
// subscription is relayed as an upstream subscription of its own, so the
// upstream dispatches to each local consumer as to any consumer: prefetch,
// priority, selectors, exclusive consumers, groups and redelivery hold
// unchanged, and a message stays upstream's until the consumer's ACK is
// confirmed there. A topic has one upstream subscription per (topic,
// selector) on the gateway, fanned out here. SENDs, with a
// duplicate-suppression id of the gateway's own when they have none, and
// transactions are relayed on the local connection's link, and their
// RECEIPTs come back only after upstream's.
//
// A link (link.go) has its own reader and writer on go-stomp's frame
// package: its reader never waits on a consumer and acks never wait on
// its reader, so it cannot deadlock as go-stomp's client does at a high
// prefetch. It follows the upstream list across failovers: it reconnects
// with back-off, resubscribes, and sends again what upstream had not
// confirmed; what was delivered on the lost connection comes again from
// upstream, marked redelivered.
package bridge
