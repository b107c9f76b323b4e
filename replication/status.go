// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package replication

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cairnmq/cairn/journal"
)

// Role is what a broker is doing with a journal.
type Role string

// The roles a broker reports.
const (
	RoleStandby  Role = "standby"  // waiting for the lease
	RoleStarting Role = "starting" // holds the lease, replaying
	RoleMaster   Role = "master"   // holds the lease and serves
	RoleFenced   Role = "fenced"   // lost the lease; stopped writing, exiting
	RoleStopped  Role = "stopped"  // shut down cleanly
)

// MembersDir is the folder in the journal directory where each broker
// sharing it reports its role.
const MembersDir = "members"

// Member is one broker's report of itself, written to MembersDir/<id>.json
// and read by `cairn status`.
type Member struct {
	ID      string    `json:"id"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Role    Role      `json:"role"`
	Epoch   uint64    `json:"epoch,omitempty"`
	Listen  string    `json:"listen,omitempty"`
	Detail  string    `json:"detail,omitempty"` // what it waits for, or why it stopped
	Since   time.Time `json:"since"`            // when it took this role
	Updated time.Time `json:"updated"`          // when it last wrote this report
}

// WriteMember replaces the report of m.ID in dir. Reports are rewritten
// every second or so by a running broker; a stale one means the broker is
// gone or stuck.
func WriteMember(dir string, m Member) error {
	if m.ID == "" || strings.ContainsAny(m.ID, "/\\") {
		return fmt.Errorf("replication: bad member id %q", m.ID)
	}
	d := filepath.Join(dir, MembersDir)
	if err := os.MkdirAll(d, journal.DirMode); err != nil {
		return err
	}
	m.Updated = time.Now().UTC()
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	path := filepath.Join(d, m.ID+".json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), journal.FileMode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Members reads every broker's report in dir, newest first. A report that
// cannot be parsed is skipped.
func Members(dir string) ([]Member, error) {
	ents, err := os.ReadDir(filepath.Join(dir, MembersDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ms []Member
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, MembersDir, e.Name()))
		if err != nil {
			continue
		}
		var m Member
		if json.Unmarshal(b, &m) == nil {
			ms = append(ms, m)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Updated.After(ms[j].Updated) })
	return ms, nil
}

// PruneMembers removes reports not updated for longer than age.
func PruneMembers(dir string, age time.Duration) {
	ms, _ := Members(dir)
	for _, m := range ms {
		if time.Since(m.Updated) > age {
			os.Remove(filepath.Join(dir, MembersDir, m.ID+".json"))
		}
	}
}

// Reporter keeps one broker's Member report fresh: it rewrites it when the
// role changes and every second, so `cairn status` can tell a live broker
// from a gone one.
type Reporter struct {
	dir  string
	mu   sync.Mutex
	m    Member
	stop chan struct{}
	done chan struct{}
}

// NewReporter starts reporting m (its Role, Since and Updated are set here)
// in dir as a standby.
func NewReporter(dir string, m Member) *Reporter {
	m.Role, m.Since = RoleStandby, time.Now().UTC()
	r := &Reporter{dir: dir, m: m, stop: make(chan struct{}), done: make(chan struct{})}
	r.write()
	go r.loop()
	return r
}

// Set changes the reported role; detail says what the broker waits for or
// why it stopped.
func (r *Reporter) Set(role Role, epoch uint64, detail string) {
	r.mu.Lock()
	if role != r.m.Role {
		r.m.Since = time.Now().UTC()
	}
	r.m.Role, r.m.Detail = role, detail
	if epoch != 0 {
		r.m.Epoch = epoch
	}
	r.mu.Unlock()
	r.write()
}

// SetListen records the address the broker serves on.
func (r *Reporter) SetListen(addr string) {
	r.mu.Lock()
	r.m.Listen = addr
	r.mu.Unlock()
	r.write()
}

// Stop writes the final role and stops the refreshes.
func (r *Reporter) Stop(role Role, detail string) {
	select {
	case <-r.stop:
	default:
		close(r.stop)
		<-r.done
	}
	r.Set(role, 0, detail)
}

func (r *Reporter) write() {
	r.mu.Lock()
	m := r.m
	r.mu.Unlock()
	WriteMember(r.dir, m) // best effort: status is advisory
}

func (r *Reporter) loop() {
	defer close(r.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.write()
		}
	}
}
