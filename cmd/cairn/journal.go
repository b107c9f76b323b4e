// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/wal"
)

// Exit codes of `cairn journal verify`.
const (
	verifyClean   = 0
	verifyTorn    = 1
	verifyCorrupt = 2
)

func journalCommand() *cli.Command {
	maxRecord := &cli.IntFlag{Name: "max-record-bytes", Value: journal.DefaultMaxRecordBytes, Usage: "largest record payload to accept"}
	return &cli.Command{
		Name:   "journal",
		Usage:  "inspect, verify, repair and describe a journal directory (the embedded wal backend)",
		Action: unknownSubcommand,
		Subcommands: []*cli.Command{
			{
				Name:         "inspect",
				Usage:        "list the records: index, type, size, batch, moved",
				ArgsUsage:    "DIR",
				Flags:        []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "one JSON object per record"}, maxRecord},
				OnUsageError: usageError,
				Action:       inspect,
			},
			{
				Name:         "verify",
				Usage:        "check every record; exit 0 clean, 1 torn tail (Open or repair cuts it), 2 corruption",
				ArgsUsage:    "DIR",
				Flags:        []cli.Flag{maxRecord},
				OnUsageError: usageError,
				Action:       verify,
			},
			{
				Name:         "repair",
				Usage:        "cut the journal after the last complete batch before any damage, keeping the cut bytes in .broken files",
				ArgsUsage:    "DIR",
				Flags:        []cli.Flag{maxRecord},
				OnUsageError: usageError,
				Action:       repair,
			},
			{
				Name:         "stats",
				Usage:        "segments, sizes, snapshot, and why each segment is kept",
				ArgsUsage:    "DIR",
				Flags:        []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print one JSON object"}, maxRecord},
				OnUsageError: usageError,
				Action:       stats,
			},
		},
	}
}

// journalDir returns DIR, checking it looks like a journal.
func journalDir(c *cli.Context) (string, error) {
	dir, err := oneArg(c, "the journal directory")
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", cli.Exit(fmt.Sprintf("%s is not a directory", dir), exitFailure)
	}
	if _, err := os.Stat(dir + "/wal"); err != nil {
		return "", cli.Exit(fmt.Sprintf("%s is not a Cairn journal (no wal/ segment directory)", dir), exitFailure)
	}
	return dir, nil
}

type recordJSON struct {
	Index uint64 `json:"index"`
	Type  uint8  `json:"type"`
	Size  int    `json:"size"`
	Batch uint64 `json:"batch"`
	Moved uint64 `json:"moved,omitempty"`
}

func inspect(c *cli.Context) error {
	dir, err := journalDir(c)
	if err != nil {
		return err
	}
	out := c.App.Writer
	asJSON := c.Bool("json")
	enc := json.NewEncoder(out)
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', tabwriter.AlignRight)
	if !asJSON {
		fmt.Fprintln(tw, "index\ttype\tsize\tbatch\tmoved from\t")
	}
	var batch uint64 // first index of the current batch; 0 when it began before the first record
	rep, err := wal.Check(dir, c.Int("max-record-bytes"), func(f *journal.Frame) error {
		if f.Flags&journal.FlagBatchStart != 0 {
			batch = f.Index
		}
		r := recordJSON{Index: f.Index, Type: uint8(f.Type), Size: len(f.Data), Batch: batch, Moved: f.Moved}
		if asJSON {
			return enc.Encode(r)
		}
		moved := "-"
		if r.Moved != 0 {
			moved = fmt.Sprint(r.Moved)
		}
		b := "?"
		if batch != 0 {
			b = fmt.Sprint(batch)
		}
		_, err := fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t\n", r.Index, r.Type, r.Size, b, moved)
		return err
	})
	tw.Flush()
	if err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	if rep.Damage != nil {
		fmt.Fprintln(c.App.ErrWriter, "cairn: stopped at damage:", rep.Damage)
	}
	return nil
}

func verify(c *cli.Context) error {
	dir, err := journalDir(c)
	if err != nil {
		return err
	}
	rep, err := wal.Check(dir, c.Int("max-record-bytes"), nil)
	if err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	out := c.App.Writer
	if rep.LockedBy != nil {
		fmt.Fprintf(out, "note: the journal is open by %s; a tail being written may look torn\n", rep.LockedBy)
	}
	for _, err := range rep.SnapshotDamage {
		fmt.Fprintf(out, "damaged snapshot: %s\n", err)
	}
	switch {
	case len(rep.SnapshotDamage) == 0:
	case rep.Snapshot != 0:
		fmt.Fprintf(out, "note: start-up uses the newest snapshot that is intact, at %d, and replays the records after it\n", rep.Snapshot)
	case rep.First <= 1:
		fmt.Fprintf(out, "note: no snapshot is intact, but the journal still holds every record: start-up replays all of it\n")
	}
	if rep.Restorable > 0 {
		fmt.Fprintf(out, "note: the sync ring holds records %d-%d, which the segments lack (a power loss took them before their fsync); opening the journal restores them\n",
			rep.RingLast-rep.Restorable+1, rep.RingLast)
	}
	switch {
	case rep.Damage == nil && len(rep.SnapshotDamage) > 0 && rep.Snapshot == 0 && rep.First > 1:
		fmt.Fprintf(out, "corrupt: no snapshot is intact, and records before %d are gone: a broker will not start from this journal (`cairn journal repair` cannot mend snapshots)\n", rep.First)
		return cli.Exit("", verifyCorrupt)
	case rep.Damage == nil:
		fmt.Fprintf(out, "ok: %s: records %d-%d (%d records, %s in %d segments)\n", dir, rep.First, rep.Last, rep.Records, human(rep.Bytes), len(rep.Segments))
		return nil
	case rep.Torn:
		fmt.Fprintf(out, "torn tail: %s\n", rep.Damage)
		if rep.Cut != nil {
			fmt.Fprintf(out, "opening the journal or `cairn journal repair` will %s\n", rep.Cut)
		}
		return cli.Exit("", verifyTorn)
	default:
		fmt.Fprintf(out, "corrupt: %s\n", rep.Damage)
		if rep.Cut != nil {
			fmt.Fprintf(out, "`cairn journal repair` would %s\n", rep.Cut)
		}
		return cli.Exit("", verifyCorrupt)
	}
}

