// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package wal_test

import (
	"fmt"
	"testing"

	twal "github.com/tidwall/wal"
)

// BenchmarkTidwallCeiling measures what tidwall/wal alone does with one
// group commit of n records: one WriteBatch of n entries and one Sync, in a
// loop, with no framing, no queueing and no other goroutine. It is the
// ceiling this backend can reach, to run beside BenchmarkLog's cells:
//
//	go test -run '^$' -bench 'TidwallCeiling|Log/sync=always/rec=(1|16)KiB/appenders=(64|512)$' ./journal/wal/
func BenchmarkTidwallCeiling(b *testing.B) {
	for _, c := range []struct{ size, n int }{{1024, 64}, {1024, 512}, {16384, 64}} {
		b.Run(fmt.Sprintf("rec=%dB/batch=%d", c.size, c.n), func(b *testing.B) {
			tw, err := twal.Open(b.TempDir(), &twal.Options{NoSync: true, SegmentSize: 16 << 20, LogFormat: twal.Binary})
			if err != nil {
				b.Fatal(err)
			}
			defer tw.Close()
			data := make([]byte, c.size)
			var batch twal.Batch
			next := uint64(1)
			b.SetBytes(int64(c.size))
			b.ResetTimer()
			for done := 0; done < b.N; {
				batch.Clear()
				k := min(c.n, b.N-done)
				for range k {
					batch.Write(next, data)
					next++
				}
				if err := tw.WriteBatch(&batch); err != nil {
					b.Fatal(err)
				}
				if err := tw.Sync(); err != nil {
					b.Fatal(err)
				}
				done += k
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}
