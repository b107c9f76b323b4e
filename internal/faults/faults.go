// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package faults drives a real `cairn serve` process under receipted load
// from several clients while it injects faults on a schedule: kill -9 and a
// restart, SIGSTOP and SIGCONT, a full disk that later frees up, a flood of
// bare sockets, and a consumer that stops reading. It records the outcome
// of every operation and checks the history at the end:
//
//   - every SEND whose RECEIPT came back is delivered;
//   - no message whose ACK was confirmed (a receipted COMMIT) is delivered
//     again;
//   - every repeated delivery carries redelivered:true;
//   - the journal's disk use and the broker's RSS stay within the bounds
//     given.
//
// It owns processes it starts and ends only those, by PID.
package faults

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/cairnmq/cairn/gateways/stompclient"
)

// Kind is a fault.
type Kind string

// The faults.
const (
	Kill9    Kind = "kill-9"      // SIGKILL the broker, start it again on the same data
	Stop     Kind = "sigstop"     // SIGSTOP the broker for For, then SIGCONT
	FullDisk Kind = "full-disk"   // fill the data directory's device for For, then free it (Options.Disk)
	Flood    Kind = "flood"       // open Count bare sockets, hold them For
	Stall    Kind = "slow-reader" // a consumer with a large prefetch that reads nothing for For
)

// Fault is one scheduled fault.
type Fault struct {
	At    time.Duration // after the load starts
	Kind  Kind
	For   time.Duration
	Count int // Flood: sockets
}

// Options configure a run.
type Options struct {
	Binary string   // the cairn binary
	Data   string   // the broker's data directory
	Disk   string   // a directory on the same size-limited device as Data, for FullDisk's filler ("" disables FullDisk)
	Args   []string // more serve flags
	// Duration of the load; the faults fall inside it. Then the consumers
	// drain what is left, for at most Drain.
	Duration, Drain time.Duration
	Producers       int
	Consumers       int
	Size            int // message body bytes (at least 32)
	Rate            int // SENDs a second per producer, at most (0: as fast as receipts come)
	Faults          []Fault
	// Bounds checked while it runs (0: not checked): the broker's RSS, and
	// the journal's disk use less 2 × the most bytes that were pending at
	// once (SENDs receipted and not yet acknowledged, at Size plus 256 bytes
	// each), which is the fixed part of the journal's bound.
	MaxRSS, JournalOverhead int64
	Logger                  *slog.Logger
}

// Report is what a run found.
type Report struct {
	Sent, Receipted, Delivered, Acked int
	Redelivered                       int
	Faults                            []string // what was injected, when
	PeakRSS, PeakJournal              int64
	PeakPending                       int64 // bytes receipted and not acknowledged, at most
	// Events counts the broker's log lines that show a fault was felt (a
	// full disk, the journal reopening, space coming back, fencing).
	Events     map[string]int
	Violations []string // each a broken promise; empty if none
}

// Err is nil if the run kept every promise.
func (r *Report) Err() error {
	if len(r.Violations) == 0 {
		return nil
	}
	n := min(len(r.Violations), 10)
	return fmt.Errorf("%d violations, the first %d: %s", len(r.Violations), n, strings.Join(r.Violations[:n], "; "))
}

// broker is the cairn serve process the run owns.
type broker struct {
	o      Options
	addr   string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	logs   strings.Builder
}

// alive reports whether the broker process is still running.
func (b *broker) alive() bool {
	b.mu.Lock()
	ch := b.exited
	b.mu.Unlock()
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

func (b *broker) start(ctx context.Context) error {
	args := append([]string{"serve", "--listen", b.addr, "--data", b.o.Data}, b.o.Args...)
	cmd := exec.Command(b.o.Binary, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	b.mu.Lock()
	b.exited = exited
	b.mu.Unlock()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			b.mu.Lock()
			b.logs.WriteString(sc.Text() + "\n")
			b.mu.Unlock()
			if strings.Contains(sc.Text(), "cairn listening") {
				once.Do(func() { close(ready) })
			}
		}
		cmd.Wait()
		close(exited)
	}()
	b.mu.Lock()
	b.cmd = cmd
	b.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("cairn serve did not listen within 30s:\n%s", b.log())
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *broker) pid() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil || b.cmd.Process == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

func (b *broker) signal(s syscall.Signal) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cmd.Process.Signal(s)
}

func (b *broker) kill() {
	b.mu.Lock()
	cmd, exited := b.cmd, b.exited
	b.mu.Unlock()
	cmd.Process.Signal(syscall.SIGCONT)
	cmd.Process.Kill()
	<-exited
}

func (b *broker) log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.logs.String()
}

