// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cairnmq/cairn/bench/brokerbench"
	"github.com/cairnmq/cairn/bench/floor"
	"github.com/cairnmq/cairn/bench/journalbench"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:   "bench",
		Usage:  "benchmarks",
		Action: unknownSubcommand,
		Subcommands: []*cli.Command{{
			Name:  "journal",
			Usage: "append and replay throughput of the embedded journal, each next to this disk's limit measured in the same run",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "dir", Value: "./bench-journal", Usage: "directory on the disk to measure"},
				&cli.BoolFlag{Name: "keep", Usage: "leave the replay journal at --dir, for `cairn journal inspect|verify|repair`"},
				&cli.BoolFlag{Name: "json", Usage: "one JSON object per result"},
				&cli.BoolFlag{Name: "quick", Usage: "a reduced grid, under a minute"},
				&cli.DurationFlag{Name: "cell", Usage: "time per grid cell (default 2s, 400ms with --quick)"},
			},
			OnUsageError: usageError,
			Action:       benchJournal,
		}, {
			Name:  "broker",
			Usage: "load any STOMP broker: throughput, end-to-end latency, and a check that nothing was lost or duplicated",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "addr", Value: "127.0.0.1:61613", Usage: "broker STOMP address"},
				&cli.StringFlag{Name: "consumer-addr", Usage: "where consumers and --idle connections connect, if not --addr (a gateway in front of the broker)"},
				&cli.StringFlag{Name: "login", Usage: "CONNECT login"},
				&cli.StringFlag{Name: "passcode", Usage: "CONNECT passcode"},
				&cli.StringFlag{Name: "host", Usage: "CONNECT host header (RabbitMQ's virtual host: /)"},
				&cli.IntFlag{Name: "producers", Value: 1, Usage: "0 with consumers: only drain --count messages already there"},
				&cli.IntFlag{Name: "consumers", Value: 1},
				&cli.IntFlag{Name: "size", Value: 1024, Usage: "message body bytes (at least 24)"},
				&cli.IntFlag{Name: "count", Value: 10000, Usage: "messages in all; 0: run for --duration"},
				&cli.DurationFlag{Name: "duration", Value: 10 * time.Second, Usage: "run time when --count is 0"},
				&cli.StringFlag{Name: "destination", Value: "/queue/bench"},
				&cli.BoolFlag{Name: "persistent", Usage: "send persistent:true"},
				&cli.BoolFlag{Name: "receipt", Usage: "wait for a RECEIPT after every SEND"},
				&cli.StringFlag{Name: "ack", Value: "auto", Usage: "auto, client or client-individual"},
				&cli.IntFlag{Name: "prefetch", Usage: "activemq.prefetchSize (0: the broker's default)"},
				&cli.StringFlag{Name: "client", Value: "lean", Usage: "lean (this tool's own STOMP client, light on the machine) or go-stomp (go-stomp v3.1.5, as its users run it)"},
				&cli.IntFlag{Name: "go-stomp-channels", Usage: "with --client go-stomp: both of go-stomp's channels this deep (0: its defaults, 20)"},
				&cli.StringFlag{Name: "selector", Usage: "every consumer's selector; SENDs then carry kind:order, amount:150, region:eu (\"all\": a three-clause selector they all match)"},
				&cli.IntFlag{Name: "idle", Usage: "extra idle connections, each subscribed to its own queue, opened first"},
				&cli.IntFlag{Name: "broker-pid", Usage: "broker process, for its memory per idle connection"},
				&cli.StringFlag{Name: "name", Usage: "scenario name for the report"},
				&cli.BoolFlag{Name: "json", Usage: "one JSON object"},
			},
			OnUsageError: usageError,
			Action:       benchBroker,
		}, {
			Name:  "floor",
			Usage: "serve the floor of a persistent receipted SEND on this machine: a STOMP responder that only writes each SEND's body to a pre-zeroed ring with O_DSYNC, sends the RECEIPT and forwards a MESSAGE; for measuring brokers against (not a broker)",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "listen", Value: "127.0.0.1:61704", Usage: "STOMP address"},
				&cli.StringFlag{Name: "dir", Value: "./bench-floor", Usage: "directory for its 8 MiB ring file, on the disk to measure"},
			},
			OnUsageError: usageError,
			Action:       benchFloor,
		}},
	}
}

