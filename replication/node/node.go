// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/gateways/stomp"
	"github.com/cairnmq/cairn/journal"
	"github.com/cairnmq/cairn/replication"
)

var (
	// ErrFenced is wrapped by Run's error when the node lost its journal
	// lease while master and stopped (fail-stop): another broker may now
	// be writing the journal. `cairn serve` exits 3 on it.
	ErrFenced = errors.New("fenced: the journal lease is lost")
	// ErrHeld is wrapped by Run's error when another broker holds the
	// journal and Options.Wait is false.
	ErrHeld = errors.New("the journal is held by another broker")
	// ErrKilled is Run's error after Kill.
	ErrKilled = errors.New("killed")
)

// Node is one broker of a master/standby group on one journal.
type Node struct {
	opts   Options
	id     string
	logger *slog.Logger

	master   chan struct{} // closed once serving
	killed   chan struct{} // closed by Kill
	killOnce sync.Once

	mu     sync.Mutex
	role   replication.Role
	addr   net.Addr
	broker *core.Broker
	srv    *stomp.Server
	lease  replication.Lease
	detail string // what a standby waits for
}

// New checks opts and returns a node that Run starts.
func New(opts Options) (*Node, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ID == "" {
		opts.ID = replication.NewID()
	}
	return &Node{opts: opts, id: opts.ID, logger: opts.Logger, master: make(chan struct{}), killed: make(chan struct{}), role: replication.RoleStandby}, nil
}

// ID is the node's name among the brokers sharing its journal.
func (n *Node) ID() string { return n.id }

// Master is closed once the node serves clients as master.
func (n *Node) Master() <-chan struct{} { return n.master }

// Addr is the STOMP listener's address, nil until the node is master.
func (n *Node) Addr() net.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addr
}

// Broker is the broker the node serves, nil until it is master.
func (n *Node) Broker() *core.Broker {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.broker
}

// Ready says whether the node serves clients (a master with its
// listeners up), and if not, why: for /readyz.
func (n *Node) Ready() (bool, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch n.role {
	case replication.RoleMaster:
		return true, ""
	case replication.RoleStandby:
		if n.detail != "" {
			return false, "standby: " + n.detail
		}
		return false, "standby: waiting for the journal"
	}
	return false, string(n.role)
}

// Connections is how many clients are connected now.
func (n *Node) Connections() int {
	n.mu.Lock()
	srv := n.srv
	n.mu.Unlock()
	if srv == nil {
		return 0
	}
	return srv.Connections()
}

// Conns lists the connected clients (none but as master).
func (n *Node) Conns() []stomp.ConnInfo {
	n.mu.Lock()
	srv := n.srv
	n.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Conns()
}

// Frames is how many frames this node's clients sent, by command (none but
// as master).
func (n *Node) Frames() map[string]uint64 {
	n.mu.Lock()
	srv := n.srv
	n.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Frames()
}

// CloseConn closes the client connection of session id, if there is one.
func (n *Node) CloseConn(id string) bool {
	n.mu.Lock()
	srv := n.srv
	n.mu.Unlock()
	return srv != nil && srv.CloseConn(id)
}

// RoleEpoch is the node's role and, as master, its lease's epoch.
func (n *Node) RoleEpoch() (string, uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var epoch uint64
	if n.lease != nil && n.role == replication.RoleMaster {
		epoch = n.lease.Epoch()
	}
	return string(n.role), epoch
}

// Role says where the node is now: standby, starting, master, and at the
// end stopped or fenced.
func (n *Node) Role() replication.Role {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.role
}

func (n *Node) setRole(r replication.Role) {
	n.mu.Lock()
	n.role = r
	n.mu.Unlock()
}

// Kill stops the node as SIGKILL would stop its process, for tests of
// takeover in one process: connections are dropped, nothing is drained or
// snapshotted, and the lease is abandoned, not released. Run returns
// ErrKilled.
func (n *Node) Kill() { n.killOnce.Do(func() { close(n.killed) }) }

// Freeze stops the master's lease renewals for d, as SIGSTOP would (see
// replication.Freeze): a standby takes over once the TTL has passed, and
// the node, when d is over, finds its lease lost and fail-stops (Run
// returns ErrFenced). Unlike a stopped process it keeps delivering what it
// holds in memory meanwhile; it can write nothing. No-op unless master.
func (n *Node) Freeze(d time.Duration) {
	n.mu.Lock()
	l := n.lease
	n.mu.Unlock()
	if l != nil {
		replication.Freeze(l, d)
	}
}

