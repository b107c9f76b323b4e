// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"

	"github.com/cairnmq/cairn/gateways/admin"
)

func httpFlags() []cli.Flag {
	return []cli.Flag{
		altsrc.NewStringFlag(&cli.StringFlag{Name: "http", EnvVars: []string{"CAIRN_HTTP"}, Usage: "serve /livez, /healthz, /readyz and Prometheus /metrics on this address, e.g. 127.0.0.1:8161 (off unless given)"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "metrics-max-queues", Value: 1000, EnvVars: []string{"CAIRN_METRICS_MAX_QUEUES"}, Usage: "queues reported one by one in /metrics, the deepest first (the rest summed as _other; -1: none)"}),
	}
}

// serveHTTP serves the admin handler for src on --http, if given, until
// stop is called.
func serveHTTP(c *cli.Context, src admin.Source, logger *slog.Logger) (stop func(), err error) {
	addr := c.String("http")
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, cli.Exit("--http: "+err.Error(), exitFailure)
	}
	hs := &http.Server{Handler: admin.Handler(src, admin.Options{MaxQueues: c.Int("metrics-max-queues")}), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	logger.Info("http listening", "http", ln.Addr().String(), "paths", "/livez /healthz /readyz /metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
	}, nil
}

func healthCommand() *cli.Command {
	return &cli.Command{
		Name:         "health",
		Usage:        "ask a node's --http whether it is ready (/readyz): exit 0 if so, 1 if not; for container health checks",
		ArgsUsage:    "URL (e.g. http://127.0.0.1:8161)",
		OnUsageError: usageError,
		Flags:        []cli.Flag{&cli.BoolFlag{Name: "live", Usage: "ask /livez instead: is the process up at all"}},
		Action: func(c *cli.Context) error {
			base, err := oneArg(c, "the node's --http URL")
			if err != nil {
				return err
			}
			path := "/readyz"
			if c.Bool("live") {
				path = "/livez"
			}
			cl := &http.Client{Timeout: 5 * time.Second}
			resp, err := cl.Get(base + path)
			if err != nil {
				return cli.Exit(err.Error(), exitFailure)
			}
			defer resp.Body.Close()
			b := make([]byte, 512)
			n, _ := resp.Body.Read(b)
			fmt.Fprint(os.Stdout, string(b[:n]))
			if resp.StatusCode != http.StatusOK {
				return cli.Exit("", exitFailure)
			}
			return nil
		},
	}
}
