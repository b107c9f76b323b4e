// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/gateways/stomp"
	"github.com/cairnmq/cairn/internal/brokertest"
	"github.com/cairnmq/cairn/internal/logtest"
	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/journal/memlog"
)

// failingLog is a journal whose appends fail as a disk does, naming a
// file.
type failingLog struct{ journal.Log }

const secretPath = "/var/lib/cairn/wal/00000000000000000001"

func (failingLog) Append(context.Context, []journal.Record) (uint64, uint64, error) {
	return 0, 0, fmt.Errorf("%w: write %s: %w", journal.ErrFailed, secretPath, syscall.EIO)
}

// A failure of the store reaches the client as a fixed message and a code,
// naming no file and no I/O error; the log has the detail, with the
// session's id, which the ERROR names so that the two can be matched.
func TestStoreFailureShowsNoPath(t *testing.T) {
	var logs logtest.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	k := brokertest.Start(t, brokertest.Options{
		Open: func(t testing.TB) journal.Log {
			l, err := memlog.NewStore(0).Open()
			if err != nil {
				t.Fatal(err)
			}
			return failingLog{l}
		},
		Core:   core.Options{Logger: quiet},
		Server: stomp.Options{Logger: logger},
	})
	c := rawConnect(t, k.Addr)
	send := frame.New("SEND", "destination", "/queue/q", "persistent", "true", "receipt", "r")
	send.Body = []byte("x")
	c.write(t, send)
	e := c.read(t)
	if e.Command != "ERROR" || e.Header.Get("code") != "journal-failure" {
		t.Fatalf("a SEND on a failing store: %s code:%s, want ERROR code:journal-failure", e.Command, e.Header.Get("code"))
	}
	msg := e.Header.Get("message") + string(e.Body)
	for _, leak := range []string{secretPath, "/var/lib", "input/output error"} {
		if strings.Contains(msg, leak) {
			t.Fatalf("the ERROR shows %q: %s", leak, msg)
		}
	}
	if !strings.Contains(msg, "session ") {
		t.Fatalf("the ERROR does not name the session to look for in the log: %s", msg)
	}
	session := msg[strings.Index(msg, "session ")+len("session "):]
	session = strings.TrimRight(session[:strings.IndexAny(session, ")\n")], " ")
	for _, want := range []string{secretPath, "input/output error", "session=" + session} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("the log lacks %q:\n%s", want, logs.String())
		}
	}
}