// Run runs the node until ctx ends (then it drains its connections, writes
// a final snapshot and releases the lease: nil), it loses its lease
// (ErrFenced), Kill (ErrKilled), or it fails. While another broker holds
// the journal it waits as a standby.
func (n *Node) Run(ctx context.Context) (err error) {
	o := &n.opts
	logger := n.logger
	if err := os.MkdirAll(o.Data, journal.DirMode); err != nil {
		return err
	}
	if fi, err := os.Stat(o.Data); err == nil && fi.Mode().Perm()&0o077 != 0 {
		// Made before this broker, or by someone else: left as it is.
		logger.Warn("the data directory is open to other users; the broker makes it 0700 and its files 0600 (chmod 0700 it)",
			"dir", o.Data, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}
	host, _ := os.Hostname()
	replication.PruneMembers(o.Data, 24*time.Hour) // reports of brokers long gone
	rep := replication.NewReporter(o.Data, replication.Member{ID: n.id, Host: host, PID: os.Getpid()})
	defer func() {
		role, detail := replication.RoleStopped, ""
		switch {
		case errors.Is(err, ErrFenced):
			role, detail = replication.RoleFenced, err.Error()
		case errors.Is(err, ErrKilled):
			return // a killed process reports nothing more
		case err != nil:
			detail = err.Error()
		}
		n.setRole(role)
		rep.Stop(role, detail)
	}()

	// Election: wait as a standby until this broker holds the journal.
	be, err := newBackend(o, n.id, logger)
	if err != nil {
		return err
	}
	defer be.close()
	var warm *replication.WarmStandby
	lease, err := n.acquire(ctx, be, rep, func() {
		if o.Warm {
			warm = replication.StartWarm(be.follower(), logger)
		}
	})
	var standby *core.Standby
	if warm != nil {
		standby = warm.Stop()
	}
	if err != nil || lease == nil {
		return err
	}
	n.mu.Lock()
	n.lease = lease
	n.mu.Unlock()
	select {
	case <-n.killed:
		replication.Abandon(lease)
		return ErrKilled
	default:
	}
	released := false
	defer func() {
		// A node that holds the lease but cannot serve gives it up, so that
		// a standby can try; a fenced or killed one has nothing to give.
		if !released && !errors.Is(err, ErrFenced) && !errors.Is(err, ErrKilled) {
			lease.Release()
		}
	}()
	took := lease.Took()
	logger.Info("master: holding the journal", "journal", be.name, "epoch", lease.Epoch(), "how", took.How, "previous", took.Previous.String(),
		"waited", took.Waited.Round(time.Millisecond), "id", n.id)
	n.setRole(replication.RoleStarting)
	rep.Set(replication.RoleStarting, lease.Epoch(), "replaying the journal")
	start := time.Now()
	l, maxBody, err := be.open(lease)
	if err != nil {
		return err
	}
	defer l.Close()
	bo := o.Broker
	bo.Journal, bo.Logger, bo.Standby = l, logger, standby
	bo.Progress = func(p journal.Progress) {
		if !p.Done {
			logger.Info("replaying the journal", "records", p.Records, "of", p.Total, "eta", p.ETA.Round(time.Second))
		}
	}
	b, err := core.Open(bo)
	if err != nil {
		return err
	}
	defer b.Close()
	ln := o.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", o.Listen); err != nil {
			return err
		}
	}
	defer ln.Close()
	so := o.STOMP
	so.Limits.MaxBodyBytes, so.Logger = maxBody, logger
	so.ReadMemory = ReadMemoryFor(so.ReadMemory, o.Broker.MemoryLimit, maxBody)
	srv := stomp.NewServer(stomp.CoreBroker(b), so)
	rec := b.Recovery()
	rep.SetListen(ln.Addr().String())
	rep.Set(replication.RoleMaster, lease.Epoch(), "")
	n.mu.Lock()
	n.role, n.addr, n.broker, n.srv = replication.RoleMaster, ln.Addr(), b, srv
	n.mu.Unlock()
	logger.Info("cairn listening", "role", "master", "epoch", lease.Epoch(), "stomp", ln.Addr().String(), "journal", be.name, "sync", o.Sync.String(),
		"replayed_records", rec.Records, "warm", rec.Warm, "pending_messages", rec.Messages, "queues", rec.Queues,
		"replay", rec.Took.Round(time.Millisecond), "startup", time.Since(start).Round(time.Millisecond))
	close(n.master)
	served := make(chan error, 3)
	go func() { served <- srv.Serve(ln) }()
	var tln, wln net.Listener
	if o.WSListen != "" {
		l, err := net.Listen("tcp", o.WSListen)
		if err != nil {
			ln.Close()
			closeNow(srv)
			return fmt.Errorf("WebSocket listener: %w", err)
		}
		if o.WSTLS && o.TLS != nil {
			l = tls.NewListener(l, o.TLS)
		}
		wln = l
		defer wln.Close()
		go func() { served <- srv.ServeWebSocket(wln) }()
		logger.Info("cairn listening on WebSocket too", "ws", wln.Addr().String(), "tls", o.WSTLS)
	}
	if o.TLSListen != "" && o.TLS != nil {
		l, err := net.Listen("tcp", o.TLSListen)
		if err != nil {
			ln.Close()
			closeNow(srv)
			return fmt.Errorf("TLS listener: %w", err)
		}
		tln = tls.NewListener(l, o.TLS)
		defer tln.Close()
		go func() { served <- srv.Serve(tln) }()
		logger.Info("cairn listening on TLS too", "stomp+ssl", tln.Addr().String())
	}

	select {
	case <-lease.Lost():
		// Fail-stop: a master that may no longer hold the journal stops at
		// once. The journal already refuses appends (its Gate); closing
		// every connection makes clients fail over.
		logger.Error("fenced: the journal lease is lost; closing every connection and stopping", "epoch", lease.Epoch(), "err", lease.Err())
		ln.Close()
		for _, l := range []net.Listener{tln, wln} {
			if l != nil {
				l.Close()
			}
		}
		closeNow(srv)
		return fmt.Errorf("%w: %v", ErrFenced, lease.Err())
	case <-n.killed:
		ln.Close()
		closeNow(srv)
		replication.Abandon(lease)
		return ErrKilled
	case err := <-served:
		if lease.Err() != nil {
			closeNow(srv)
			return fmt.Errorf("%w: %v", ErrFenced, lease.Err())
		}
		closeNow(srv)
		return fmt.Errorf("stomp listener: %w", err)
	case <-ctx.Done():
	}
	if o.HeapProfile != "" {
		if err := writeHeapProfile(o.HeapProfile); err != nil {
			logger.Warn("heap profile", "err", err)
		}
	}
	logger.Info("draining: closing connections", "cause", context.Cause(ctx))
	if err := srv.Close(context.Background()); err != nil {
		logger.Warn("drain", "err", err)
	}
	// A snapshot at the end makes the next start replay nothing.
	if res, err := b.Maintain(true); err != nil {
		logger.Warn("final snapshot", "err", err)
	} else {
		logger.Info("final snapshot", "index", res.Snapshot, "pending", res.Pending)
	}
	b.Close()
	if err := l.Close(); err != nil {
		logger.Warn("journal close", "err", err)
	}
	released = true
	if err := lease.Release(); err != nil {
		logger.Warn("release the journal lease", "err", err)
	}
	logger.Info("stopped")
	return nil
}

