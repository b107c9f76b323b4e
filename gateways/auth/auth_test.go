// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func writeUsers(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "users.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func hashOf(t testing.TB, pw string) string {
	t.Helper()
	h, err := Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestUsersFile: good and bad logins; an unknown user and a wrong password
// get the same error; groups come back; a file with a plain password, an
// unknown key or broken YAML is refused saying what is wrong, and a reload
// of one keeps the users loaded before.
func TestUsersFile(t *testing.T) {
	p := writeUsers(t, "users:\n  alice:\n    password: "+hashOf(t, "s3cret")+"\n    groups: [admins, orders]\n")
	u, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := u.Check("alice", "s3cret")
	if err != nil || got.Name != "alice" || strings.Join(got.Groups, ",") != "admins,orders" {
		t.Fatalf("alice: %+v %v", got, err)
	}
	for _, bad := range [][2]string{{"alice", "wrong"}, {"bob", "s3cret"}, {"", ""}} {
		if _, err := u.Check(bad[0], bad[1]); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("Check(%q, %q) = %v", bad[0], bad[1], err)
		}
	}
	for content, want := range map[string]string{
		"users:\n  bob:\n    password: hunter2\n":      "not a bcrypt hash",
		"users:\n  bob:\n    groups: [x]\n":            "no password",
		"users:\n  bob:\n    password: $2a$12$short\n": "damaged",
		"users:\n  bob:\n    pasword: x\n":             "does not parse",
		"users: [":                                     "does not parse",
		"users:\n  bob:\n    password: " + hashOf(t, "x") + "\n    groups: [a b]\n": "not a group name",
	} {
		os.WriteFile(p, []byte(content), 0o600)
		err := u.Reload()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("reload of %q: %v, want an error saying %q", content, err, want)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error shows the password: %v", err)
		}
		if _, err := u.Check("alice", "s3cret"); err != nil {
			t.Fatalf("after a failed reload alice no longer logs in: %v", err)
		}
		if _, err := Load(p); err == nil {
			t.Errorf("Load took %q", content)
		}
	}
	// A good reload takes effect at once, cached credentials included.
	os.WriteFile(p, []byte("users:\n  bob:\n    password: "+hashOf(t, "pw")+"\n"), 0o600)
	if err := u.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Check("alice", "s3cret"); err == nil {
		t.Fatal("alice, removed from the file, still logs in (from the cache)")
	}
	if _, err := u.Check("bob", "pw"); err != nil {
		t.Fatal(err)
	}
}

// TestCrowdReconnecting: 10,000 clients sharing a few credentials log in
// at once, as after a failover: one bcrypt comparison per credential, not
// per client, so it is quick.
func TestCrowdReconnecting(t *testing.T) {
	p := writeUsers(t, "users:\n  app:\n    password: "+hashOf(t, "pw")+"\n  other:\n    password: "+hashOf(t, "pw2")+"\n")
	u, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	var failed sync.Map
	for i := range 10000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			login, pw := "app", "pw"
			if i%2 == 1 {
				login, pw = "other", "pw2"
			}
			if _, err := u.Check(login, pw); err != nil {
				failed.Store(i, err)
			}
		}()
	}
	wg.Wait()
	failed.Range(func(k, v any) bool { t.Fatalf("client %v: %v", k, v); return false })
	t.Logf("10,000 logins of 2 credentials at once: %s", time.Since(start).Round(time.Millisecond))
}

func BenchmarkCheckCached(b *testing.B) {
	dir := b.TempDir()
	p := filepath.Join(dir, "users.yaml")
	os.WriteFile(p, []byte("users:\n  app:\n    password: "+hashOf(b, "pw")+"\n"), 0o600)
	u, err := Load(p)
	if err != nil {
		b.Fatal(err)
	}
	u.Check("app", "pw")
	b.ResetTimer()
	for b.Loop() {
		if _, err := u.Check("app", "pw"); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzUsersFile(f *testing.F) {
	f.Add([]byte("users:\n  alice:\n    password: $2a$04$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui\n    groups: [a]\n"))
	f.Add([]byte("users: {}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		users, _, err := parse(b)
		if err != nil {
			return
		}
		for name, e := range users {
			if name == "" || !isBcrypt(string(e.hash)) {
				t.Fatalf("parse took user %q with hash %q", name, e.hash)
			}
		}
	})
}
