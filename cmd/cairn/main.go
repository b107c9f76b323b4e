// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Command cairn is the Cairn message broker and its tools. Each command
// maps its flags to a package's options (serve: replication/node; bench:
// bench/...; journal: journal/wal), runs it, prints what it returns, and
// maps the outcome to an exit status: 0 done, 1 a failure, 2 a usage
// error, 3 a master that lost its lease (fenced). Nothing here outlives
// the command.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

// Exit codes. Usage errors are 2, as for most Unix tools.
const (
	exitFailure = 1
	exitUsage   = 2
	exitFenced  = 3 // a master lost its journal lease and stopped
)

func main() {
	app := &cli.App{
		Name:                      "cairn",
		Usage:                     "an event-sourced STOMP message broker on a pluggable journal",
		Version:                   versionString(),
		HideVersion:               true,
		EnableBashCompletion:      true,
		DisableSliceFlagSeparator: true, // a --redelivery rule holds commas
		OnUsageError:              usageError,
		CommandNotFound:           commandNotFound,
		Commands: []*cli.Command{
			serveCommand(),
			gatewayCommand(),
			demoCommand(),
			passwdCommand(),
			healthCommand(),
			journalCommand(),
			benchCommand(),
			statusCommand(),
			{
				Name:   "version",
				Usage:  "print the version",
				Action: func(c *cli.Context) error { fmt.Fprintln(c.App.Writer, "cairn", versionString()); return nil },
			},
		},
	}
	if err := app.Run(os.Args); err != nil {
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(os.Stderr, "cairn:", msg)
			}
			os.Exit(ec.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "cairn:", err)
		os.Exit(exitFailure)
	}
}

// versionString is what cairn version prints: the version, the platform
// and the Go release.
func versionString() string {
	return fmt.Sprintf("%s %s/%s %s", versionNumber(), runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// versionNumber is Cairn's version alone: what clients are told (CONNECTED's
// server header), which names neither the platform nor the Go release.
func versionNumber() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "devel"
}

func commandNotFound(c *cli.Context, name string) {
	fmt.Fprintf(os.Stderr, "cairn: %s has no command %q (see `%s --help`)\n", c.Command.FullName(), name, c.Command.HelpName)
	os.Exit(exitUsage)
}

// unknownSubcommand is the Action of a command that only groups others.
func unknownSubcommand(c *cli.Context) error {
	if c.NArg() == 0 {
		cli.ShowSubcommandHelp(c)
		return cli.Exit("", exitUsage)
	}
	return cli.Exit(fmt.Sprintf("%s has no command %q (see `%s --help`)", c.Command.HelpName, c.Args().First(), c.Command.HelpName), exitUsage)
}

func usageError(c *cli.Context, err error, _ bool) error {
	return cli.Exit(fmt.Sprintf("%v (see `%s --help`)", err, c.Command.HelpName), exitUsage)
}

// oneArg returns the command's single positional argument or a usage error.
func oneArg(c *cli.Context, what string) (string, error) {
	if c.NArg() != 1 {
		return "", cli.Exit(fmt.Sprintf("%s needs exactly one argument, %s (see `%s --help`)", c.Command.HelpName, what, c.Command.HelpName), exitUsage)
	}
	return c.Args().First(), nil
}
