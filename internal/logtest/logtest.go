// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package logtest holds what tests need to read a component's log: a
// buffer that several goroutines may write at once.
package logtest

import (
	"strings"
	"sync"
)

// Buffer collects log output (a slog handler's io.Writer) from several
// goroutines. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Has reports whether s was written.
func (l *Buffer) Has(s string) bool { return strings.Contains(l.String(), s) }

// Count is how many times s was written.
func (l *Buffer) Count(s string) int { return strings.Count(l.String(), s) }
