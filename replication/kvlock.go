// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"
)

// KVOptions configures a KVLocker.
type KVOptions struct {
	// Bucket is the key-value bucket holding leases (default "CAIRN_LEASES").
	Bucket string
	// Key names the journal the lease is for: its stream's name. Required.
	Key string
	// TTL is the lease's length when this locker creates the bucket (default
	// 5s). The bucket's max age is the TTL every holder uses: an entry not
	// renewed within it is removed by the server, and a holder stops writing
	// once it has gone that long without a renewal.
	TTL time.Duration
	// Replicas is the bucket's replication factor when created (default 1;
	// 3 on a 3-node cluster).
	Replicas int
	// ID names this broker in the lease (default NewID()).
	ID string
	// Poll is how often a standby tries to take the lease (default 100ms).
	Poll time.Duration
	// Timeout bounds each request to the server (default 2s).
	Timeout time.Duration
	// Logger receives renewal trouble and loss (default slog.Default()).
	Logger *slog.Logger
}

// KVLocker elects a master among brokers that share only a NATS cluster: the
// lease is an entry in a JetStream key-value bucket whose max age is the
// TTL. A standby takes it with Create, which succeeds only when there is no
// live entry; the master renews it with Update against the revision it last
// wrote, so a master that lost it finds out on its next renewal; the server
// removes an entry nobody renews, so a dead master's lease lapses by itself.
// The master stops writing once a TTL has passed since the start of its
// last successful renewal (the server expires the entry at least a TTL
// after that renewal landed, so never before), and the JetStream journal's
// own fencing (Fence, then expected-last-sequence on every append) refuses
// a deposed master's appends at the server even if it has not noticed.
type KVLocker struct {
	nc   *nats.Conn
	js   njs.JetStream
	opts KVOptions
}

