// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package node runs one broker of a master/standby group as a library:
// New(Options) then Run(ctx). `cairn serve` is this package behind flags.
//
// A node's life, all of it in Run:
//
//  1. Election. It asks the journal's Locker (package replication: a lease
//     file and flock beside the wal, or a JetStream key-value entry) for
//     the lease. While another broker holds it the node is a standby: it
//     reports what it waits for and, with Options.Warm, follows the journal
//     (replication.WarmStandby) so that a takeover replays only the tail.
//  2. Takeover. Holding the lease, it opens the journal as its only writer
//     (the wal with the lease as its write gate and the previous master's
//     tail segment detached; JetStream with a fence record the server
//     checks on every later append), and core.Open replays it from the
//     newest snapshot, or from the standby's state.
//  3. Serving. The STOMP listener (gateways/stomp) serves the broker.
//  4. The end. When ctx ends it drains connections, writes a final
//     snapshot, closes the journal and releases the lease, so a standby
//     takes over at once: Run returns nil. When the lease is lost it
//     fail-stops: it closes every connection and returns an error wrapping
//     ErrFenced, with the deferred cleanup done. Kill and Freeze stand in
//     for SIGKILL and SIGSTOP in tests that need no process.
//
// The package sits in replication/ because what it adds to the lockers is
// the standby loop the design gives to replication: wait, follow, take
// over, fail-stop. It is the one package that imports every layer
// (journal backends, core, gateways/stomp, replication); nothing imports
// it but cmd/cairn and tests. internal/clustertest starts groups of nodes
// on one journal for tests.
package node