func benchJournal(c *cli.Context) error {
	if c.NArg() != 0 {
		return cli.Exit("bench journal takes no arguments (see --help)", exitUsage)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt)
	defer stop()
	o := journalbench.Options{Dir: c.String("dir"), Keep: c.Bool("keep"), Quick: c.Bool("quick"), Cell: c.Duration("cell")}
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		o.Progress = os.Stderr
	}
	var results []journalbench.Result
	enc := json.NewEncoder(c.App.Writer)
	err := journalbench.Run(ctx, o, func(r journalbench.Result) {
		if c.Bool("json") {
			enc.Encode(r)
		}
		results = append(results, r)
	})
	if !c.Bool("json") && len(results) > 0 {
		tw := tabwriter.NewWriter(c.App.Writer, 0, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "kind\tsync\trecord\tappenders\tappends/s\tMB/s\tlimit appends/s\tratio\tof seq MB/s\t")
		for _, r := range results {
			if r.Kind == "compaction" {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%.1f\t%.0f\t%.2f\t%.2f\t\n", r.Kind, r.Sync, r.RecordBytes, r.Appenders,
				r.AppendsPerSec, r.MBPerSec, r.LimitAppendsPerSec, r.Ratio, r.SeqRatio)
		}
		tw.Flush()
		for _, r := range results {
			if r.Kind == "compaction" {
				verdict := "within"
				if r.DiskBytes > r.BoundBytes {
					verdict = "OVER"
				}
				fmt.Fprintf(c.App.Writer, "compaction: wrote %.0f MiB of 1 KiB records, 1 in 1,000 live forever (%.2f MiB live); %d compactions; journal on disk %.1f MiB, %s the bound of 2 x live + 2 segments (%.1f MiB)\n",
					mib(r.WrittenBytes), mib(r.LiveBytes), r.Compactions, mib(r.DiskBytes), verdict, mib(r.BoundBytes))
			}
		}
		fmt.Fprintln(c.App.Writer, "ratio: the journal over a bare group-commit loop (one write + one fdatasync of what is queued) with the same record size and appenders, in this run;\nreplay's ratio and \"of seq MB/s\" are over sequential write bandwidth (1 MiB writes, final fsync) in this run.")
	}
	if err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	if !o.Keep {
		os.Remove(o.Dir) // only if the run left it empty
	}
	return nil
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func benchBroker(c *cli.Context) error {
	if c.NArg() != 0 {
		return cli.Exit("bench broker takes no arguments (see --help)", exitUsage)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt)
	defer stop()
	o := brokerbench.Options{Addr: c.String("addr"), ConsumerAddr: c.String("consumer-addr"), Login: c.String("login"), Passcode: c.String("passcode"), Host: c.String("host"),
		Producers: c.Int("producers"), Consumers: c.Int("consumers"), Size: c.Int("size"), Count: c.Int("count"),
		Duration: c.Duration("duration"), Destination: c.String("destination"), Persistent: c.Bool("persistent"),
		Receipt: c.Bool("receipt"), AckMode: c.String("ack"), Prefetch: c.Int("prefetch"), Client: c.String("client"), GoStompChannels: c.Int("go-stomp-channels"), Idle: c.Int("idle"),
		BrokerPID: c.Int("broker-pid"), Selector: c.String("selector")}
	if o.Selector == "all" {
		o.Selector = brokerbench.SelectorMatchingAll
	}
	r, err := brokerbench.Run(ctx, o)
	r.Scenario = c.String("name")
	if c.Bool("json") {
		json.NewEncoder(c.App.Writer).Encode(r)
	} else {
		fmt.Fprintf(c.App.Writer, "sent %d (%.0f/s), received %d of %d (%.0f/s), lost %d, duplicates %d, latency p50 %.2f ms p99 %.2f ms p99.9 %.2f ms, %.1fs\n",
			r.Sent, r.SentPerSec, r.Received, r.Expected, r.RecvPerSec, r.Lost, r.Duplicates, r.P50Ms, r.P99Ms, r.P999Ms, r.Seconds)
		if r.IdleConns > 0 {
			fmt.Fprintf(c.App.Writer, "idle connections %d: broker RSS %d -> %d KiB, %.1f KiB each\n", r.IdleConns, r.RSSBeforeKiB, r.RSSAfterKiB, r.KiBPerIdle)
		}
	}
	if err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	if r.Lost > 0 || r.Duplicates > 0 {
		return cli.Exit(fmt.Sprintf("%d lost, %d duplicated", r.Lost, r.Duplicates), exitFailure)
	}
	return nil
}

func benchFloor(c *cli.Context) error {
	if c.NArg() != 0 {
		return cli.Exit("bench floor takes no arguments (see --help)", exitUsage)
	}
	dir := c.String("dir")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	s, err := floor.New(dir)
	if err != nil {
		return cli.Exit(fmt.Sprintf("bench floor: %v", err), exitFailure)
	}
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		s.Close()
		return cli.Exit(err.Error(), exitFailure)
	}
	fmt.Fprintf(c.App.ErrWriter, "floor listening on %s (ring in %s); not a broker: SENDs are written and forwarded, nothing is kept\n", ln.Addr(), dir)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	select {
	case err = <-served:
	case <-sigs:
	}
	s.Close()
	os.Remove(filepath.Join(dir, "FLOOR-RING"))
	os.Remove(dir) // only if empty
	if err != nil {
		return cli.Exit(fmt.Sprintf("bench floor: %v", err), exitFailure)
	}
	return nil
}
