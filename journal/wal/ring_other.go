// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package wal

import "os"

const ringOpenFlags = 0

func ringSync(f *os.File) error { return f.Sync() }
