// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package replication will decide who may write a journal: lockers (the flock of journal/dirlock, a
// JetStream lease) with fencing, and the standby loop. Nothing is built here yet; see DESIGN.md.
package replication
