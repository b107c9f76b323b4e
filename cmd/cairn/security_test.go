// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
)

// TestSafeByDefault: with no users file, cairn serve and cairn gateway
// refuse an address other than loopback, naming the flag that allows it;
// --allow-anonymous does.
func TestSafeByDefault(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--listen", "0.0.0.0:0", "--data", t.TempDir()},
		{"gateway", "--listen", ":0", "--upstream", "127.0.0.1:1"},
	} {
		out, err := exec.Command(binary(t), args...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitUsage || !strings.Contains(string(out), "--allow-anonymous") || !strings.Contains(string(out), "--users") {
			t.Fatalf("cairn %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	p := launch(t, "", "serve", "--listen", "0.0.0.0:0", "--data", t.TempDir(), "--allow-anonymous")
	p.waitLog(t, "cairn listening", 30*time.Second)
}

// TestUsersReloadOnSIGHUP: cairn serve --users: a good login works, a bad
// one is refused; after the file gains a user and SIGHUP, the new user logs
// in and the connection made before is still up. A file that no longer
// parses is not taken, and the users before stay.
func TestUsersReloadOnSIGHUP(t *testing.T) {
	hash := func(pw string) string {
		cmd := exec.Command(binary(t), "passwd")
		cmd.Stdin = strings.NewReader(pw + "\n")
		out, err := cmd.Output()
		if err != nil || !strings.HasPrefix(string(out), "$2a$") {
			t.Fatalf("cairn passwd: %v %q", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	file := filepath.Join(t.TempDir(), "users.yaml")
	os.WriteFile(file, []byte("users:\n  alice:\n    password: "+hash("pw-alice-4711")+"\n"), 0o600)
	p := startServe(t, t.TempDir(), "--users", file)
	alice, err := gostomp.Dial("tcp", p.addr, gostomp.ConnOpt.Login("alice", "pw-alice-4711"))
	if err != nil {
		t.Fatalf("alice: %v", err)
	}
	defer alice.Disconnect()
	if c, err := gostomp.Dial("tcp", p.addr, gostomp.ConnOpt.Login("bob", "pw-bob-0815")); err == nil {
		c.Disconnect()
		t.Fatal("bob logged in before he was in the file")
	}
	p.waitLog(t, "login refused", 10*time.Second)
	os.WriteFile(file, []byte("users:\n  alice:\n    password: "+hash("pw-alice-4711")+"\n  bob:\n    password: "+hash("pw-bob-0815")+"\n"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "users reloaded", 10*time.Second)
	bob, err := gostomp.Dial("tcp", p.addr, gostomp.ConnOpt.Login("bob", "pw-bob-0815"))
	if err != nil {
		t.Fatalf("bob after the reload: %v", err)
	}
	bob.Disconnect()
	if err := alice.Send("/queue/x", "text/plain", []byte("still here"), gostomp.SendOpt.Receipt); err != nil {
		t.Fatalf("alice's connection after the reload: %v", err)
	}
	os.WriteFile(file, []byte("users: [broken"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "users file not reloaded", 10*time.Second)
	c, err := gostomp.Dial("tcp", p.addr, gostomp.ConnOpt.Login("bob", "pw-bob-0815"))
	if err != nil {
		t.Fatalf("bob after a broken file was refused: %v", err)
	}
	c.Disconnect()
	if log := p.log(); strings.Contains(log, "pw-bob-0815") || strings.Contains(log, "pw-alice-4711") || !strings.Contains(log, "user=bob") {
		t.Errorf("the log shows a passcode, or does not name the refused user:\n%s", log)
	}
}
