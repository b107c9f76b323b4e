// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
	"github.com/urfave/cli/v2"

	"github.com/cairnmq/cairn/gateways/stompclient"
)

func demoCommand() *cli.Command {
	addrs := &cli.StringSliceFlag{Name: "addr", Value: cli.NewStringSlice("127.0.0.1:61613"), Usage: "STOMP addresses, tried in turn (repeat the flag)"}
	dest := &cli.StringFlag{Name: "destination", Value: "/queue/demo"}
	return &cli.Command{
		Name:            "demo",
		Usage:           "a demo producer or consumer on the failover client (gateways/stompclient), for trying a topology",
		OnUsageError:    usageError,
		Action:          unknownSubcommand,
		HideHelpCommand: true,
		Subcommands: []*cli.Command{
			{
				Name:         "producer",
				Usage:        "send a persistent, receipted message every --every, numbered, until stopped",
				Flags:        []cli.Flag{addrs, dest, &cli.DurationFlag{Name: "every", Value: time.Second}},
				OnUsageError: usageError,
				Action: func(c *cli.Context) error {
					ctx, cl, done, err := demoClient(c)
					if err != nil {
						return err
					}
					defer done()
					for i := 1; ctx.Err() == nil; i++ {
						body := fmt.Sprintf("demo message %d at %s", i, time.Now().Format(time.TimeOnly))
						if err := cl.Send(ctx, c.String("destination"), []byte(body), "persistent", "true"); err != nil {
							if ctx.Err() != nil {
								break
							}
							return cli.Exit(err.Error(), exitFailure)
						}
						fmt.Fprintln(c.App.Writer, "sent:", body)
						select {
						case <-ctx.Done():
						case <-time.After(c.Duration("every")):
						}
					}
					return nil
				},
			},
			{
				Name:         "consumer",
				Usage:        "receive and acknowledge messages, printing each, until stopped",
				Flags:        []cli.Flag{addrs, dest},
				OnUsageError: usageError,
				Action: func(c *cli.Context) error {
					ctx, cl, done, err := demoClient(c)
					if err != nil {
						return err
					}
					defer done()
					sub, err := cl.Subscribe(c.String("destination"), gostomp.AckClientIndividual, "activemq.prefetchSize", "10")
					if err != nil {
						return cli.Exit(err.Error(), exitFailure)
					}
					for {
						select {
						case <-ctx.Done():
							return nil
						case m, ok := <-sub.C:
							if !ok {
								return cli.Exit("the subscription ended", exitFailure)
							}
							note := ""
							if m.Header.Get("redelivered") == "true" {
								note = " (redelivered)"
							}
							fmt.Fprintf(c.App.Writer, "received: %s%s\n", m.Body, note)
							sub.Ack(m)
						}
					}
				},
			},
		},
	}
}

// demoClient connects the failover client to --addr until a signal;
// done disconnects it.
func demoClient(c *cli.Context) (context.Context, *stompclient.Client, func(), error) {
	ctx, cancel := stopOnSignal(slog.New(slog.DiscardHandler))
	cl, err := stompclient.Dial(ctx, stompclient.Options{Addrs: c.StringSlice("addr")})
	if err != nil {
		cancel(nil)
		return nil, nil, nil, cli.Exit(err.Error(), exitFailure)
	}
	return ctx, cl, func() { cl.Close(); cancel(nil) }, nil
}
