// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package journaltest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairnmq/cairn/journal"
)

// Grid is the benchmark grid: record sizes × concurrent appenders × sync policies.
var (
	RecordSizes = []int{128, 1024, 16384}
	Appenders   = []int{1, 8, 64, 512}
)

// BenchOpener opens a fresh journal with the given sync policy for a benchmark.
type BenchOpener func(b *testing.B, sync journal.SyncPolicy) journal.Log

// Bench runs the append grid over the given sync policies (a backend that has
// no sync policy passes one), then a replay benchmark. Each append cell reports
// appends/s and MB/s; run it with -benchtime=Nx or a duration.
func Bench(b *testing.B, open BenchOpener, syncs ...journal.SyncPolicy) {
	for _, pol := range syncs {
		for _, size := range RecordSizes {
			for _, n := range Appenders {
				name := fmt.Sprintf("sync=%s/rec=%s/appenders=%d", pol, SizeName(size), n)
				b.Run(name, func(b *testing.B) { benchAppend(b, open(b, pol), size, n) })
			}
		}
	}
	b.Run("replay/rec=1KiB", func(b *testing.B) { benchReplay(b, open(b, journal.SyncNever), 1024) })
}

// SizeName prints 128 as "128B" and 16384 as "16KiB".
func SizeName(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%dKiB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}

func benchAppend(b *testing.B, l journal.Log, size, appenders int) {
	defer l.Close()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var next atomic.Int64
	total := int64(b.N)
	var wg sync.WaitGroup
	b.ResetTimer()
	for range appenders {
		wg.Go(func() {
			recs := []journal.Record{{Type: 1, Data: make([]byte, size)}}
			for next.Add(1) <= total {
				if _, _, err := l.Append(context.Background(), recs); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

func benchReplay(b *testing.B, l journal.Log, size int) {
	defer l.Close()
	const batch = 256
	recs := make([]journal.Record, batch)
	for i := range recs {
		recs[i] = journal.Record{Type: 1, Data: make([]byte, size)}
	}
	for range (64 << 20) / size / batch { // 64 MiB of records
		if _, _, err := l.Append(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	}
	n := l.LastIndex()
	b.SetBytes(int64(n) * int64(size))
	b.ResetTimer()
	for range b.N {
		p, err := journal.Replay(l, 1, func(journal.Record) error { return nil }, journal.ReplayOptions{})
		if err != nil || p.Records != n {
			b.Fatalf("replay: %d records, %v", p.Records, err)
		}
	}
}
