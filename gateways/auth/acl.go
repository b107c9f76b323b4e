// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package auth

import (
	"fmt"
	"strings"
	"sync"
)

// Op is what a client does with a destination, in ActiveMQ's terms.
type Op int

const (
	// Read is to consume: SUBSCRIBE (durable ones included) and browse.
	Read Op = iota
	// Write is to SEND.
	Write
	// Admin is to remove or purge (a durable subscription's UNSUBSCRIBE
	// with its name, the admin API).
	Admin
)

func (o Op) String() string { return [...]string{"read", "write", "admin"}[o] }

// Anonymous is the group of clients that connected without a login
// (--allow-anonymous), for authorization entries.
const Anonymous = "anonymous"

// rule is one authorization entry: a queue or topic pattern (ActiveMQ's
// wildcards) and the groups allowed each operation.
type rule struct {
	kind    string // "queue" or "topic"
	pattern string
	groups  [3][]string
}

// acl is the groups allowed each operation on one destination: the union
// of every entry that matches it (ActiveMQ's DefaultAuthorizationMap).
type acl [3]map[string]bool

type aclKey struct{ kind, name string }

// acls caches the acl of each destination asked about, so that checking a
// frame costs a map lookup, not a scan of the entries.
type acls struct {
	rules []rule
	mu    sync.RWMutex
	cache map[aclKey]*acl
}

const maxACLs = 100_000

func (a *acls) get(kind, name string) *acl {
	k := aclKey{kind, name}
	a.mu.RLock()
	l := a.cache[k]
	a.mu.RUnlock()
	if l != nil {
		return l
	}
	l = &acl{}
	for _, r := range a.rules {
		if r.kind != kind || !match(r.pattern, name) {
			continue
		}
		for op, gs := range r.groups {
			for _, g := range gs {
				if l[op] == nil {
					l[op] = map[string]bool{}
				}
				l[op][g] = true
			}
		}
	}
	a.mu.Lock()
	if len(a.cache) >= maxACLs {
		clear(a.cache)
	}
	a.cache[k] = l
	a.mu.Unlock()
	return l
}

// match reports whether name (itself perhaps a wildcard subscription)
// matches pattern: "." separates segments, "*" matches one, ">" the rest.
func match(pattern, name string) bool {
	ps, ns := strings.Split(pattern, "."), strings.Split(name, ".")
	for i, p := range ps {
		if p == ">" {
			return i < len(ns)
		}
		if i >= len(ns) || p != "*" && p != ns[i] {
			return false
		}
	}
	return len(ps) == len(ns)
}

// Allowed reports whether a user of groups may do op on the queue or
// topic name. Without authorization entries everything is allowed (the
// users file only authenticates); with them, what no entry allows is
// denied.
func (u *Users) Allowed(groups []string, op Op, kind, name string) bool {
	u.mu.RLock()
	a := u.acls
	u.mu.RUnlock()
	if a == nil {
		return true
	}
	l := a.get(kind, name)
	for _, g := range groups {
		if l[op][g] {
			return true
		}
	}
	return false
}

// Entry is one authorization entry as the users file has it.
type Entry struct {
	Queue string   `yaml:"queue"`
	Topic string   `yaml:"topic"`
	Read  []string `yaml:"read"`
	Write []string `yaml:"write"`
	Admin []string `yaml:"admin"`
}

func parseACL(entries []Entry) (*acls, error) {
	if entries == nil {
		return nil, nil
	}
	a := &acls{cache: map[aclKey]*acl{}}
	for i, e := range entries {
		var r rule
		switch {
		case e.Queue != "" && e.Topic != "":
			return nil, fmt.Errorf("authorization entry %d names both a queue and a topic", i+1)
		case e.Queue != "":
			r.kind, r.pattern = "queue", e.Queue
		case e.Topic != "":
			r.kind, r.pattern = "topic", e.Topic
		default:
			return nil, fmt.Errorf("authorization entry %d names no queue or topic", i+1)
		}
		for _, seg := range strings.Split(r.pattern, ".") {
			if seg == "" || strings.Contains(seg, ">") && seg != ">" || strings.Contains(seg, "*") && seg != "*" {
				return nil, fmt.Errorf("authorization entry %d: %q is not a destination pattern", i+1, r.pattern)
			}
		}
		r.groups = [3][]string{e.Read, e.Write, e.Admin}
		a.rules = append(a.rules, r)
	}
	return a, nil
}
