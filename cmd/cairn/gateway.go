// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"

	"github.com/cairnmq/cairn/gateways/admin"
	"github.com/cairnmq/cairn/gateways/bridge"
	"github.com/cairnmq/cairn/replication/node"
)

func gatewayFlags() []cli.Flag {
	return append(listenerFlags(), []cli.Flag{
		altsrc.NewStringFlag(&cli.StringFlag{Name: "upstream", EnvVars: []string{"CAIRN_UPSTREAM"},
			Usage: "the producer tier's brokers, tried in turn: host:port,host:port or failover:(tcp://a:61613,tcp://b:61613)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "upstream-login", EnvVars: []string{"CAIRN_UPSTREAM_LOGIN"}, Usage: "CONNECT login for the upstream"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "upstream-passcode", EnvVars: []string{"CAIRN_UPSTREAM_PASSCODE"}, Usage: "CONNECT passcode for the upstream"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "upstream-host", Value: "/", EnvVars: []string{"CAIRN_UPSTREAM_HOST"}, Usage: "CONNECT host header for the upstream"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "upstream-tls-ca", EnvVars: []string{"CAIRN_UPSTREAM_TLS_CA"}, Usage: "connect upstream over TLS, trusting these PEM authorities (the upstream's --tls-listen)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "upstream-tls-cert", EnvVars: []string{"CAIRN_UPSTREAM_TLS_CERT"}, Usage: "client certificate (PEM) for the upstream's mutual TLS, with --upstream-tls-key"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "upstream-tls-key", EnvVars: []string{"CAIRN_UPSTREAM_TLS_KEY"}, Usage: "key of --upstream-tls-cert"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "links", Value: 4, EnvVars: []string{"CAIRN_LINKS"}, Usage: "upstream connections carrying the local clients' queue subscriptions and SENDs"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "upstream-heart-beat", Value: 5 * time.Second, EnvVars: []string{"CAIRN_UPSTREAM_HEART_BEAT"}, Usage: "heart-beats asked of every upstream connection, both ways (-1s: none)"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "upstream-wait", Value: 10 * time.Second, EnvVars: []string{"CAIRN_UPSTREAM_WAIT"}, Usage: "how long a client's operation waits for the upstream before ERROR code:upstream-unavailable"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "canary-every", EnvVars: []string{"CAIRN_CANARY_EVERY"}, Usage: "how often each link sends a canary through the upstream and back; one not back within two intervals marks the link stalled, and it reconnects (0: the heart-beat interval; -1s: none)"}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-hops", Value: 3, EnvVars: []string{"CAIRN_MAX_HOPS"}, Usage: "gateways in a chain at most, this one included, when an upstream is itself a gateway; a loop is refused whatever the limit"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "status-file", EnvVars: []string{"CAIRN_STATUS_FILE"}, Usage: "write the links' health here (JSON, every second) for `cairn status --gateway FILE`"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "persistent-default", EnvVars: []string{"CAIRN_PERSISTENT_DEFAULT"}, Usage: "as the upstream's --persistent-default: a SEND without a persistent header is persistent"}),
	}...)
}

func gatewayCommand() *cli.Command {
	return withConfig(&cli.Command{
		Name:  "gateway",
		Usage: "run a consumer-facing gateway: STOMP on --listen, everything relayed to --upstream; it keeps no journal",
		Description: "A gateway serves clients as a broker does and owns no message: queue subscriptions are relayed upstream one\n" +
			"for one, topics fanned out from one upstream subscription each, SENDs and ACKs confirmed only once upstream has them.",
		Action: gateway,
	}, gatewayFlags())
}

// gateway maps flags to bridge options and serves until a signal.
func gateway(c *cli.Context) error {
	if c.NArg() != 0 {
		return cli.Exit("gateway takes no arguments (see --help)", exitUsage)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return cli.Exit(fmt.Sprintf("--log-level %q: %v", c.String("log-level"), err), exitUsage)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if c.String("upstream") == "" {
		return cli.Exit("gateway needs --upstream (the producer tier's brokers)", exitUsage)
	}
	ups, err := bridge.ParseUpstream(c.String("upstream"))
	if err != nil {
		return cli.Exit("--upstream: "+err.Error(), exitUsage)
	}
	so := listenerOptions(c)
	so.ServerName = "Cairn-gateway/" + versionNumber()
	so.ReadMemory = node.ReadMemoryFor(so.ReadMemory, 0, so.Limits.MaxBodyBytes)
	so.Logger = logger
	stopSecurity, err := security(c, &so, c.String("listen"), logger)
	if err != nil {
		return err
	}
	defer stopSecurity()
	opts := bridge.Options{Upstream: ups, Login: c.String("upstream-login"), Passcode: c.String("upstream-passcode"),
		Host: c.String("upstream-host"), Links: c.Int("links"), HeartBeat: c.Duration("upstream-heart-beat"),
		Wait: c.Duration("upstream-wait"), CanaryEvery: c.Duration("canary-every"), MaxHops: c.Int("max-hops"), PersistentByDefault: c.Bool("persistent-default"), Logger: logger}
	if ca := c.String("upstream-tls-ca"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return cli.Exit("--upstream-tls-ca: "+err.Error(), exitUsage)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return cli.Exit("--upstream-tls-ca "+ca+" holds no PEM certificate", exitUsage)
		}
		opts.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if cf := c.String("upstream-tls-cert"); cf != "" {
			pair, err := tls.LoadX509KeyPair(cf, c.String("upstream-tls-key"))
			if err != nil {
				return cli.Exit("--upstream-tls-cert: "+err.Error(), exitUsage)
			}
			opts.TLS.Certificates = []tls.Certificate{pair}
		}
	}
	g, err := bridge.New(opts)
	if err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	stopProfiles, err := startProfiles(c)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopProfiles()
	ctx, cancel := stopOnSignal(logger)
	defer cancel(nil)
	if path := c.String("status-file"); path != "" {
		go writeGatewayStatus(ctx, path, g, ln.Addr().String(), logger)
	}
	lns := bridge.Listeners{STOMP: []net.Listener{ln}}
	addr, cfg, err := tlsSettings(c)
	if err != nil {
		ln.Close()
		return err
	}
	if addr != "" {
		tln, err := net.Listen("tcp", addr)
		if err != nil {
			ln.Close()
			return cli.Exit(err.Error(), exitFailure)
		}
		lns.STOMP = append(lns.STOMP, tls.NewListener(tln, cfg))
	}
	if wa := c.String("ws-listen"); wa != "" {
		ws, err := net.Listen("tcp", wa)
		if err != nil {
			ln.Close()
			return cli.Exit(err.Error(), exitFailure)
		}
		if c.Bool("ws-tls") {
			ws = tls.NewListener(ws, cfg)
		}
		lns.WebSocket = append(lns.WebSocket, ws)
	}
	stopHTTP, err := serveHTTP(c, admin.Source{
		Ready: func() (bool, string) {
			for _, l := range g.Status() {
				if !l.Up {
					return false, l.Name + " to the upstream is down: " + l.LastError
				}
			}
			return true, ""
		},
		Role: func() (string, uint64) { return "gateway", 0 },
		Links: func() []admin.Link {
			var out []admin.Link
			for _, l := range g.Status() {
				out = append(out, admin.Link{Name: l.Name, Upstream: l.Upstream, Up: l.Up, LastError: l.LastError, Connects: l.Connects, CanaryRTT: l.CanaryRTT.Seconds(), Stalls: l.Stalls, SubscriptionStalls: l.SubscriptionStalls,
					FramesIn: l.FramesIn, FramesOut: l.FramesOut, BytesIn: l.BytesIn, BytesOut: l.BytesOut, Waiting: l.Waiting, Subscribed: l.Subscriptions})
			}
			return out
		},
	}, usersOf(so), logger)
	if err != nil {
		return err
	}
	defer stopHTTP()
	if err := bridge.Serve(ctx, g, so, lns); err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	return nil
}

// stopOnSignal returns a context that SIGTERM or SIGINT ends; a second
// signal exits at once.
func stopOnSignal(logger *slog.Logger) (context.Context, context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-sigs
		logger.Info("stopping; signal again to exit at once", "signal", s.String())
		cancel(fmt.Errorf("signal %s", s))
		s = <-sigs
		logger.Warn("exiting at once", "signal", s.String())
		os.Exit(exitFailure)
	}()
	return ctx, cancel
}

// gatewayStatus is what --status-file holds.
type gatewayStatus struct {
	PID      int                 `json:"pid"`
	Listen   string              `json:"listen"`
	Upstream []string            `json:"upstream"`
	Updated  time.Time           `json:"updated"`
	Links    []bridge.LinkStatus `json:"links"`
}

// writeGatewayStatus rewrites path (0600, atomically) every second until
// ctx ends.
func writeGatewayStatus(ctx context.Context, path string, g *bridge.Gateway, listen string, logger *slog.Logger) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	warned := false
	for {
		st := gatewayStatus{PID: os.Getpid(), Listen: listen, Upstream: g.Upstream(), Updated: time.Now().UTC(), Links: g.Status()}
		b, _ := json.MarshalIndent(st, "", "  ")
		tmp := path + ".tmp"
		err := os.WriteFile(tmp, append(b, '\n'), 0o600)
		if err == nil {
			err = os.Rename(tmp, path)
		}
		if err != nil && !warned {
			logger.Warn("gateway: cannot write the status file", "err", err)
			warned = true
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
