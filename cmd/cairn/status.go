// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

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
	dir := c.String("data")
	if _, err := os.Stat(dir); err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	lease, err := replication.ReadLease(dir)
	if err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	r := statusReport{Data: dir, Lease: lease, Lock: "free"}
	if held, _ := dirlock.IsHeld(dir); held {
		r.Lock = "held"
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
		fmt.Fprintf(w, "journal  %s\n", dir)
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
	if r.Master == "" {
		return cli.Exit("", exitFenced)
	}
	return nil
}
