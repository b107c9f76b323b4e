// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// binary builds cairn once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cairn-bin")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "cairn")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serveProc is a running `cairn serve`.
type serveProc struct {
	cmd  *exec.Cmd
	addr string
	logs *strings.Builder
	mu   *sync.Mutex
}

// startServe runs cairn serve on data and waits until it accepts STOMP.
func startServe(t *testing.T, data string, args ...string) *serveProc {
	t.Helper()
	p := launchServe(t, data, args...)
	p.waitLog(t, "cairn listening", 30*time.Second)
	return p
}

// launchServe runs cairn serve on data without waiting for anything.
func launchServe(t *testing.T, data string, args ...string) *serveProc {
	t.Helper()
	addr := freeAddr(t)
	return launch(t, addr, append([]string{"serve", "--listen", addr, "--data", data}, args...)...)
}

// launch runs cairn with args, listening on addr, collecting its log; the
// test's cleanup kills it if it still runs.
func launch(t *testing.T, addr string, args ...string) *serveProc {
	t.Helper()
	return launchCmd(t, addr, exec.Command(binary(t), args...))
}

// launchCmd is launch of a command made elsewhere (cairn in a network
// namespace, say).
func launchCmd(t *testing.T, addr string, cmd *exec.Cmd) *serveProc {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, addr: addr, logs: &strings.Builder{}, mu: &sync.Mutex{}}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGCONT)
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return p
}

// waitLog waits until the process has logged a line containing s.
func (p *serveProc) waitLog(t *testing.T, s string, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); !strings.Contains(p.log(), s); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("cairn serve did not log %q within %s:\n%s", s, d, p.log())
		}
	}
}

