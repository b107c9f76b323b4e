// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	"gopkg.in/yaml.v3"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/gateways/admin"
	"github.com/cairnmq/cairn/gateways/stomp"
	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/replication/node"
)

func serveFlags() []cli.Flag {
	return append(listenerFlags(), []cli.Flag{
		altsrc.NewStringFlag(&cli.StringFlag{Name: "data", Value: "./cairn-data", EnvVars: []string{"CAIRN_DATA"}, Usage: "journal directory (with --journal jetstream: where this broker reports its status)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "journal", Value: "wal", EnvVars: []string{"CAIRN_JOURNAL"}, Usage: "wal (embedded, in --data) or jetstream (a stream on --nats)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "nats", Value: "nats://127.0.0.1:4222", EnvVars: []string{"CAIRN_NATS"}, Usage: "NATS server URLs, comma-separated, for --journal jetstream"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "stream", Value: "CAIRN_JOURNAL", EnvVars: []string{"CAIRN_STREAM"}, Usage: "JetStream stream holding the journal (and the lease's key)"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "jetstream-max-batch", Value: 1000, EnvVars: []string{"CAIRN_JETSTREAM_MAX_BATCH"}, Usage: "records in one JetStream atomic batch at most: the NATS servers' jetstream { limits { batch { max_msgs } } } (1000 unless configured)"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "replicas", Value: 1, EnvVars: []string{"CAIRN_REPLICAS"}, Usage: "replicas of the stream and the lease bucket when created (3 on a 3-node NATS cluster)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "sync", Value: "always", EnvVars: []string{"CAIRN_SYNC"}, Usage: "journal sync policy: always, interval or never"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "sync-interval", Value: 50 * time.Millisecond, EnvVars: []string{"CAIRN_SYNC_INTERVAL"}, Usage: "most time between fsyncs under --sync interval"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "persistent-default", EnvVars: []string{"CAIRN_PERSISTENT_DEFAULT"}, Usage: "a SEND without a persistent header is persistent (ActiveMQ's default: not)"}),
		altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "redelivery", EnvVars: []string{"CAIRN_REDELIVERY"},
			Usage: "redelivery policy for queues matching PATTERN: PATTERN=max:N,delay:D,backoff:F,max-delay:D,dlq:NAME|individual (repeat; first match wins; default max:6, no delay, dlq:ActiveMQ.DLQ)"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "expired-to-dlq", EnvVars: []string{"CAIRN_EXPIRED_TO_DLQ"}, Usage: "move expired persistent messages to their queue's dead-letter queue (ActiveMQ's default) instead of dropping them"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "durable-offline-timeout", EnvVars: []string{"CAIRN_DURABLE_OFFLINE_TIMEOUT"}, Usage: "remove a durable topic subscription without a subscriber for this long (0: never)"}),
		altsrc.NewInt64Flag(&cli.Int64Flag{Name: "memory-limit-mb", Value: 1024, EnvVars: []string{"CAIRN_MEMORY_LIMIT_MB"}, Usage: "MiB of messages held in memory at most; past it, persistent messages wait in the journal only and are read back as consumers reach them (0: no limit)"}),
		altsrc.NewInt64Flag(&cli.Int64Flag{Name: "queue-memory-limit-mb", EnvVars: []string{"CAIRN_QUEUE_MEMORY_LIMIT_MB"}, Usage: "the same, for each queue (0: only the broker's limit)"}),
		altsrc.NewInt64Flag(&cli.Int64Flag{Name: "store-limit-mb", EnvVars: []string{"CAIRN_STORE_LIMIT_MB"}, Usage: "MiB of persistent messages held, and of the journal on disk, at most; at the limit persistent SENDs wait for room (0: no limit)"}),
		altsrc.NewUint64Flag(&cli.Uint64Flag{Name: "snapshot-every", Value: 100000, EnvVars: []string{"CAIRN_SNAPSHOT_EVERY"}, Usage: "journal records after the last snapshot that start the next, and a compaction"}),
		altsrc.NewInt64Flag(&cli.Int64Flag{Name: "snapshot-mb", Value: 16, EnvVars: []string{"CAIRN_SNAPSHOT_MB"}, Usage: "MiB of journal after the last snapshot that start the next (or four times the last snapshot's size, if more)"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "store-full-error", EnvVars: []string{"CAIRN_STORE_FULL_ERROR"}, Usage: "at the store limit, refuse persistent SENDs with ERROR code store-full instead of holding them"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "heap-profile", EnvVars: []string{"CAIRN_HEAP_PROFILE"}, Usage: "write a heap profile (go tool pprof) to this file when told to stop, before draining"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "wait", Value: true, EnvVars: []string{"CAIRN_WAIT"}, Usage: "when another broker holds the journal, wait as its standby and take over when it goes (false: exit at once)"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "warm", Value: true, EnvVars: []string{"CAIRN_WARM"}, Usage: "while standby, follow the journal so that a takeover replays only its last records (costs the journal projection's memory: a map entry per pending message)"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "lease-ttl", EnvVars: []string{"CAIRN_LEASE_TTL"}, DefaultText: "5s on wal, 15s on jetstream", Usage: "a master that cannot renew its journal lease for this long stops writing, and a standby takes over shortly after (on jetstream keep it above nats-server's 4-9 s leader election)"}),
	}...)
}

// listenerFlags are the STOMP listener's, and the profiles', shared by
// serve and gateway.
func listenerFlags() []cli.Flag {
	return append(append(securityFlags(), httpFlags()...),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "cpu-profile", EnvVars: []string{"CAIRN_CPU_PROFILE"}, Usage: "write a CPU profile (go tool pprof) to this file until shutdown"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "trace", EnvVars: []string{"CAIRN_TRACE"}, Usage: "write a Go execution trace (go tool trace: every goroutine's runs, waits and syscalls) to this file until shutdown; it grows by megabytes a second under load"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "listen", Value: "127.0.0.1:61613", EnvVars: []string{"CAIRN_LISTEN"}, Usage: "STOMP listen address"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-connections", Value: 10000, EnvVars: []string{"CAIRN_MAX_CONNECTIONS"}, Usage: "connected clients at most (past CONNECT)"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-unconnected", Value: 1000, EnvVars: []string{"CAIRN_MAX_UNCONNECTED"}, Usage: "connections that have not finished CONNECT at most, apart from --max-connections; one address may hold a tenth"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-connections-per-ip", Value: 1000, EnvVars: []string{"CAIRN_MAX_CONNECTIONS_PER_IP"}, Usage: "connections from one source address at most, connected or not (-1: no limit)"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "connect-timeout", Value: 10 * time.Second, EnvVars: []string{"CAIRN_CONNECT_TIMEOUT"}, Usage: "a connection must have sent its CONNECT by then"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "frame-timeout", Value: 30 * time.Second, EnvVars: []string{"CAIRN_FRAME_TIMEOUT"}, Usage: "one frame, first byte to last, at most (at least the client's heart-beat timeout)"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "idle-timeout", EnvVars: []string{"CAIRN_IDLE_TIMEOUT"}, Usage: "close a connected client without heart-beats that sends nothing for this long (0: never)"}),
		altsrc.NewInt64Flag(&cli.Int64Flag{Name: "read-memory-mb", EnvVars: []string{"CAIRN_READ_MEMORY_MB"}, Usage: "MiB of partly read frames across all connections at most (0: a quarter of --memory-limit-mb, at least twice --max-body; 256 without a memory limit)"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-body", Value: 10 << 20, EnvVars: []string{"CAIRN_MAX_BODY"}, Usage: "bytes in one frame's body at most"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-headers", Value: 1000, EnvVars: []string{"CAIRN_MAX_HEADERS"}, Usage: "headers in one frame at most"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-header-bytes", Value: 10 << 10, EnvVars: []string{"CAIRN_MAX_HEADER_BYTES"}, Usage: "bytes in one header line at most"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"CAIRN_LOG_LEVEL"}, Usage: "debug, info, warn or error"}),
	)
}

func serveCommand() *cli.Command {
	return withConfig(&cli.Command{
		Name:   "serve",
		Usage:  "run the broker: STOMP on --listen, the journal in --data",
		Action: serve,
	}, serveFlags())
}

// withConfig gives cmd its flags and --config: a YAML file keyed by flag
// name, under the flags and environment variables, with unknown keys
// refused.
func withConfig(cmd *cli.Command, flags []cli.Flag) *cli.Command {
	cmd.Flags = append([]cli.Flag{&cli.StringFlag{Name: "config", EnvVars: []string{"CAIRN_CONFIG"},
		Usage: "YAML file of settings, keyed by flag name (flags and environment variables win over it)"}}, flags...)
	cmd.OnUsageError = usageError
	cmd.Before = func(c *cli.Context) error {
		if err := checkConfig(c.String("config"), flags, cmd.Name); err != nil {
			return cli.Exit(err.Error(), exitUsage)
		}
		if err := altsrc.InitInputSourceWithContext(flags, altsrc.NewYamlSourceFromFlagFunc("config"))(c); err != nil {
			return cli.Exit(fmt.Sprintf("--config %s: %v", c.String("config"), err), exitUsage)
		}
		return nil
	}
	return cmd
}

// checkConfig refuses a config file with a key that is not a serve flag:
// a misspelt setting must not be silently ignored.
func checkConfig(path string, flags []cli.Flag, command string) error {
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
			return fmt.Errorf("--config %s: unknown setting %q (settings are %s's flag names, e.g. listen)", path, k, command)
		}
	}
	return nil
}

// serve maps flags to node.Options, runs the node until a signal, and maps
// what Run returns to an exit status: 0 after a drain, 3 when fenced, 1 on
// any other failure. A second signal exits at once.
func serve(c *cli.Context) error {
	if c.NArg() != 0 {
		return cli.Exit("serve takes no arguments (see --help)", exitUsage)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return cli.Exit(fmt.Sprintf("--log-level %q: %v", c.String("log-level"), err), exitUsage)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	opts, err := serveOptions(c, logger)
	if err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	stopSecurity, err := security(c, &opts.STOMP, opts.Listen, logger)
	if err != nil {
		return err
	}
	defer stopSecurity()
	if opts.TLSListen, opts.TLS, err = tlsSettings(c); err != nil {
		return err
	}
	opts.WSListen, opts.WSTLS = c.String("ws-listen"), c.Bool("ws-tls")
	n, err := node.New(opts)
	if err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	stopProfiles, err := startProfiles(c)
	if err != nil {
		return err
	}
	defer stopProfiles()
	if bound := node.HeapBound(opts); bound > 0 && os.Getenv("GOMEMLIMIT") == "" {
		// Ask the garbage collector to work harder as the heap nears what
		// the broker is meant to stay within: the messages it holds, partly
		// read frames, the journal's buffers and a fixed overhead. A soft
		// limit: it never fails an allocation. GOMEMLIMIT, if set, wins.
		debug.SetMemoryLimit(bound)
		logger.Info("memory", "messages_mb", opts.Broker.MemoryLimit>>20, "heap_bound_mb", bound>>20, "rss_bound_mb", node.RSSBound(opts)>>20)
	}
	ctx, cancel := stopOnSignal(logger)
	defer cancel(nil)
	stopHTTP, err := serveHTTP(c, admin.Source{Ready: n.Ready, Broker: n.Broker, Connections: n.Connections, Conns: n.Conns, CloseConn: n.CloseConn,
		Frames: n.Frames, Role: n.RoleEpoch}, usersOf(opts.STOMP), logger)
	if err != nil {
		return err
	}
	defer stopHTTP()
	switch err := n.Run(ctx); {
	case err == nil:
		return nil
	case errors.Is(err, node.ErrFenced):
		return cli.Exit("", exitFenced) // the log says why
	case errors.Is(err, node.ErrHeld):
		return cli.Exit(err.Error()+" (--wait=false)", exitFailure)
	default:
		return cli.Exit(err.Error(), exitFailure)
	}
}

// startProfiles starts the CPU profile and the execution trace the flags
// ask for; stop ends them and closes their files.
func startProfiles(c *cli.Context) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for _, s := range stops {
			s()
		}
	}
	for _, p := range []struct {
		flag  string
		start func(io.Writer) error
		stop  func()
	}{{"cpu-profile", pprof.StartCPUProfile, pprof.StopCPUProfile}, {"trace", trace.Start, trace.Stop}} {
		path := c.String(p.flag)
		if path == "" {
			continue
		}
		f, err := os.Create(path)
		if err != nil {
			stop()
			return nil, cli.Exit(fmt.Sprintf("--%s: %v", p.flag, err), exitUsage)
		}
		if err := p.start(f); err != nil {
			f.Close()
			stop()
			return nil, cli.Exit(fmt.Sprintf("--%s: %v", p.flag, err), exitFailure)
		}
		stops = append(stops, func() { p.stop(); f.Close() })
	}
	return stop, nil
}

// serveOptions maps serve's flags to a node's options.
func serveOptions(c *cli.Context, logger *slog.Logger) (node.Options, error) {
	o := node.NewOptions()
	pol, err := journal.ParseSyncPolicy(c.String("sync"))
	if err != nil {
		return o, fmt.Errorf("--sync: %v", err)
	}
	var rules []core.RedeliveryRule
	for _, spec := range c.StringSlice("redelivery") {
		r, err := core.ParseRedeliveryRule(spec)
		if err != nil {
			return o, fmt.Errorf("--redelivery: %v", err)
		}
		rules = append(rules, r)
	}
	switch j := c.String("journal"); j {
	case node.JournalWAL, node.JournalJetStream:
		o.Journal = j
	default:
		return o, fmt.Errorf("--journal %q: want wal or jetstream", j)
	}
	o.Listen, o.Data, o.Sync, o.SyncInterval = c.String("listen"), c.String("data"), pol, c.Duration("sync-interval")
	o.NATS, o.Stream, o.Replicas, o.MaxBatch = c.String("nats"), c.String("stream"), c.Int("replicas"), c.Int("jetstream-max-batch")
	o.LeaseTTL, o.Wait, o.Warm = c.Duration("lease-ttl"), c.Bool("wait"), c.Bool("warm")
	o.HeapProfile, o.Logger = c.String("heap-profile"), logger
	o.Broker = core.Options{PersistentByDefault: c.Bool("persistent-default"),
		Redelivery: rules, ExpiredToDLQ: c.Bool("expired-to-dlq"), DurableOfflineTimeout: c.Duration("durable-offline-timeout"),
		StoreLimit: c.Int64("store-limit-mb") << 20, StoreFullError: c.Bool("store-full-error"),
		SnapshotEvery: c.Uint64("snapshot-every"), SnapshotBytes: c.Int64("snapshot-mb") << 20,
		MemoryLimit: c.Int64("memory-limit-mb") << 20, QueueMemoryLimit: c.Int64("queue-memory-limit-mb") << 20}
	o.STOMP = listenerOptions(c)
	return o, nil
}

// listenerOptions maps the listener's flags (listenerFlags).
func listenerOptions(c *cli.Context) stomp.Options {
	return stomp.Options{
		Limits:         stomp.Limits{MaxHeaders: c.Int("max-headers"), MaxHeaderBytes: c.Int("max-header-bytes"), MaxBodyBytes: c.Int("max-body")},
		MaxConnections: c.Int("max-connections"), MaxUnconnected: c.Int("max-unconnected"), MaxPerAddress: c.Int("max-connections-per-ip"),
		ConnectTimeout: c.Duration("connect-timeout"), FrameTimeout: c.Duration("frame-timeout"), IdleTimeout: c.Duration("idle-timeout"),
		ReadMemory: c.Int64("read-memory-mb") << 20, ServerName: "Cairn/" + versionNumber(),
	}
}
