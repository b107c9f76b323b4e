// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	"golang.org/x/term"

	"github.com/cairnmq/cairn/gateways/auth"
	"github.com/cairnmq/cairn/gateways/stomp"
)

func passwdCommand() *cli.Command {
	return &cli.Command{
		Name:  "passwd",
		Usage: "print a password hash for a users file: the password is read from the terminal (twice, not shown) or from stdin",
		Description: "Put the line it prints as a user's password in the file that --users names:\n\n" +
			"  users:\n    alice:\n      password: <the hash>\n      groups: [orders]",
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			pw, err := readPassword(c)
			if err != nil {
				return cli.Exit(err.Error(), exitFailure)
			}
			h, err := auth.Hash(pw)
			if err != nil {
				return cli.Exit(err.Error(), exitUsage)
			}
			fmt.Fprintln(c.App.Writer, h)
			return nil
		},
	}
}

// readPassword reads a password: from the terminal without echo, twice,
// or the first line of stdin.
func readPassword(c *cli.Context) (string, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return "", fmt.Errorf("no password on stdin: %v", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fmt.Fprint(c.App.ErrWriter, "password: ")
	a, err := term.ReadPassword(fd)
	fmt.Fprintln(c.App.ErrWriter)
	if err != nil {
		return "", err
	}
	fmt.Fprint(c.App.ErrWriter, "again: ")
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(c.App.ErrWriter)
	if err != nil {
		return "", err
	}
	if string(a) != string(b) {
		return "", fmt.Errorf("the passwords differ")
	}
	return string(a), nil
}

func securityFlags() []cli.Flag {
	return []cli.Flag{
		altsrc.NewStringFlag(&cli.StringFlag{Name: "users", EnvVars: []string{"CAIRN_USERS"}, Usage: "users file (YAML: each user's bcrypt password hash and groups; see cairn passwd); reloaded on SIGHUP"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "tls-listen", EnvVars: []string{"CAIRN_TLS_LISTEN"}, Usage: "STOMP over TLS (stomp+ssl) on this address too, e.g. 127.0.0.1:61612 (needs --tls-cert and --tls-key)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "tls-cert", EnvVars: []string{"CAIRN_TLS_CERT"}, Usage: "PEM certificate (chain) for --tls-listen; read again when it changes"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "tls-key", EnvVars: []string{"CAIRN_TLS_KEY"}, Usage: "PEM key for --tls-cert"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "tls-client-ca", EnvVars: []string{"CAIRN_TLS_CLIENT_CA"}, Usage: "PEM authorities whose client certificates --tls-listen requires (mutual TLS)"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "tls-cert-users", EnvVars: []string{"CAIRN_TLS_CERT_USERS"}, Usage: "a verified client certificate's common name is the connection's user (a user of --users, if given): no login needed"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "ws-listen", EnvVars: []string{"CAIRN_WS_LISTEN"}, Usage: "STOMP over WebSocket on this address too, e.g. 127.0.0.1:61614 (ActiveMQ's ws port); any path"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "ws-tls", EnvVars: []string{"CAIRN_WS_TLS"}, Usage: "serve --ws-listen over TLS (wss://) with --tls-cert and --tls-key"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "allow-anonymous", EnvVars: []string{"CAIRN_ALLOW_ANONYMOUS"}, Usage: "let clients connect without a login: on an address other than loopback, or beside --users"}),
	}
}

// security loads the users file and applies the safe default: with no
// users, only a loopback listener may serve (anonymous) clients, unless
// --allow-anonymous says otherwise. It sets so's Users and AllowAnonymous,
// and reloads the users on SIGHUP until stop is called.
func security(c *cli.Context, so *stomp.Options, listen string, logger *slog.Logger) (stop func(), err error) {
	so.AllowAnonymous = c.Bool("allow-anonymous")
	so.CertUsers = c.Bool("tls-cert-users")
	path := c.String("users")
	if path == "" {
		for _, l := range []struct{ flag, addr string }{{"--listen", listen}, {"--tls-listen", c.String("tls-listen")}, {"--ws-listen", c.String("ws-listen")}} {
			if l.addr == "" || so.AllowAnonymous || loopback(l.addr) || l.flag == "--tls-listen" && so.CertUsers && c.String("tls-client-ca") != "" {
				continue
			}
			return nil, cli.Exit(fmt.Sprintf("%s %s is not a loopback address and no --users file is given: anyone who reaches it could connect. "+
				"Give --users FILE (see cairn passwd), or --allow-anonymous to serve anonymous clients there on purpose", l.flag, l.addr), exitUsage)
		}
		return func() {}, nil
	}
	users, err := auth.Load(path)
	if err != nil {
		return nil, cli.Exit(err.Error(), exitUsage)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		logger.Warn("the users file is open to other users (chmod 0600 it)", "file", path, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}
	so.Users = users
	logger.Info("users loaded", "file", path, "users", users.Len(), "anonymous", so.AllowAnonymous)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				if err := users.Reload(); err != nil {
					logger.Error("users file not reloaded; the users loaded before stay in force", "err", err)
				} else {
					logger.Info("users reloaded", "file", path, "users", users.Len())
				}
			}
		}
	}()
	return func() { signal.Stop(hup); close(done) }, nil
}

// loopback reports whether every address listen may bind is a loopback
// one (127.0.0.0/8, ::1, localhost): no other host can reach it.
func loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil || host == "" {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return false
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return false
		}
	}
	return true
}

// tlsSettings reads the TLS flags: the address and configuration of
// --tls-listen (the address empty when only --ws-tls needs the
// configuration), or nil if neither is asked for.
func tlsSettings(c *cli.Context) (string, *tls.Config, error) {
	addr := c.String("tls-listen")
	if addr == "" && !c.Bool("ws-tls") {
		for _, f := range []string{"tls-cert", "tls-key", "tls-client-ca"} {
			if c.String(f) != "" {
				return "", nil, cli.Exit(fmt.Sprintf("--%s without --tls-listen", f), exitUsage)
			}
		}
		return "", nil, nil
	}
	cfg, err := stomp.TLSConfig(stomp.TLSFiles{Cert: c.String("tls-cert"), Key: c.String("tls-key"), ClientCA: c.String("tls-client-ca")})
	if err != nil {
		return "", nil, cli.Exit("--tls-listen: "+err.Error(), exitUsage)
	}
	return addr, cfg, nil
}
