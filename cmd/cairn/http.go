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
	"github.com/cairnmq/cairn/gateways/auth"
	"github.com/cairnmq/cairn/gateways/stomp"
)

func httpFlags() []cli.Flag {
	return []cli.Flag{
		altsrc.NewStringFlag(&cli.StringFlag{Name: "http", EnvVars: []string{"CAIRN_HTTP"}, Usage: "serve /livez, /healthz, /readyz, Prometheus /metrics and the admin API (/api/v1/) on this address, e.g. 127.0.0.1:8161 (off unless given)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "http-admin-group", Value: "admins", EnvVars: []string{"CAIRN_HTTP_ADMIN_GROUP"}, Usage: "with --users, the group whose users may use the admin API"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "metrics-max-queues", Value: 1000, EnvVars: []string{"CAIRN_METRICS_MAX_QUEUES"}, Usage: "queues reported one by one in /metrics, the deepest first (the rest summed as _other; -1: none)"}),
	}
}

// serveHTTP serves the admin handler for src on --http, if given, until
// stop is called.
//
// The admin API takes logins of --http-admin-group's users when there are
// --users; without, it is served on a loopback address only (elsewhere it
// answers 403, while health and metrics still answer).
func serveHTTP(c *cli.Context, src admin.Source, users *auth.Users, logger *slog.Logger) (stop func(), err error) {
	addr := c.String("http")
	if addr == "" {
		return func() {}, nil
	}
	o := admin.Options{MaxQueues: c.Int("metrics-max-queues"), Users: users, AdminGroup: c.String("http-admin-group")}
	if users == nil && !loopback(addr) {
		o.APIRefused = fmt.Sprintf("the admin API is served off loopback only with --users (a user of the %q group logs in)", o.AdminGroup)
		logger.Warn("--http is not a loopback address and there are no --users: the admin API is refused there; health and metrics answer", "http", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, cli.Exit("--http: "+err.Error(), exitFailure)
	}
	o.Samples = admin.NewSampler(src, 0, 0)
	hs := &http.Server{Handler: admin.Handler(src, o), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	logger.Info("http listening", "http", ln.Addr().String(), "paths", "/livez /healthz /readyz /metrics /api/v1/ /console/ /admin/xml/")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		o.Samples.Stop()
	}, nil
}

// usersOf is the users file security loaded into so, if any.
func usersOf(so stomp.Options) *auth.Users {
	u, _ := so.Users.(*auth.Users)
	return u
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