// NewKVLocker returns a Locker on the NATS connection nc.
func NewKVLocker(nc *nats.Conn, opts KVOptions) (*KVLocker, error) {
	if opts.Key == "" {
		return nil, errors.New("replication: KVOptions.Key is required")
	}
	if opts.Bucket == "" {
		opts.Bucket = "CAIRN_LEASES"
	}
	if opts.TTL <= 0 {
		opts.TTL = 5 * time.Second
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.ID == "" {
		opts.ID = NewID()
	}
	if opts.Poll <= 0 {
		opts.Poll = 100 * time.Millisecond
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	js, err := njs.New(nc)
	if err != nil {
		return nil, fmt.Errorf("replication: %w", err)
	}
	return &KVLocker{nc: nc, js: js, opts: opts}, nil
}

// bucket opens the lease bucket, creating it with TTL if it is not there,
// and returns it with its TTL.
func (k *KVLocker) bucket(ctx context.Context) (njs.KeyValue, time.Duration, error) {
	rctx, cancel := context.WithTimeout(ctx, k.opts.Timeout)
	defer cancel()
	kv, err := k.js.KeyValue(rctx, k.opts.Bucket)
	if errors.Is(err, njs.ErrBucketNotFound) {
		kv, err = k.js.CreateKeyValue(rctx, njs.KeyValueConfig{Bucket: k.opts.Bucket, TTL: k.opts.TTL,
			History: 1, Replicas: k.opts.Replicas, Description: "Cairn journal leases"})
		if errors.Is(err, njs.ErrBucketExists) {
			kv, err = k.js.KeyValue(rctx, k.opts.Bucket)
		}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("replication: lease bucket %s: %w", k.opts.Bucket, err)
	}
	st, err := kv.Status(rctx)
	if err != nil {
		return nil, 0, fmt.Errorf("replication: lease bucket %s: %w", k.opts.Bucket, err)
	}
	if st.TTL() <= 0 {
		return nil, 0, fmt.Errorf("replication: lease bucket %s has no TTL: a dead master's lease would never lapse", k.opts.Bucket)
	}
	return kv, st.TTL(), nil
}

func (k *KVLocker) holder(epoch uint64) []byte {
	host, _ := os.Hostname()
	return []byte(LeaseInfo{Holder: Holder{ID: k.opts.ID, Host: host, PID: os.Getpid(), Epoch: epoch}, TTL: k.opts.TTL,
		Renewed: time.Now()}.encode())
}

// Acquire implements Locker.
func (k *KVLocker) Acquire(ctx context.Context, wait func(Waiting)) (Lease, error) {
	start := time.Now()
	var (
		reported Holder
		lastRep  time.Time
		seenRev  uint64
		seenAt   time.Time
	)
	for {
		kv, ttl, err := k.bucket(ctx)
		if err == nil {
			t0 := time.Now()
			rctx, cancel := context.WithTimeout(ctx, k.opts.Timeout)
			rev, cerr := kv.Create(rctx, k.opts.Key, k.holder(0))
			cancel()
			switch {
			case cerr == nil:
				l := &kvLease{k: k, kv: kv, rev: rev}
				l.start(ttl, t0, k.opts.Logger)
				l.epoch = rev
				l.took = Acquisition{How: "free", Waited: time.Since(start), Previous: reported}
				switch {
				case reported.ID == "":
				case !seenAt.IsZero() && t0.Sub(seenAt) < ttl:
					// The entry went sooner than it can expire: deleted,
					// which is what Release does.
					l.took.How = "released"
				default:
					l.took.How = "expired"
				}
				// Write the epoch into the entry before anyone reads it.
				if err := l.renew(); err != nil {
					return nil, err
				}
				go l.keepAlive(l.renew)
				return l, nil
			case errors.Is(cerr, njs.ErrKeyExists):
				gctx, cancel := context.WithTimeout(ctx, k.opts.Timeout)
				e, gerr := kv.Get(gctx, k.opts.Key)
				cancel()
				if gerr == nil {
					info, _ := parseLease(e.Value())
					if info.Epoch == 0 {
						info.Epoch = e.Revision()
					}
					now := time.Now()
					if e.Revision() != seenRev {
						seenRev, seenAt = e.Revision(), now
					}
					if info.Holder != reported || now.Sub(lastRep) >= time.Second {
						reported, lastRep = info.Holder, now
						if wait != nil {
							wait(Waiting{Holder: info.Holder, Renewed: now.Sub(seenAt), ExpiresIn: ttl - now.Sub(seenAt)})
						}
					}
				}
			default:
				k.opts.Logger.Warn("replication: cannot reach the lease bucket; retrying", "err", cerr)
			}
		} else {
			k.opts.Logger.Warn("replication: lease bucket", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(k.opts.Poll):
		}
	}
}

// kvLease is a lease held through a KVLocker.
type kvLease struct {
	leaseClock
	relOnce sync.Once
	k       *KVLocker
	kv      njs.KeyValue
	rev     uint64 // the revision last written; owned by keepAlive
}

// renew rewrites the entry against the revision last written.
func (l *kvLease) renew() error {
	t0 := l.now()
	if err := l.Valid(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.k.opts.Timeout)
	defer cancel()
	rev, err := l.kv.Update(ctx, l.k.opts.Key, l.k.holder(l.epoch), l.rev)
	if err != nil {
		// A lost reply to an update that landed leaves us a revision behind:
		// the entry still names us if so.
		e, gerr := l.kv.Get(ctx, l.k.opts.Key)
		switch {
		case errors.Is(gerr, njs.ErrKeyNotFound):
			return l.lose(fmt.Errorf("%w: the lease entry is gone (expired or deleted)", ErrLost))
		case gerr != nil:
			l.k.opts.Logger.Warn("replication: cannot renew the lease; will retry until it expires", "err", err)
			return nil
		}
		info, _ := parseLease(e.Value())
		if info.ID != l.k.opts.ID || e.Revision() < l.epoch {
			return l.lose(fmt.Errorf("%w: taken over by %s", ErrLost, info.Holder))
		}
		l.rev = e.Revision()
		return nil // renewed by the update whose reply was lost; the next tick renews again
	}
	l.rev = rev
	l.renewed(t0)
	return nil
}

// Release deletes the entry so that a standby takes over at once.
func (l *kvLease) Release() error {
	var err error
	l.relOnce.Do(func() {
		l.released.Store(true)
		l.halt()
		if l.Err() == nil {
			ctx, cancel := context.WithTimeout(context.Background(), l.k.opts.Timeout)
			defer cancel()
			err = l.kv.Delete(ctx, l.k.opts.Key, njs.LastRevision(l.rev))
		}
	})
	return err
}

func (l *kvLease) abandon() {
	l.relOnce.Do(func() {
		l.halt()
		l.lose(fmt.Errorf("%w: abandoned (the holder was killed)", ErrLost))
	})
}

// ReadKVLease reads the lease entry of key in bucket, for status. It asks
// the bucket's stream leader: a KV Get may be answered by any replica
// (buckets allow direct gets), and one that lags would show a takeover's
// previous holder, or no holder at all.
func ReadKVLease(ctx context.Context, nc *nats.Conn, bucket, key string) (LeaseInfo, uint64, error) {
	js, err := nc.JetStream()
	if err != nil {
		return LeaseInfo{}, 0, err
	}
	m, err := js.GetLastMsg("KV_"+bucket, "$KV."+bucket+"."+key, nats.Context(ctx)) // not a direct get
	switch {
	case errors.Is(err, nats.ErrMsgNotFound):
		return LeaseInfo{}, 0, nil
	case errors.Is(err, nats.ErrStreamNotFound):
		return LeaseInfo{}, 0, fmt.Errorf("%w: %s", njs.ErrBucketNotFound, bucket)
	case err != nil:
		return LeaseInfo{}, 0, err
	}
	if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
		return LeaseInfo{}, 0, nil // released
	}
	info, err := parseLease(m.Data)
	return info, m.Sequence, err
}
