// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/urfave/cli/v2"

	"github.com/cairnmq/cairn/journal/dirlock"
	"github.com/cairnmq/cairn/replication"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "say which broker is master of a journal, which wait as standbys, and what they wait for",
		Description: "Reads the journal directory's lease and each broker's report (it writes nothing).\n" +
			"Exit status: 0 when a master holds a live lease, 3 when none does.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Value: "./cairn-data", EnvVars: []string{"CAIRN_DATA"}, Usage: "journal directory"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
			&cli.DurationFlag{Name: "stale", Value: 5 * time.Second, Usage: "a report older than this is from a broker that is gone or stuck"},
			&cli.StringFlag{Name: "journal", Value: "wal", EnvVars: []string{"CAIRN_JOURNAL"}, Usage: "wal, or jetstream: read the lease from the NATS key-value bucket"},
			&cli.StringFlag{Name: "nats", Value: "nats://127.0.0.1:4222", EnvVars: []string{"CAIRN_NATS"}, Usage: "NATS server URLs, for --journal jetstream"},
			&cli.StringFlag{Name: "stream", Value: "CAIRN_JOURNAL", EnvVars: []string{"CAIRN_STREAM"}, Usage: "the journal's stream, for --journal jetstream"},
			&cli.StringFlag{Name: "gateway", Usage: "instead: a gateway's --status-file; its links' health (exit 0 when every link is up and the file fresh)"},
		},
		OnUsageError: usageError,
		Action:       status,
	}
}

type statusReport struct {
	Data    string                `json:"data"`
	Lease   replication.LeaseInfo `json:"lease"`
	Lock    string                `json:"lock"` // "held" or "free"
	Master  string                `json:"master,omitempty"`
	Members []memberReport        `json:"members"`
}

type memberReport struct {
	replication.Member
	Age   time.Duration `json:"age_ns"`
	Stale bool          `json:"stale"`
}

func status(c *cli.Context) error {
	if path := c.String("gateway"); path != "" {
		return gatewayStatusReport(c, path)
	}
	dir := c.String("data")
	var lease replication.LeaseInfo
	var r statusReport
	switch c.String("journal") {
	case "jetstream":
		nc, err := nats.Connect(c.String("nats"), nats.Timeout(5*time.Second))
		if err != nil {
			return cli.Exit(fmt.Sprintf("--nats %s: %v", c.String("nats"), err), exitFailure)
		}
		defer nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		lease, _, err = replication.ReadKVLease(ctx, nc, "CAIRN_LEASES", c.String("stream"))
		if err != nil {
			return cli.Exit(fmt.Sprintf("lease of stream %s: %v", c.String("stream"), err), exitFailure)
		}
		r = statusReport{Data: c.String("nats") + " stream " + c.String("stream"), Lease: lease, Lock: "n/a"}
	case "wal":
		if _, err := os.Stat(dir); err != nil {
			return cli.Exit(err.Error(), exitFailure)
		}
		var err error
		if lease, err = replication.ReadLease(dir); err != nil {
			return cli.Exit(err.Error(), exitFailure)
		}
		r = statusReport{Data: dir, Lease: lease, Lock: "free"}
		if held, _ := dirlock.IsHeld(dir); held {
			r.Lock = "held"
		}
	default:
		return cli.Exit(fmt.Sprintf("--journal %q: want wal or jetstream", c.String("journal")), exitUsage)
	}
	ms, err := replication.Members(dir)
	if err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	for _, m := range ms {
		age := time.Since(m.Updated)
		mr := memberReport{Member: m, Age: age, Stale: age > c.Duration("stale")}
		if m.Role == replication.RoleMaster && !mr.Stale && m.ID == lease.ID && m.Epoch == lease.Epoch {
			r.Master = m.ID
		}
		r.Members = append(r.Members, mr)
	}
	w := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "journal  %s\n", r.Data)
		switch {
		case lease.ID == "":
			fmt.Fprintf(w, "lease    none yet (lock %s)\n", r.Lock)
		default:
			state := "held"
			if lease.Released {
				state = "released"
			}
			fmt.Fprintf(w, "lease    epoch %d, %s by %s, renewed %s ago (ttl %s, renewal %d); lock %s\n",
				lease.Epoch, state, lease.Holder, time.Since(lease.Renewed).Round(time.Millisecond), lease.TTL, lease.Seq, r.Lock)
		}
		if r.Master != "" {
			fmt.Fprintf(w, "master   %s\n", r.Master)
		} else {
			fmt.Fprintf(w, "master   none serving\n")
		}
		if len(r.Members) > 0 {
			fmt.Fprintln(w)
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "BROKER\tROLE\tEPOCH\tLISTEN\tPID\tHOST\tREPORTED\tDETAIL")
			for _, m := range r.Members {
				age := m.Age.Round(time.Second).String() + " ago"
				if m.Stale {
					age += " (stale)"
				}
				role := string(m.Role)
				if m.Role == replication.RoleMaster && m.Epoch < lease.Epoch {
					role = "deposed" // a later epoch holds the lease: this one died or was cut off
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\n", m.ID, role, m.Epoch, m.Listen, m.PID, m.Host, age, m.Detail)
			}
			tw.Flush()
		}
	}
	if r.Master == "" && !(c.String("journal") == "jetstream" && lease.ID != "") {
		// (On JetStream the brokers' reports are each in their own --data;
		// a live lease entry is the master.)
		return cli.Exit("", exitFenced)
	}
	return nil
}

// gatewayStatusReport prints a gateway's --status-file.
func gatewayStatusReport(c *cli.Context, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	var st gatewayStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", path, err), exitFailure)
	}
	healthy := time.Since(st.Updated) <= c.Duration("stale")
	for _, l := range st.Links {
		healthy = healthy && l.Up
	}
	w := c.App.Writer
	if c.Bool("json") {
		w.Write(b)
	} else {
		fmt.Fprintf(w, "gateway  pid %d on %s, upstream %s, reported %s ago\n\n", st.PID, st.Listen, strings.Join(st.Upstream, ","),
			time.Since(st.Updated).Round(time.Millisecond))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "LINK\tSTATE\tUPSTREAM\tSINCE\tCONNECTS\tSUBS\tWAITING\tCANARY RTT\tCANARY BACK\tSTALLS LINK/SUBS\tFRAMES IN/OUT\tLAST ERROR")
		for _, l := range st.Links {
			state := "down"
			if l.Up {
				state = "up"
			}
			back := "never"
			if !l.CanaryBack.IsZero() {
				back = time.Since(l.CanaryBack).Round(time.Millisecond).String() + " ago"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\t%d\t%d\t%d\t%s\t%s\t%d/%d\t%d/%d\t%s\n", l.Name, state, l.Upstream,
				time.Since(l.Since).Round(time.Second), l.Connects, l.Subscriptions, l.Waiting, l.CanaryRTT.Round(time.Microsecond), back,
				l.Stalls, l.SubscriptionStalls, l.FramesIn, l.FramesOut, l.LastError)
		}
		tw.Flush()
	}
	if !healthy {
		return cli.Exit("", exitFenced)
	}
	return nil
}
