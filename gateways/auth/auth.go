// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package auth is who may connect: a users file (YAML: each user's bcrypt
// password hash and groups), checked in constant time, reloaded whole or
// not at all, with a cache of credentials verified recently so that a
// crowd reconnecting after a failover costs one password hash per
// distinct credential, not one per client.
//
// The file:
//
//	users:
//	  alice:
//	    password: $2a$12$…   # cairn passwd
//	    groups: [admins, orders]
//	  svc-billing:
//	    password: $2a$12$…
//	    groups: [billing]
//
// A password that is not a bcrypt hash is refused when the file is read:
// the file never holds one in plain text. Authorization entries, in
// ActiveMQ's terms, say which groups may read (consume, browse), write
// (send) and admin each queue or topic pattern; with entries, what none
// allows is denied:
//
//	authorization:
//	  - queue: orders.>
//	    read: [orders]
//	    write: [orders, shop]
//	  - topic: prices.>
//	    read: [anonymous, orders]
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"
)

// Cost is the bcrypt cost of the hashes Hash makes.
const Cost = 12

// ErrBadCredentials is returned for an unknown user or a wrong password;
// which of the two is not said.
var ErrBadCredentials = errors.New("auth: user name or password is invalid")

// User is an authenticated user.
type User struct {
	Name   string
	Groups []string
}

// Hash returns the bcrypt hash of password, for the users file.
func Hash(password string) (string, error) {
	if password == "" {
		return "", errors.New("auth: an empty password")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), Cost)
	if err != nil {
		return "", fmt.Errorf("auth: %w", err) // over 72 bytes, say
	}
	return string(h), nil
}

type entry struct {
	hash   []byte
	groups []string
}

// Users is a users file, loaded.
type Users struct {
	path string

	mu    sync.RWMutex
	users map[string]entry
	cache *cache
	acls  *acls // nil: no authorization entries
}

// Load reads the users file at path. An error says what in the file is
// wrong, and where.
func Load(path string) (*Users, error) {
	u := &Users{path: path}
	if err := u.Reload(); err != nil {
		return nil, err
	}
	return u, nil
}

// Path is the file's path.
func (u *Users) Path() string { return u.path }

// Len is how many users the file has.
func (u *Users) Len() int {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return len(u.users)
}

// Reload reads the file again. On an error nothing changes: the users
// loaded before stay in force. On success the credential cache starts
// empty, so a removed user or a changed password takes effect at once for
// new logins.
func (u *Users) Reload() error {
	b, err := os.ReadFile(u.path)
	if err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	users, acls, err := parse(b)
	if err != nil {
		return fmt.Errorf("users file %s: %w", u.path, err)
	}
	u.mu.Lock()
	u.users, u.cache, u.acls = users, newCache(), acls
	u.mu.Unlock()
	return nil
}

// parse reads a users file's content.
func parse(b []byte) (map[string]entry, *acls, error) {
	var doc struct {
		Users map[string]struct {
			Password string   `yaml:"password"`
			Groups   []string `yaml:"groups"`
		} `yaml:"users"`
		Authorization []Entry `yaml:"authorization"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, nil, fmt.Errorf("does not parse: %v", err)
	}
	acls, err := parseACL(doc.Authorization)
	if err != nil {
		return nil, nil, err
	}
	users := map[string]entry{}
	for name, e := range doc.Users {
		switch {
		case name == "" || strings.ContainsAny(name, "\x00\n\r:"):
			return nil, nil, fmt.Errorf("user %q: not a user name", name)
		case e.Password == "":
			return nil, nil, fmt.Errorf("user %q: no password (make a hash with cairn passwd)", name)
		case !isBcrypt(e.Password):
			return nil, nil, fmt.Errorf("user %q: the password is not a bcrypt hash; the file must not hold passwords (make a hash with cairn passwd)", name)
		}
		if _, err := bcrypt.Cost([]byte(e.Password)); err != nil {
			return nil, nil, fmt.Errorf("user %q: the password hash is damaged: %v", name, err)
		}
		for _, g := range e.Groups {
			if g == "" || strings.ContainsAny(g, ", \t\n") {
				return nil, nil, fmt.Errorf("user %q: group %q is not a group name", name, g)
			}
		}
		users[name] = entry{hash: []byte(e.Password), groups: slices.Clone(e.Groups)}
	}
	return users, acls, nil
}

func isBcrypt(s string) bool {
	for _, p := range []string{"$2a$", "$2b$", "$2y$"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// Groups returns the groups of user, and whether the file has that user
// (a client certificate names a user without a password).
func (u *Users) Groups(user string) ([]string, bool) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	e, ok := u.users[user]
	return slices.Clone(e.groups), ok
}

// hashing bounds the bcrypt comparisons running at once to the cores: a
// crowd of logins with distinct (or wrong) credentials queues for them
// instead of taking every core from the broker.
var hashing = make(chan struct{}, runtime.GOMAXPROCS(0))

// dummyHash is compared against for an unknown user, so that a login
// takes as long whether or not its user exists.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("no such user"), Cost)

// Check authenticates login with passcode. A credential verified recently
// (since the last reload) is answered from the cache; concurrent checks of
// one credential share one bcrypt comparison.
func (u *Users) Check(login, passcode string) (User, error) {
	u.mu.RLock()
	users, c := u.users, u.cache
	u.mu.RUnlock()
	key := c.key(login, passcode)
	ok, err := c.do(key, func() bool {
		e, known := users[login]
		hash := e.hash
		if !known {
			hash = dummyHash
		}
		hashing <- struct{}{} // at most one hash per core at a time
		defer func() { <-hashing }()
		return bcrypt.CompareHashAndPassword(hash, []byte(passcode)) == nil && known
	})
	if err != nil || !ok {
		return User{}, ErrBadCredentials
	}
	e := users[login]
	return User{Name: login, Groups: slices.Clone(e.groups)}, nil
}

// cache holds keyed digests (HMAC-SHA256 under a key made for it) of
// credentials verified since the users were loaded: never a password. It
// forgets everything when it grows past maxCached.
type cache struct {
	secret [32]byte

	mu       sync.Mutex
	verified map[[32]byte]bool
	inflight map[[32]byte]*call
}

type call struct {
	done chan struct{}
	ok   bool
}

const maxCached = 100_000

func newCache() *cache {
	c := &cache{verified: map[[32]byte]bool{}, inflight: map[[32]byte]*call{}}
	rand.Read(c.secret[:])
	return c
}

func (c *cache) key(login, passcode string) [32]byte {
	m := hmac.New(sha256.New, c.secret[:])
	m.Write([]byte(login))
	m.Write([]byte{0})
	m.Write([]byte(passcode))
	var k [32]byte
	m.Sum(k[:0])
	return k
}

// do answers from the cache, or runs verify once for every caller asking
// about key at the same time. Only successes are cached.
func (c *cache) do(key [32]byte, verify func() bool) (bool, error) {
	c.mu.Lock()
	if c.verified[key] {
		c.mu.Unlock()
		return true, nil
	}
	if cl := c.inflight[key]; cl != nil {
		c.mu.Unlock()
		<-cl.done
		return cl.ok, nil
	}
	cl := &call{done: make(chan struct{})}
	c.inflight[key] = cl
	c.mu.Unlock()
	cl.ok = verify()
	c.mu.Lock()
	delete(c.inflight, key)
	if cl.ok {
		if len(c.verified) >= maxCached {
			clear(c.verified)
		}
		c.verified[key] = true
	}
	c.mu.Unlock()
	close(cl.done)
	return cl.ok, nil
}