// closeNow closes every connection without waiting for any to drain.
func closeNow(srv *stomp.Server) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	srv.Close(ctx)
}

// acquire waits for the journal's lease, reporting what it waits for, until
// it holds it (a lease), ctx ends or Kill (nil, nil), or it fails.
// onWait runs once, when it first has to wait.
func (n *Node) acquire(ctx context.Context, be *backend, rep *replication.Reporter, onWait func()) (replication.Lease, error) {
	o := &n.opts
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-n.killed:
			cancel()
		case <-actx.Done():
		}
	}()
	var last replication.Holder
	var waitErr error
	lease, err := be.locker.Acquire(actx, func(w replication.Waiting) {
		rep.Set(replication.RoleStandby, 0, w.String())
		n.mu.Lock()
		n.detail = w.String()
		n.mu.Unlock()
		if w.Holder != last {
			last = w.Holder
			if !o.Wait {
				waitErr = fmt.Errorf("%w: %s: %s", ErrHeld, be.name, w)
				cancel()
				return
			}
			logger := n.logger
			logger.Info("standby: waiting for the journal", "data", o.Data, "holder", w.Holder.String(),
				"last_renewal_seen", w.Renewed.Round(time.Millisecond), "expires_in", w.ExpiresIn.Round(time.Millisecond))
			if onWait != nil {
				onWait()
				onWait = nil
			}
		}
	})
	if waitErr != nil {
		return nil, waitErr
	}
	stopped := func() error {
		select {
		case <-n.killed:
			return ErrKilled
		default:
		}
		n.logger.Info("standby: stopped while waiting", "cause", context.Cause(ctx))
		return nil
	}
	if err != nil {
		if ctx.Err() != nil || actx.Err() != nil {
			return nil, stopped()
		}
		return nil, err
	}
	// A stop that raced with the acquisition still stops this broker.
	if ctx.Err() != nil {
		lease.Release()
		n.logger.Info("stopped as it took over", "cause", context.Cause(ctx))
		return nil, nil
	}
	return lease, nil
}

// writeHeapProfile writes the heap's live objects (after a GC) to path.
func writeHeapProfile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	runtime.GC()
	err = pprof.WriteHeapProfile(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