func (p *serveProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// TestServeKill9 runs a real cairn serve under load, kills it with SIGKILL,
// restarts it on the same journal and checks the durability contract:
// every receipted persistent message is there once unless its ack was
// confirmed; nothing whose ack was confirmed comes back; whatever was
// delivered before the crash and comes back is marked redelivered.
func TestServeKill9(t *testing.T) {
	data := t.TempDir()
	p := startServe(t, data)

	var mu sync.Mutex
	receipted := map[string]bool{}
	acked := map[string]bool{}
	acking := map[string]bool{} // ack sent, its receipt maybe not: it may or may not have happened
	received := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var conns []net.Conn // closed after the kill, so clients waiting on receipts give up at once
	dial := func() (*gostomp.Conn, error) {
		nc, err := net.Dial("tcp", p.addr)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		conns = append(conns, nc)
		mu.Unlock()
		return gostomp.Connect(nc, gostomp.ConnOpt.RcvReceiptTimeout(3*time.Second), gostomp.ConnOpt.MsgSendTimeout(3*time.Second))
	}
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial()
			if err != nil {
				return
			}
			for i := 0; i < 100000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf("p%d-%d", w, i)
				if err := c.Send("/queue/crash", "text/plain", []byte(body), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
					return
				}
				mu.Lock()
				receipted[body] = true
				mu.Unlock()
			}
		}()
	}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial()
			if err != nil {
				return
			}
			sub, err := c.Subscribe("/queue/crash", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("activemq.prefetchSize", "200"))
			if err != nil {
				return
			}
			for n := 0; ; n++ {
				var m *gostomp.Message
				select {
				case <-stop:
					return
				case m = <-sub.C:
				}
				if m == nil || m.Err != nil {
					return
				}
				body := string(m.Body)
				mu.Lock()
				received[body] = true
				mu.Unlock()
				if n%10 == 9 {
					continue // leave some delivered and unacked
				}
				// An ACK inside a transaction committed with a receipt: when
				// the receipt comes, the ack is durable.
				mu.Lock()
				acking[body] = true
				mu.Unlock()
				tx, err := c.BeginWithError()
				if err != nil {
					return
				}
				if tx.Ack(m) != nil || tx.CommitWithReceipt() != nil {
					return
				}
				mu.Lock()
				acked[body] = true
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	close(stop)
	mu.Lock()
	for _, nc := range conns {
		nc.Close()
	}
	mu.Unlock()
	// go-stomp clients can sit on a receipt well past its timeout once the
	// server is gone; give them a moment, then take what they recorded.
	// Whatever they record later is not checked, which only makes the
	// checks below laxer (an ack is in acking before it is sent).
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(3 * time.Second):
	}
	mu.Lock()
	rcpt, ackd, ackg, got := maps.Clone(receipted), maps.Clone(acked), maps.Clone(acking), maps.Clone(received)
	mu.Unlock()
	if len(rcpt) < 50 || len(ackd) < 20 {
		t.Fatalf("too little load before the kill: %d receipted sends, %d confirmed acks\n%s", len(rcpt), len(ackd), p.log())
	}

	p2 := startServe(t, data)
	c, err := gostomp.Dial("tcp", p2.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	sub, err := c.Subscribe("/queue/crash", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	after := map[string]int{}
	drain := time.Now()
	for {
		var m *gostomp.Message
		select {
		case m = <-sub.C:
		case <-time.After(time.Second):
		}
		if m == nil {
			break
		}
		if m.Err != nil {
			t.Fatal(m.Err)
		}
		body := string(m.Body)
		after[body]++
		if after[body] > 1 {
			t.Fatalf("%s delivered twice after the restart", body)
		}
		if ackd[body] {
			t.Fatalf("%s came back although its ack was confirmed", body)
		}
		if got[body] && m.Header.Get("redelivered") != "true" {
			t.Fatalf("%s was delivered before the crash and came back without redelivered:true", body)
		}
	}
	lost := 0
	for body := range rcpt {
		if !ackd[body] && !ackg[body] && after[body] == 0 {
			lost++
			if lost < 5 {
				t.Errorf("receipted message %s is gone", body)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d receipted messages lost", lost)
	}
	t.Logf("before the kill: %d receipted sends, %d delivered, %d acks confirmed; after: %d delivered in %v", len(rcpt), len(got), len(ackd), len(after), time.Since(drain))
}

// TestServeConfigAndSIGTERM: settings come from a YAML file (a misspelt key
// is refused), and SIGTERM drains, snapshots and exits 0.
func TestServeConfigAndSIGTERM(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("lisen: 127.0.0.1:1\n"), 0o644)
	out, err := exec.Command(binary(t), "serve", "--config", bad).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), `unknown setting "lisen"`) {
		t.Fatalf("bad config: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	good := filepath.Join(dir, "cairn.yaml")
	os.WriteFile(good, []byte(fmt.Sprintf("listen: %s\ndata: %s\nsync: interval\n", addr, filepath.Join(dir, "data"))), 0o644)
	cmd := exec.Command(binary(t), "serve", "--config", good)
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var c *gostomp.Conn
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err = gostomp.Dial("tcp", addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listener on %s from the config: %v", addr, err)
		}
	}
	if err := c.Send("/queue/cfg", "text/plain", []byte("x"), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit 20s after SIGTERM\n%s", logs.String())
	}
	for _, want := range []string{"sync=interval", "draining", "final snapshot", "pending=1", "stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// TestServeProfiles: --cpu-profile and --trace write a CPU profile and an
// execution trace that are complete once a SIGTERM has stopped the broker.
func TestServeProfiles(t *testing.T) {
	dir := t.TempDir()
	prof, tr := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "exec.trace")
	p := startServe(t, filepath.Join(dir, "data"), "--cpu-profile", prof, "--trace", tr)
	c, err := gostomp.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if err := c.Send("/queue/prof", "text/plain", []byte("x"), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatal(err)
		}
	}
	c.Disconnect()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v\n%s", err, p.log())
	}
	b, err := os.ReadFile(prof)
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b { // a gzipped profile.proto
		t.Fatalf("CPU profile: %v, %d bytes", err, len(b))
	}
	b, err = os.ReadFile(tr)
	if err != nil || !bytes.HasPrefix(b, []byte("go 1.")) || len(b) < 1000 {
		t.Fatalf("execution trace: %v, %d bytes, starts %q", err, len(b), b[:min(len(b), 16)])
	}
	// The trace is whole: go tool trace can parse it to the end.
	out, err := exec.Command("go", "tool", "trace", "-d=parsed", tr).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("ring).write")) && !bytes.Contains(out, []byte("wal.(*Log)")) {
		t.Fatalf("go tool trace: %v\n%.2000s", err, out)
	}
}
