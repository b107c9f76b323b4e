// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

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
