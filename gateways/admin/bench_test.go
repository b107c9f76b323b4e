// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package admin_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/gateways/admin"
	"github.com/cairnmq/cairn/internal/brokertest"
)

// BenchmarkTenThousandQueues: a broker with 10,000 queues (one message
// each): a /metrics scrape at the default cap (1,000 series a family, the
// rest summed) and with none capped, a page of the API's queue list
// sorted by depth, and the console's first page of queues.
//
//	go test -run '^$' -bench TenThousandQueues -benchtime 20x ./gateways/admin
func BenchmarkTenThousandQueues(b *testing.B) {
	br := brokertest.Start(b, brokertest.Options{})
	ctx := context.Background()
	for i := range 10000 {
		m := &core.Message{Destination: core.Destination{Kind: core.Queue, Name: fmt.Sprintf("q.%05d", i)}, Priority: 4, Body: []byte("x")}
		if err := br.Core.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	src := admin.Source{Broker: func() *core.Broker { return br.Core }}
	for _, c := range []struct {
		name, path string
		o          admin.Options
	}{
		{"metrics, 1,000 series", "/metrics", admin.Options{}},
		{"metrics, all 10,000", "/metrics", admin.Options{MaxQueues: 20000}},
		{"api queues by depth", "/api/v1/queues?sort=depth&limit=100", admin.Options{}},
		{"console queues", "/console/queues?sort=depth", admin.Options{}},
	} {
		h := admin.Handler(src, c.o)
		b.Run(c.name, func(b *testing.B) {
			bytes := 0
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", c.path, nil))
				if rec.Code != 200 {
					b.Fatalf("%s: %d", c.path, rec.Code)
				}
				bytes = rec.Body.Len()
			}
			b.ReportMetric(float64(bytes), "bytes/op")
		})
	}
}
