// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"io/fs"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	gostomp "github.com/go-stomp/stomp/v3"
)

// What cairn serve shows the world: CONNECTED's server header names Cairn
// and its version only (not the Go release or the platform), and the data
// directory it makes, and everything in it, is for the broker's user alone.
func TestServeShowsNothingMore(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	p := startServe(t, data)
	c, err := gostomp.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	server := c.Server()
	if !regexp.MustCompile(`^Cairn/[^ /]+$`).MatchString(server) || strings.Contains(server, runtime.Version()) || strings.Contains(server, runtime.GOOS) {
		t.Fatalf("CONNECTED server:%q, want Cairn/<version> alone", server)
	}
	if err := c.Send("/queue/q", "text/plain", []byte("x"), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
		t.Fatal(err)
	}
	files := 0
	err = filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else {
			files++
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %04o, want %04o", path, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 3 {
		t.Fatalf("the data directory holds %d files; the test means to check a journal's", files)
	}
}