// survived checks, a second after a fault, that the broker is still up; a
// broker that stopped by itself is a violation, and is started again so
// that the run goes on.
func (b *broker) survived(ctx context.Context, h *history, what string) error {
	time.Sleep(time.Second)
	if b.alive() {
		return nil
	}
	h.mu.Lock()
	h.violate("the broker exited after %s:\n%s", what, lastLines(b.log(), 5))
	h.mu.Unlock()
	return b.start(ctx)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// history is every client operation's outcome.
type history struct {
	mu         sync.Mutex
	sent       int
	receipted  map[string]bool
	acked      map[string]bool // ACKs confirmed by a receipted COMMIT
	seen       map[string]int
	redeliv    int
	violations []string
}

func (h *history) violate(format string, args ...any) {
	h.violations = append(h.violations, fmt.Sprintf(format, args...))
}

// Run runs the load and the faults, and checks the history.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Size = max(o.Size, 32)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	b := &broker{o: o, addr: addr}
	if err := b.start(ctx); err != nil {
		return nil, err
	}
	defer b.kill()

	rep := &Report{}
	h := &history{receipted: map[string]bool{}, acked: map[string]bool{}, seen: map[string]int{}}
	copts := stompclient.Options{Addrs: []string{addr}, Logger: o.Logger, ReceiptTimeout: 3 * time.Second,
		HeartBeat: time.Second, RetryMax: 200 * time.Millisecond}
	loadCtx, stopLoad := context.WithTimeout(ctx, o.Duration)
	defer stopLoad()
	var wg sync.WaitGroup
	pad := strings.Repeat("x", o.Size)
	for p := range o.Producers {
		wg.Go(func() {
			c, err := stompclient.Dial(ctx, copts)
			if err != nil {
				return
			}
			defer c.Close()
			var tick <-chan time.Time
			if o.Rate > 0 {
				t := time.NewTicker(time.Second / time.Duration(o.Rate))
				defer t.Stop()
				tick = t.C
			}
			for i := 0; loadCtx.Err() == nil; i++ {
				if tick != nil {
					select {
					case <-tick:
					case <-loadCtx.Done():
						return
					}
				}
				id := fmt.Sprintf("p%d-%d", p, i)
				h.mu.Lock()
				h.sent++
				h.mu.Unlock()
				sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				err := c.Send(sctx, "/queue/faults", []byte(id+" "+pad[:o.Size-len(id)-1]), "persistent", "true")
				cancel()
				if err == nil {
					h.mu.Lock()
					h.receipted[id] = true
					h.mu.Unlock()
				}
			}
		})
	}
	consumersDone := make(chan struct{})
	var cwg sync.WaitGroup
	for range o.Consumers {
		cwg.Go(func() { consume(ctx, copts, h, consumersDone) })
	}

	// Samplers: RSS and journal size.
	sampleDone := make(chan struct{})
	var swg sync.WaitGroup
	overJournal := false // reported once
	swg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sampleDone:
				return
			case <-t.C:
			}
			if rss := rssOf(b.pid()); rss > rep.PeakRSS {
				rep.PeakRSS = rss
			}
			h.mu.Lock()
			pending := int64(len(h.receipted)-len(h.acked)) * int64(o.Size+256)
			h.mu.Unlock()
			rep.PeakPending = max(rep.PeakPending, pending)
			j := journalBytes(o.Data)
			rep.PeakJournal = max(rep.PeakJournal, j)
			if o.JournalOverhead > 0 && j > 2*rep.PeakPending+o.JournalOverhead && !overJournal {
				overJournal = true
				h.mu.Lock()
				h.violate("the journal held %d MiB with at most %d MiB pending, over 2 × pending + %d MiB",
					j>>20, rep.PeakPending>>20, o.JournalOverhead>>20)
				h.mu.Unlock()
			}
		}
	})

	start := time.Now()
	for _, f := range o.Faults {
		if d := time.Until(start.Add(f.At)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return rep, ctx.Err()
			}
		}
		what, err := inject(ctx, b, o, f)
		rep.Faults = append(rep.Faults, fmt.Sprintf("%.1fs %s", time.Since(start).Seconds(), what))
		if err != nil {
			return rep, fmt.Errorf("%s: %w\n%s", what, err, b.log())
		}
		if err := b.survived(ctx, h, what); err != nil {
			return rep, err
		}
	}
	<-loadCtx.Done()
	if err := b.survived(ctx, h, "the load"); err != nil {
		return rep, err
	}
	wg.Wait() // producers stop at the end of the load

	// Drain: every receipted message must arrive.
	deadline := time.Now().Add(o.Drain)
	for {
		h.mu.Lock()
		missing := 0
		for id := range h.receipted {
			if h.seen[id] == 0 {
				missing++
			}
		}
		h.mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			h.mu.Lock()
			h.violate("%d receipted messages not delivered within %v of the load's end", missing, o.Drain)
			h.mu.Unlock()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(consumersDone)
	cwg.Wait()
	close(sampleDone)
	swg.Wait()

	h.mu.Lock()
	defer h.mu.Unlock()
	rep.Sent, rep.Receipted, rep.Acked, rep.Redelivered = h.sent, len(h.receipted), len(h.acked), h.redeliv
	for _, n := range h.seen {
		rep.Delivered += n
	}
	if o.MaxRSS > 0 && rep.PeakRSS > o.MaxRSS {
		h.violate("peak RSS %d MiB, over the %d MiB bound", rep.PeakRSS>>20, o.MaxRSS>>20)
	}
	if strings.Contains(b.log(), "panic") {
		h.violate("the broker panicked")
	}
	rep.Events = map[string]int{}
	for _, ev := range []string{"journal: the disk is full", "journal: reopened after the disk was full",
		"journal: space is back", "fenced", "the disk is full at open"} {
		if n := strings.Count(b.log(), ev); n > 0 {
			rep.Events[ev] = n
		}
	}
	rep.Violations = h.violations
	return rep, nil
}

