// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package floor

import "os"

const syncFlag = 0

func syncRing(f *os.File) error { return f.Sync() }
