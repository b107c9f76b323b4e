// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	"gopkg.in/yaml.v3"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/gateways/stomp"
	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/wal"
)

func serveFlags() []cli.Flag {
	return []cli.Flag{
		altsrc.NewStringFlag(&cli.StringFlag{Name: "listen", Value: "127.0.0.1:61613", EnvVars: []string{"CAIRN_LISTEN"}, Usage: "STOMP listen address"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "data", Value: "./cairn-data", EnvVars: []string{"CAIRN_DATA"}, Usage: "journal directory"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "sync", Value: "always", EnvVars: []string{"CAIRN_SYNC"}, Usage: "journal sync policy: always, interval or never"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "sync-interval", Value: 50 * time.Millisecond, EnvVars: []string{"CAIRN_SYNC_INTERVAL"}, Usage: "most time between fsyncs under --sync interval"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "persistent-default", EnvVars: []string{"CAIRN_PERSISTENT_DEFAULT"}, Usage: "a SEND without a persistent header is persistent (ActiveMQ's default: not)"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-connections", Value: 10000, EnvVars: []string{"CAIRN_MAX_CONNECTIONS"}, Usage: "open connections at most"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-body", Value: 10 << 20, EnvVars: []string{"CAIRN_MAX_BODY"}, Usage: "bytes in one frame's body at most"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-headers", Value: 1000, EnvVars: []string{"CAIRN_MAX_HEADERS"}, Usage: "headers in one frame at most"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-header-bytes", Value: 10 << 10, EnvVars: []string{"CAIRN_MAX_HEADER_BYTES"}, Usage: "bytes in one header line at most"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "cpu-profile", EnvVars: []string{"CAIRN_CPU_PROFILE"}, Usage: "write a CPU profile (go tool pprof) to this file until shutdown"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"CAIRN_LOG_LEVEL"}, Usage: "debug, info, warn or error"}),
	}
}

func serveCommand() *cli.Command {
	flags := serveFlags()
	all := append([]cli.Flag{&cli.StringFlag{Name: "config", EnvVars: []string{"CAIRN_CONFIG"},
		Usage: "YAML file of settings, keyed by flag name (flags and environment variables win over it)"}}, flags...)
	return &cli.Command{
		Name:         "serve",
		Usage:        "run the broker: STOMP on --listen, the journal in --data",
		Flags:        all,
		OnUsageError: usageError,
		Before: func(c *cli.Context) error {
			if err := checkConfig(c.String("config"), flags); err != nil {
				return cli.Exit(err.Error(), exitUsage)
			}
			if err := altsrc.InitInputSourceWithContext(flags, altsrc.NewYamlSourceFromFlagFunc("config"))(c); err != nil {
				return cli.Exit(fmt.Sprintf("--config %s: %v", c.String("config"), err), exitUsage)
			}
			return nil
		},
		Action: serve,
	}
}

// checkConfig refuses a config file with a key that is not a serve flag:
// a misspelt setting must not be silently ignored.
func checkConfig(path string, flags []cli.Flag) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %v", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("--config %s: %v", path, err)
	}
	known := map[string]bool{}
	for _, f := range flags {
		for _, n := range f.Names() {
			known[n] = true
		}
	}
	for k := range m {
		if !known[k] {
			return fmt.Errorf("--config %s: unknown setting %q (settings are serve's flag names, e.g. listen, data, sync)", path, k)
		}
	}
	return nil
}

func serve(c *cli.Context) error {
	if c.NArg() != 0 {
		return cli.Exit("serve takes no arguments (see --help)", exitUsage)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return cli.Exit(fmt.Sprintf("--log-level %q: %v", c.String("log-level"), err), exitUsage)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	pol, err := journal.ParseSyncPolicy(c.String("sync"))
	if err != nil {
		return cli.Exit(fmt.Sprintf("--sync: %v", err), exitUsage)
	}
	if path := c.String("cpu-profile"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return cli.Exit(fmt.Sprintf("--cpu-profile: %v", err), exitUsage)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return cli.Exit(fmt.Sprintf("--cpu-profile: %v", err), exitFailure)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	start := time.Now()
	// A record is one message: room for the largest body and 1 MiB of headers.
	maxRecord := c.Int("max-body") + 1<<20
	l, err := wal.Open(c.String("data"), wal.Options{Sync: pol, SyncInterval: c.Duration("sync-interval"), Logger: logger,
		MaxRecordBytes: maxRecord, SegmentBytes: max(16<<20, 2*maxRecord+1<<20)})
	if err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	defer l.Close()
	if cut := l.Recovery().Cut; cut != nil {
		logger.Warn("journal: cut a torn tail", "detail", fmt.Sprintf("%+v", *cut))
	}
	b, err := core.Open(core.Options{Journal: l, PersistentByDefault: c.Bool("persistent-default"), Logger: logger,
		Progress: func(p journal.Progress) {
			if !p.Done {
				logger.Info("replaying the journal", "records", p.Records, "of", p.Total, "eta", p.ETA.Round(time.Second))
			}
		}})
	if err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	defer b.Close()
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	srv := stomp.NewServer(b, stomp.Options{
		Limits:         stomp.Limits{MaxHeaders: c.Int("max-headers"), MaxHeaderBytes: c.Int("max-header-bytes"), MaxBodyBytes: c.Int("max-body")},
		MaxConnections: c.Int("max-connections"), Logger: logger, ServerName: "Cairn/" + versionString(),
	})
	rec := b.Recovery()
	logger.Info("cairn listening", "stomp", ln.Addr().String(), "data", c.String("data"), "sync", pol.String(),
		"replayed_records", rec.Records, "pending_messages", rec.Messages, "queues", rec.Queues,
		"replay", rec.Took.Round(time.Millisecond), "startup", time.Since(start).Round(time.Millisecond))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-served:
		return cli.Exit(fmt.Sprintf("stomp listener: %v", err), exitFailure)
	case s := <-sigs:
		logger.Info("draining: closing connections; signal again to exit at once", "signal", s.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		s := <-sigs
		logger.Warn("exiting at once", "signal", s.String())
		os.Exit(exitFailure)
	}()
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		logger.Warn("drain", "err", err)
	}
	// A snapshot at the end makes the next start replay nothing.
	if res, err := b.Maintain(true); err != nil {
		logger.Warn("final snapshot", "err", err)
	} else {
		logger.Info("final snapshot", "index", res.Snapshot, "pending", res.Pending)
	}
	logger.Info("stopped")
	return nil
}