// consume receives from /queue/faults and acknowledges each message with a
// receipted COMMIT, recording what it saw.
func consume(ctx context.Context, copts stompclient.Options, h *history, done <-chan struct{}) {
	c, err := stompclient.Dial(ctx, copts)
	if err != nil {
		return
	}
	defer c.Close()
	sub, err := c.Subscribe("/queue/faults", gostomp.AckClientIndividual, "activemq.prefetchSize", "50")
	if err != nil {
		return
	}
	for {
		var m *gostomp.Message
		select {
		case m = <-sub.C:
		case <-done:
			return
		}
		if m == nil {
			return
		}
		id, _, _ := strings.Cut(string(m.Body), " ")
		h.mu.Lock()
		if h.acked[id] {
			h.violate("%s delivered again after its ack was confirmed", id)
		}
		if h.seen[id] > 0 {
			if m.Header.Get("redelivered") != "true" {
				h.violate("%s delivered again without redelivered:true", id)
			}
			h.redeliv++
		}
		h.seen[id]++
		h.mu.Unlock()
		if err := sub.AckWait(m); err == nil {
			h.mu.Lock()
			h.acked[id] = true
			h.mu.Unlock()
		}
	}
}

// inject carries out one fault.
func inject(ctx context.Context, b *broker, o Options, f Fault) (string, error) {
	switch f.Kind {
	case Kill9:
		b.kill()
		return "kill -9 and restart", b.start(ctx)
	case Stop:
		if err := b.signal(syscall.SIGSTOP); err != nil {
			return "SIGSTOP", err
		}
		time.Sleep(f.For)
		return fmt.Sprintf("SIGSTOP for %v", f.For), b.signal(syscall.SIGCONT)
	case FullDisk:
		if o.Disk == "" {
			return "full disk (skipped: no size-limited device)", nil
		}
		filler := filepath.Join(o.Disk, "filler")
		err := fill(filler)
		time.Sleep(f.For)
		os.Remove(filler)
		return fmt.Sprintf("full disk for %v", f.For), err
	case Flood:
		var conns []net.Conn
		for range f.Count {
			c, err := net.DialTimeout("tcp", b.addr, time.Second)
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		time.Sleep(f.For)
		for _, c := range conns {
			c.Close()
		}
		return fmt.Sprintf("flood of %d bare sockets for %v", len(conns), f.For), nil
	case Stall:
		c, err := net.Dial("tcp", b.addr)
		if err != nil {
			return "slow reader", err
		}
		c.(*net.TCPConn).SetReadBuffer(4096)
		fmt.Fprint(c, "CONNECT\naccept-version:1.2\nhost:/\n\n\x00SUBSCRIBE\ndestination:/queue/faults\nid:0\nack:client-individual\nactivemq.prefetchSize:100000\n\n\x00")
		time.Sleep(f.For)
		c.Close() // what it held goes back, redelivered
		return fmt.Sprintf("a consumer that read nothing for %v", f.For), nil
	}
	return string(f.Kind), errors.New("unknown fault")
}

// fill writes a file until the device is full to the last block: in
// chunks of 1 MiB, then smaller ones down to a byte.
func fill(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	written := int64(0)
	for chunk := len(buf); chunk >= 1; chunk /= 4 {
		for written < 16<<30 {
			n, err := f.Write(buf[:chunk])
			written += int64(n)
			if err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					return err
				}
				break
			}
		}
	}
	if written >= 16<<30 {
		return errors.New("the device did not fill in 16 GiB")
	}
	return nil
}

// rssOf is a process's resident set in bytes (0 if unknown).
func rssOf(pid int) int64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// journalBytes is what the data directory holds, less the fixed-size ring
// and reserve.
func journalBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "RING" || d.Name() == "RESERVE" {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += fi.Size()
		}
		return nil
	})
	return n
}