func repair(c *cli.Context) error {
	dir, err := journalDir(c)
	if err != nil {
		return err
	}
	rep, err := wal.Repair(dir, c.Int("max-record-bytes"))
	if err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	out := c.App.Writer
	switch {
	case rep.Damage == nil:
		fmt.Fprintf(out, "nothing to repair: records %d-%d are intact\n", rep.First, rep.Last)
	case rep.Cut == nil:
		return cli.Exit(fmt.Sprintf("cannot repair %s automatically: %s", dir, rep.Damage), exitFailure)
	default:
		fmt.Fprintf(out, "found: %s\nrepaired: %s\nthe journal now holds records %d-%d\n", rep.Damage, rep.Cut, rep.First, rep.Last)
	}
	return nil
}

type statsJSON struct {
	Dir      string        `json:"dir"`
	First    uint64        `json:"first"`
	Last     uint64        `json:"last"`
	Records  uint64        `json:"records"`
	Bytes    int64         `json:"bytes"`
	Snapshot uint64        `json:"snapshot"`
	Segments []segmentJSON `json:"segments"`
	Damage   string        `json:"damage,omitempty"`
	LockedBy string        `json:"locked_by,omitempty"`
}

type segmentJSON struct {
	Name   string `json:"name"`
	First  uint64 `json:"first"`
	Last   uint64 `json:"last"`
	Bytes  int64  `json:"bytes"`
	Sealed bool   `json:"sealed"`
	Kept   string `json:"kept"`
}

func stats(c *cli.Context) error {
	dir, err := journalDir(c)
	if err != nil {
		return err
	}
	rep, err := wal.Check(dir, c.Int("max-record-bytes"), nil)
	if err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	s := statsJSON{Dir: dir, First: rep.First, Last: rep.Last, Records: rep.Records, Bytes: rep.Bytes, Snapshot: rep.Snapshot}
	if rep.Damage != nil {
		s.Damage = rep.Damage.Error()
	}
	if rep.LockedBy != nil {
		s.LockedBy = rep.LockedBy.String()
	}
	for i, seg := range rep.Segments {
		s.Segments = append(s.Segments, segmentJSON{Name: seg.Name, First: seg.First, Last: seg.Last, Bytes: seg.Bytes,
			Sealed: seg.Sealed, Kept: keptReason(rep, i)})
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	printStats(c.App.Writer, &s)
	return nil
}

// keptReason says why segment i is still on disk, as far as can be told
// without the broker: which records are live is known only to it, and its
// compaction reports the live share of each segment.
func keptReason(rep *wal.Report, i int) string {
	seg := rep.Segments[i]
	switch {
	case i == len(rep.Segments)-1:
		return "tail: being written"
	case rep.Snapshot == 0:
		return "no snapshot yet: replay reads every record"
	case seg.Last > rep.Snapshot:
		return fmt.Sprintf("holds records after the newest snapshot (%d), which replay reads", rep.Snapshot)
	case seg.Last > rep.OldestSnapshot:
		return fmt.Sprintf("holds records after the older snapshot kept (%d), which replay reads if the newest is damaged", rep.OldestSnapshot)
	default:
		return "covered by the snapshot; kept for live records until compaction finds its live share below the threshold"
	}
}

func printStats(w io.Writer, s *statsJSON) {
	fmt.Fprintf(w, "journal  %s\nrecords  %d-%d (%d)\nbytes    %s in %d segments\n", s.Dir, s.First, s.Last, s.Records, human(s.Bytes), len(s.Segments))
	if s.Snapshot != 0 {
		fmt.Fprintf(w, "snapshot %d\n", s.Snapshot)
	} else {
		fmt.Fprintln(w, "snapshot none")
	}
	if s.LockedBy != "" {
		fmt.Fprintf(w, "open by  %s\n", s.LockedBy)
	}
	if s.Damage != "" {
		fmt.Fprintf(w, "damage   %s\n", s.Damage)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "\nsegment\tfirst\tlast\tbytes\tsealed\tkept because")
	for _, g := range s.Segments {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%v\t%s\n", g.Name, g.First, g.Last, human(g.Bytes), g.Sealed, g.Kept)
	}
	tw.Flush()
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
