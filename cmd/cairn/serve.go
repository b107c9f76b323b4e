// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	"gopkg.in/yaml.v3"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/gateways/stomp"
	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/replication"
)

func serveFlags() []cli.Flag {
	return []cli.Flag{
		altsrc.NewStringFlag(&cli.StringFlag{Name: "listen", Value: "127.0.0.1:61613", EnvVars: []string{"CAIRN_LISTEN"}, Usage: "STOMP listen address"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "data", Value: "./cairn-data", EnvVars: []string{"CAIRN_DATA"}, Usage: "journal directory (with --journal jetstream: where this broker reports its status)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "journal", Value: "wal", EnvVars: []string{"CAIRN_JOURNAL"}, Usage: "wal (embedded, in --data) or jetstream (a stream on --nats)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "nats", Value: "nats://127.0.0.1:4222", EnvVars: []string{"CAIRN_NATS"}, Usage: "NATS server URLs, comma-separated, for --journal jetstream"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "stream", Value: "CAIRN_JOURNAL", EnvVars: []string{"CAIRN_STREAM"}, Usage: "JetStream stream holding the journal (and the lease's key)"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "jetstream-max-batch", Value: 1000, EnvVars: []string{"CAIRN_JETSTREAM_MAX_BATCH"}, Usage: "records in one JetStream atomic batch at most: the NATS servers' jetstream { limits { batch { max_msgs } } } (1000 unless configured)"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "replicas", Value: 1, EnvVars: []string{"CAIRN_REPLICAS"}, Usage: "replicas of the stream and the lease bucket when created (3 on a 3-node NATS cluster)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "sync", Value: "always", EnvVars: []string{"CAIRN_SYNC"}, Usage: "journal sync policy: always, interval or never"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "sync-interval", Value: 50 * time.Millisecond, EnvVars: []string{"CAIRN_SYNC_INTERVAL"}, Usage: "most time between fsyncs under --sync interval"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "persistent-default", EnvVars: []string{"CAIRN_PERSISTENT_DEFAULT"}, Usage: "a SEND without a persistent header is persistent (ActiveMQ's default: not)"}),
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
		altsrc.NewStringFlag(&cli.StringFlag{Name: "cpu-profile", EnvVars: []string{"CAIRN_CPU_PROFILE"}, Usage: "write a CPU profile (go tool pprof) to this file until shutdown"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "trace", EnvVars: []string{"CAIRN_TRACE"}, Usage: "write a Go execution trace (go tool trace: every goroutine's runs, waits and syscalls) to this file until shutdown; it grows by megabytes a second under load"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "wait", Value: true, EnvVars: []string{"CAIRN_WAIT"}, Usage: "when another broker holds the journal, wait as its standby and take over when it goes (false: exit at once)"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "warm", Value: true, EnvVars: []string{"CAIRN_WARM"}, Usage: "while standby, follow the journal so that a takeover replays only its last records (costs the journal projection's memory: a map entry per pending message)"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "lease-ttl", Value: 5 * time.Second, EnvVars: []string{"CAIRN_LEASE_TTL"}, Usage: "a master that cannot renew its journal lease for this long stops writing, and a standby takes over shortly after"}),
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

// readMemory is the bytes of partly read frames the listener allows:
// configured, or a quarter of the memory limit but at least two bodies of
// the largest size, or 256 MiB without a memory limit.
func readMemory(configured, memoryLimit int64, maxBody int) int64 {
	switch {
	case configured > 0:
		return configured
	case memoryLimit > 0:
		return max(memoryLimit/4, 2*int64(maxBody))
	}
	return 256 << 20
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
			return cli.Exit(fmt.Sprintf("--%s: %v", p.flag, err), exitUsage)
		}
		if err := p.start(f); err != nil {
			f.Close()
			return cli.Exit(fmt.Sprintf("--%s: %v", p.flag, err), exitFailure)
		}
		defer func() { p.stop(); f.Close() }()
	}
	var rules []core.RedeliveryRule
	for _, spec := range c.StringSlice("redelivery") {
		r, err := core.ParseRedeliveryRule(spec)
		if err != nil {
			return cli.Exit("--redelivery: "+err.Error(), exitUsage)
		}
		rules = append(rules, r)
	}
	if lim := c.Int64("memory-limit-mb") << 20; lim > 0 && os.Getenv("GOMEMLIMIT") == "" {
		// Ask the garbage collector to work harder as the heap nears twice
		// the message memory limit plus room for the rest (per-message
		// bookkeeping of paged messages, connections). A soft limit: it
		// never fails an allocation. GOMEMLIMIT, if set, wins.
		debug.SetMemoryLimit(2*lim + 200<<20)
	}
	dataDir := c.String("data")
	if err := os.MkdirAll(dataDir, journal.DirMode); err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	if fi, err := os.Stat(dataDir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		// Made before this broker, or by someone else: left as it is.
		logger.Warn("the data directory is open to other users; the broker makes it 0700 and its files 0600 (chmod 0700 it)",
			"dir", dataDir, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}
	host, _ := os.Hostname()
	id := replication.NewID()
	replication.PruneMembers(dataDir, 24*time.Hour) // reports of brokers long gone
	rep := replication.NewReporter(dataDir, replication.Member{ID: id, Host: host, PID: os.Getpid()})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	// Election: wait as a standby until this broker holds the journal.
	be, err := newBackend(c, dataDir, id, logger)
	if err != nil {
		rep.Stop(replication.RoleStopped, err.Error())
		return cli.Exit(err.Error(), exitFailure)
	}
	defer be.close()
	var warm *warmStandby
	lease, err := acquire(c, be.locker, logger, rep, sigs, func() {
		if c.Bool("warm") {
			warm = startWarm(be.follower(c), logger)
		}
	})
	var standby *core.Standby
	if warm != nil {
		standby = warm.stop()
	}
	if err != nil {
		return err
	}
	took := lease.Took()
	logger.Info("master: holding the journal", "journal", be.name, "epoch", lease.Epoch(), "how", took.How, "previous", took.Previous.String(),
		"waited", took.Waited.Round(time.Millisecond), "id", id)
	rep.Set(replication.RoleStarting, lease.Epoch(), "replaying the journal")
	start := time.Now()
	l, maxBody, err := be.open(c, lease)
	if err != nil {
		return fenceExit(rep, lease, err)
	}
	defer l.Close()
	b, err := core.Open(core.Options{Journal: l, PersistentByDefault: c.Bool("persistent-default"), Logger: logger, Standby: standby,
		Redelivery: rules, ExpiredToDLQ: c.Bool("expired-to-dlq"), DurableOfflineTimeout: c.Duration("durable-offline-timeout"),
		StoreLimit: c.Int64("store-limit-mb") << 20, StoreFullError: c.Bool("store-full-error"),
		SnapshotEvery: c.Uint64("snapshot-every"), SnapshotBytes: c.Int64("snapshot-mb") << 20,
		MemoryLimit: c.Int64("memory-limit-mb") << 20, QueueMemoryLimit: c.Int64("queue-memory-limit-mb") << 20,
		Progress: func(p journal.Progress) {
			if !p.Done {
				logger.Info("replaying the journal", "records", p.Records, "of", p.Total, "eta", p.ETA.Round(time.Second))
			}
		}})
	if err != nil {
		return fenceExit(rep, lease, err)
	}
	defer b.Close()
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return fenceExit(rep, lease, err)
	}
	srv := stomp.NewServer(b, stomp.Options{
		Limits:         stomp.Limits{MaxHeaders: c.Int("max-headers"), MaxHeaderBytes: c.Int("max-header-bytes"), MaxBodyBytes: maxBody},
		MaxConnections: c.Int("max-connections"), MaxUnconnected: c.Int("max-unconnected"), MaxPerAddress: c.Int("max-connections-per-ip"),
		ConnectTimeout: c.Duration("connect-timeout"), FrameTimeout: c.Duration("frame-timeout"), IdleTimeout: c.Duration("idle-timeout"),
		ReadMemory: readMemory(c.Int64("read-memory-mb")<<20, c.Int64("memory-limit-mb")<<20, maxBody),
		Logger:     logger, ServerName: "Cairn/" + versionNumber(),
	})
	rec := b.Recovery()
	rep.SetListen(ln.Addr().String())
	rep.Set(replication.RoleMaster, lease.Epoch(), "")
	logger.Info("cairn listening", "role", "master", "epoch", lease.Epoch(), "stomp", ln.Addr().String(), "journal", be.name, "sync", pol.String(),
		"replayed_records", rec.Records, "warm", rec.Warm, "pending_messages", rec.Messages, "queues", rec.Queues,
		"replay", rec.Took.Round(time.Millisecond), "startup", time.Since(start).Round(time.Millisecond))
	go func() {
		// Fail-stop: a master that may no longer hold the journal stops at
		// once. The journal already refuses appends (its Gate); close every
		// connection so that clients fail over, and exit non-zero.
		<-lease.Lost()
		logger.Error("fenced: the journal lease is lost; closing every connection and exiting", "epoch", lease.Epoch(), "err", lease.Err())
		rep.Stop(replication.RoleFenced, lease.Err().Error())
		ln.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		srv.Close(ctx)
		os.Exit(exitFenced)
	}()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		if lease.Err() != nil {
			select {} // fenced: the fail-stop goroutine exits with exitFenced
		}
		return cli.Exit(fmt.Sprintf("stomp listener: %v", err), exitFailure)
	case s := <-sigs:
		if path := c.String("heap-profile"); path != "" {
			if err := writeHeapProfile(path); err != nil {
				logger.Warn("heap profile", "err", err)
			}
		}
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
	b.Close()
	if err := l.Close(); err != nil {
		logger.Warn("journal close", "err", err)
	}
	if err := lease.Release(); err != nil {
		logger.Warn("release the journal lease", "err", err)
	}
	rep.Stop(replication.RoleStopped, "")
	logger.Info("stopped")
	return nil
}

// acquire waits for the journal's lease, reporting what it waits for, until
// it holds it or a signal says stop.
// onWait runs once, when it first has to wait.
func acquire(c *cli.Context, locker replication.Locker, logger *slog.Logger, rep *replication.Reporter, sigs chan os.Signal, onWait func()) (replication.Lease, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan os.Signal, 1)
	go func() {
		select {
		case s := <-sigs:
			stopped <- s
			cancel()
		case <-ctx.Done():
		}
	}()
	var last replication.Holder
	var waitErr error
	lease, err := locker.Acquire(ctx, func(w replication.Waiting) {
		rep.Set(replication.RoleStandby, 0, w.String())
		if w.Holder != last {
			last = w.Holder
			if !c.Bool("wait") {
				waitErr = cli.Exit(fmt.Sprintf("%s: %s (--wait=false)", c.String("data"), w), exitFailure)
				cancel()
				return
			}
			logger.Info("standby: waiting for the journal", "data", c.String("data"), "holder", w.Holder.String(),
				"last_renewal_seen", w.Renewed.Round(time.Millisecond), "expires_in", w.ExpiresIn.Round(time.Millisecond))
			if onWait != nil {
				onWait()
				onWait = nil
			}
		}
	})
	if waitErr != nil {
		rep.Stop(replication.RoleStopped, "did not wait")
		return nil, waitErr
	}
	if err != nil {
		select {
		case s := <-stopped:
			logger.Info("standby: stopped while waiting", "signal", s.String())
			rep.Stop(replication.RoleStopped, "stopped while standby")
			return nil, cli.Exit("", 0)
		default:
		}
		rep.Stop(replication.RoleStopped, err.Error())
		return nil, cli.Exit(err.Error(), exitFailure)
	}
	cancel()
	// A signal that raced with the acquisition still stops this broker.
	select {
	case s := <-stopped:
		lease.Release()
		logger.Info("stopped as it took over", "signal", s.String())
		rep.Stop(replication.RoleStopped, "stopped while standby")
		return nil, cli.Exit("", 0)
	default:
	}
	return lease, nil
}

// fenceExit ends a broker that holds the lease but cannot serve: it gives
// the lease up so that a standby can try.
func fenceExit(rep *replication.Reporter, lease replication.Lease, err error) error {
	lease.Release()
	rep.Stop(replication.RoleStopped, err.Error())
	return cli.Exit(err.Error(), exitFailure)
}

// writeHeapProfile writes the heap's live objects (after a GC) to path.
func writeHeapProfile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	runtime.GC()
	err = pprof.WriteHeapProfile(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
