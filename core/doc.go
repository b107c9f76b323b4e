// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package core is the broker state machine: queues and topics, their
// messages and subscriptions, acknowledgements and transactions, as events
// on a journal.Log and their replay.
//
// Every change to a persistent message is a journal record, appended before
// the change is confirmed: an enqueue (evEnqueue), an acknowledgement
// (evAck), an expiry (evExpired), a redelivery (evRedelivered: a NACK, or
// a consumer that went away with the message unacknowledged; the count
// survives restarts), a move to a dead-letter queue (evAck and evEnqueue in
// one batch), and a
// queue's dispatch bound (evDispatched), journaled before a delivery passes
// it so that after a crash a message that may have been delivered comes back
// marked redelivered. A transaction commit is one
// atomic journal batch. Open rebuilds the state by replaying the journal.
// Non-persistent messages stay in memory, as in ActiveMQ.
//
// Each destination runs its operations one at a time (a loop) on a
// goroutine that owns its state while it runs; nothing funnels every
// destination through one goroutine. An operation that finds its loop idle
// runs on the caller's goroutine instead of starting one (loop.claim): a
// receipted SEND is journaled, its RECEIPT written, and the message
// dispatched, all on the producer's connection goroutine. Journal appends
// happen on the caller's goroutine (a connection's), so group commit
// batches them across connections; a destination's goroutine waits on the
// journal only to move its dispatch bound, once per DispatchLookahead
// sequences.
//
// Snapshots hold an index-level projection of the journal (projection.go);
// background maintenance takes them and compacts the journal (maintain.go).
//
// Redelivery policies and dead-letter queues are in redelivery.go, expiry
// (evExpired) in expiry.go, duplicate suppression of resent SENDs in
// dedup.go, a warm standby's state in standby.go. Queues dispatch by
// priority, then sequence.
//
// Message groups and exclusive consumers are decided in queue.dispatch;
// purge and delete (evPurged, evDeleted) are in admin.go; Stats and
// Browse serve the admin interface to come.
//
// Paging past a memory limit is in paging.go; durable subscriptions in
// durable.go; selectors in the selector package.
package core
