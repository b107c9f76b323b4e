// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/cairnmq/cairn/internal/netns"
)

// launchGateway runs cairn gateway in front of upstream and waits until it
// listens.
func launchGateway(t *testing.T, upstream string, args ...string) *serveProc {
	t.Helper()
	addr := freeAddr(t)
	p := launch(t, addr, append([]string{"gateway", "--listen", addr, "--upstream", upstream, "--upstream-heart-beat", "1s", "--upstream-wait", "20s"}, args...)...)
	p.waitLog(t, "cairn gateway listening", 30*time.Second)
	return p
}

// TestGatewayAcrossAMasterKill: a master and a standby on one journal, a
// gateway in front of both (ActiveMQ's failover URI), a consumer and a
// producer on the gateway. SIGKILL of the master: both stay connected to
// the gateway, every receipted message arrives, those delivered and not
// acknowledged before the kill come again marked redelivered, and none
// whose ack was confirmed comes again.
func TestGatewayAcrossAMasterKill(t *testing.T) { gatewayAcrossAMasterKill(t) }

func gatewayAcrossAMasterKill(t *testing.T) {
	data := t.TempDir()
	mAddr, sAddr := freeAddr(t), freeAddr(t)
	master := launchServeAt(t, data, mAddr, "--lease-ttl", "2s")
	master.waitLog(t, "cairn listening", 30*time.Second)
	standby := launchServeAt(t, data, sAddr, "--lease-ttl", "2s")
	standby.waitLog(t, "standby: waiting for the journal", 30*time.Second)
	statusFile := t.TempDir() + "/gateway.json"
	g := launchGateway(t, fmt.Sprintf("failover:(tcp://%s,tcp://%s)?randomize=false", mAddr, sAddr), "--status-file", statusFile)

	c, err := gostomp.Dial("tcp", g.addr, gostomp.ConnOpt.HeartBeat(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	if !strings.HasPrefix(c.Server(), "Cairn-gateway/") {
		t.Fatalf("server header %q", c.Server())
	}
	sub, err := c.Subscribe("/queue/orders", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("activemq.prefetchSize", "10"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := gostomp.Dial("tcp", g.addr, gostomp.ConnOpt.HeartBeat(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Disconnect()
	send := func(from, to int) {
		for i := from; i < to; i++ {
			if err := p.Send("/queue/orders", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
				t.Fatalf("SEND %d through the gateway: %v", i, err)
			}
		}
	}
	send(0, 50)
	acked := map[string]bool{}
	for range 20 {
		m := <-sub.C
		if m.Err != nil {
			t.Fatal(m.Err)
		}
		tx, _ := c.BeginWithError()
		tx.Ack(m)
		if err := tx.CommitWithReceipt(); err != nil {
			t.Fatal(err)
		}
		acked[string(m.Body)] = true
	}
	// Ten more are delivered to the gateway's consumer, unacknowledged.
	time.Sleep(200 * time.Millisecond)
	if err := master.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	master.cmd.Wait()
	send(50, 60) // waits for the standby to take over
	got := map[string]int{}
	redelivered := map[string]bool{}
	for len(got) < 40 {
		select {
		case m := <-sub.C:
			if m.Err != nil {
				t.Fatalf("the consumer on the gateway lost its connection: %v", m.Err)
			}
			b := string(m.Body)
			if acked[b] {
				t.Fatalf("%s came again after its ack was confirmed", b)
			}
			got[b]++
			if m.Header.Get("redelivered") == "true" {
				redelivered[b] = true
			}
			tx, _ := c.BeginWithError()
			tx.Ack(m)
			if err := tx.CommitWithReceipt(); err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("after the takeover the gateway's consumer got %d of 40:\n%s", len(got), g.log())
		}
	}
	for b, n := range got {
		if n > 1 && !redelivered[b] {
			t.Errorf("%s delivered %d times, not marked redelivered", b, n)
		}
	}
	if !strings.Contains(g.log(), "upstream connected") {
		t.Errorf("the gateway does not say it reconnected:\n%s", g.log())
	}
	// Its status: every link up, on the standby now, connected twice.
	time.Sleep(1100 * time.Millisecond) // the file is rewritten every second
	out, err := exec.Command(binary(t), "status", "--gateway", statusFile).CombinedOutput()
	if err != nil {
		t.Fatalf("cairn status --gateway: %v\n%s", err, out)
	}
	t.Logf("cairn status --gateway:\n%s", out)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n")[3:] {
		f := strings.Fields(line)
		if len(f) < 6 || f[2] != "up" || f[3] != sAddr || f[6] != "2" {
			t.Errorf("a link is not up on the new master, connected twice: %q", line)
		}
	}
}

// TestDemoTopology: the demo producer on the broker and the demo consumer
// on a gateway in front of it (what deploy/local-tier runs): the consumer
// prints what the producer sent, in order.
func TestDemoTopology(t *testing.T) {
	broker := startServe(t, t.TempDir())
	g := launchGateway(t, broker.addr)
	producer := exec.Command(binary(t), "demo", "producer", "--addr", broker.addr, "--every", "20ms")
	if err := producer.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { producer.Process.Kill(); producer.Wait() }()
	consumer := exec.Command(binary(t), "demo", "consumer", "--addr", g.addr)
	out, err := consumer.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := consumer.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { consumer.Process.Kill(); consumer.Wait() }()
	lines := bufio.NewScanner(out)
	done := make(chan error, 1)
	go func() {
		next := 0
		for lines.Scan() {
			var n int
			if _, err := fmt.Sscanf(lines.Text(), "received: demo message %d", &n); err != nil {
				done <- fmt.Errorf("consumer printed %q", lines.Text())
				return
			}
			if next != 0 && n != next {
				done <- fmt.Errorf("consumer got message %d after %d", n, next-1)
				return
			}
			if next = n + 1; n >= 5 {
				done <- nil
				return
			}
		}
		done <- fmt.Errorf("the consumer stopped: %v", lines.Err())
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the demo consumer on the gateway printed nothing in 30s; gateway log:\n%s", g.log())
	}
}

// TestGatewayKill9UnderLoad: two gateways in front of one broker, a
// consumer on each, producers on the broker. SIGKILL of one gateway: what
// its consumer had not acknowledged goes to the consumer on the other,
// marked redelivered; every receipted message is acknowledged, and none
// whose ack was confirmed comes again.
func TestGatewayKill9UnderLoad(t *testing.T) { gatewayKill9UnderLoad(t) }

func gatewayKill9UnderLoad(t *testing.T) {
	broker := startServe(t, t.TempDir())
	g1, g2 := launchGateway(t, broker.addr), launchGateway(t, broker.addr)
	const total = 2000
	acked := make(chan string, total*2)
	inDoubt := make(chan string, 1) // a COMMIT lost with its gateway: it may or may not have landed
	var redelivered sync.Map
	consume := func(addr string, stop <-chan struct{}) {
		// A prefetch under go-stomp's subscription channel (16): a receipt
		// waits behind the MESSAGEs otherwise, and go-stomp deadlocks.
		c, err := gostomp.Dial("tcp", addr, gostomp.ConnOpt.HeartBeat(0, 0))
		if err != nil {
			t.Error(err)
			return
		}
		sub, err := c.Subscribe("/queue/load", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("activemq.prefetchSize", "10"))
		if err != nil {
			t.Error(err)
			return
		}
		for {
			select {
			case <-stop:
				return
			case m, ok := <-sub.C:
				if !ok || m.Err != nil {
					t.Logf("consumer on %s ends: %v", addr, m.Err) // its gateway was killed, or worse
					return
				}
				if m.Header.Get("redelivered") == "true" {
					redelivered.Store(string(m.Body), true)
				}
				tx, _ := c.BeginWithError()
				tx.Ack(m)
				if err := tx.CommitWithReceipt(); err == nil {
					acked <- string(m.Body)
				} else {
					t.Logf("consumer on %s ends: COMMIT: %v", addr, err) // its gateway was killed
					select {
					case inDoubt <- string(m.Body):
					default:
					}
					return
				}
				time.Sleep(time.Millisecond) // slow enough to hold a prefetch when the kill comes
			}
		}
	}
	stop := make(chan struct{})
	defer close(stop)
	go consume(g1.addr, stop)
	go consume(g2.addr, stop)
	p, err := gostomp.Dial("tcp", broker.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Disconnect()
	for i := range total {
		if err := p.Send("/queue/load", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatal(err)
		}
		if i == total/2 {
			if err := g1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := map[string]int{}
	doubtful := ""
	for len(got) < total && !(doubtful != "" && len(got) == total-1 && got[doubtful] == 0) {
		select {
		case b := <-acked:
			got[b]++
		case doubtful = <-inDoubt:
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d acknowledged after the kill of a gateway; the other gateway's log:\n%s\nthe broker's:\n%s", len(got), total, g2.log(), broker.log())
		}
	}
	for b, n := range got {
		if n > 1 {
			t.Errorf("%s acknowledged %d times: its ack was confirmed, yet it came again", b, n)
		}
	}
	// The one whose COMMIT went down with the gateway either came again
	// (its ack had not landed) or is acknowledged upstream: the queue is
	// empty either way.
	c, err := gostomp.Dial("tcp", broker.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	rest, _ := c.Subscribe("/queue/load", gostomp.AckAuto)
	select {
	case m := <-rest.C:
		t.Fatalf("the queue still holds %q", m.Body)
	case <-time.After(500 * time.Millisecond):
	}
	g1.cmd.Wait()
	n := 0
	redelivered.Range(func(_, _ any) bool { n++; return true })
	t.Logf("%d messages came again, marked redelivered, on the other gateway after the kill", n)
	if n == 0 {
		t.Errorf("nothing was redelivered: the killed gateway's consumer held no unacknowledged messages?")
	}
}

// TestGatewayAcrossAFrozenMaster: the upstream master is frozen with
// SIGSTOP (its connections stay open, nothing moves): each link finds it
// within three heart-beat intervals, fails over to the standby once that
// has taken over, and the gateway's clients, still connected, get every
// receipted message. Thawed, the old master finds it lost its lease and
// exits with status 3.
func TestGatewayAcrossAFrozenMaster(t *testing.T) { gatewayAcrossAFrozenMaster(t) }

func gatewayAcrossAFrozenMaster(t *testing.T) {
	data := t.TempDir()
	mAddr, sAddr := freeAddr(t), freeAddr(t)
	master := launchServeAt(t, data, mAddr, "--lease-ttl", "2s")
	master.waitLog(t, "cairn listening", 30*time.Second)
	standby := launchServeAt(t, data, sAddr, "--lease-ttl", "2s")
	standby.waitLog(t, "standby: waiting for the journal", 30*time.Second)
	const hb = 300 * time.Millisecond
	addr := freeAddr(t)
	g := launch(t, addr, "gateway", "--listen", addr, "--upstream", mAddr+","+sAddr, "--links", "2",
		"--upstream-heart-beat", hb.String(), "--canary-every", hb.String(), "--upstream-wait", "20s")
	g.waitLog(t, "cairn gateway listening", 30*time.Second)

	f := startFlow(t, g, "/queue/frozen")
	send, take := func(from, to int) { f.send(f.dial(), from, to) }, f.take
	send(0, 10)
	take(10)
	if err := master.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	defer master.cmd.Process.Signal(syscall.SIGCONT)
	for strings.Count(g.log(), "upstream connection lost") < 2 {
		if time.Since(frozen) > 10*time.Second {
			t.Fatalf("the links did not find the frozen master within 10s:\n%s", g.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	found := time.Since(frozen)
	t.Logf("both links found the frozen master %s after SIGSTOP (heart-beats every %s)", found.Round(time.Millisecond), hb)
	if found > 3*hb+time.Second {
		t.Errorf("found after %s, want within three heart-beat intervals (%s) and a second's slack", found, 3*hb)
	}
	send(10, 20) // waits for the standby's takeover
	take(20)
	master.cmd.Process.Signal(syscall.SIGCONT)
	if err := master.cmd.Wait(); err == nil || master.cmd.ProcessState.ExitCode() != exitFenced {
		t.Fatalf("the thawed master ended with %v, want exit status %d", err, exitFenced)
	}
}

// TestGatewayAcrossAPartition: the upstream broker runs on a host of its
// own (a network namespace joined to the gateway's by a veth pair), and the
// link between them stops carrying traffic with every connection left
// open. Each gateway link finds it within three heart-beat intervals (and
// the gateway's /readyz says not ready until they are back); a
// SEND meanwhile gets ERROR upstream-unavailable after --upstream-wait,
// never a RECEIPT and never an endless wait; the consumer stays connected,
// and once the link carries traffic again the gateway reconnects and every
// receipted message arrives.
func TestGatewayAcrossAPartition(t *testing.T) { gatewayAcrossAPartition(t) }

func gatewayAcrossAPartition(t *testing.T) {
	nt := netns.New(t)
	upAddr := net.JoinHostPort(nt.Remote, "61613")
	up := launchCmd(t, upAddr, nt.Command(binary(t), "serve", "--listen", upAddr, "--data", t.TempDir(), "--allow-anonymous"))
	up.waitLog(t, "cairn listening", 30*time.Second)
	const hb = 300 * time.Millisecond
	addr, web := freeAddr(t), freeAddr(t)
	g := launch(t, addr, "gateway", "--listen", addr, "--upstream", upAddr, "--links", "2", "--http", web,
		"--upstream-heart-beat", hb.String(), "--canary-every", hb.String(), "--upstream-wait", "3s")
	g.waitLog(t, "cairn gateway listening", 30*time.Second)
	ready := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			code, body := get(t, "http://"+web+"/readyz")
			if code == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the gateway's /readyz: %d %q, want %d", code, body, want)
			}
		}
	}
	ready(200)
	f := startFlow(t, g, "/queue/parted")
	dial, send, take := f.dial, f.send, f.take
	send(dial(), 0, 10)
	take(10)

	nt.Cut()
	cut := time.Now()
	for strings.Count(g.log(), "upstream connection lost") < 2 {
		if time.Since(cut) > 10*time.Second {
			t.Fatalf("the links did not find the partition within 10s:\n%s", g.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	found := time.Since(cut)
	ready(503) // a link is down
	t.Logf("both links found the partition %s after it began (heart-beats every %s)", found.Round(time.Millisecond), hb)
	if found > 3*hb+time.Second {
		t.Errorf("found after %s, want within three heart-beat intervals (%s) and a second's slack", found, 3*hb)
	}
	p := dial()
	start := time.Now()
	err := p.Send("/queue/parted", "text/plain", []byte("during"), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true"))
	if err == nil || !strings.Contains(err.Error(), "no upstream broker answered") {
		t.Fatalf("a SEND during the partition: %v, want ERROR upstream-unavailable", err)
	}
	t.Logf("a SEND during the partition was refused after %s: %v", time.Since(start).Round(time.Millisecond), err)

	nt.Heal()
	send(dial(), 10, 20)
	take(20)
	ready(200)
	if f.got["during"] {
		t.Error("the SEND refused during the partition was delivered")
	}
}

// flow is a consumer on a gateway acking what a queue gets, and producers
// sending to it with receipts: what fault tests of the gateway check.
type flow struct {
	t    *testing.T
	g    *serveProc
	dest string
	c    *gostomp.Conn
	sub  *gostomp.Subscription
	got  map[string]bool
}

// startFlow subscribes a consumer on g to dest (client-individual, a
// prefetch of 10).
func startFlow(t *testing.T, g *serveProc, dest string) *flow {
	t.Helper()
	f := &flow{t: t, g: g, dest: dest, got: map[string]bool{}}
	f.c = f.dial()
	var err error
	if f.sub, err = f.c.Subscribe(dest, gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("activemq.prefetchSize", "10")); err != nil {
		t.Fatal(err)
	}
	return f
}

// dial connects to the gateway, closed at the test's end.
func (f *flow) dial() *gostomp.Conn {
	f.t.Helper()
	c, err := gostomp.Dial("tcp", f.g.addr, gostomp.ConnOpt.HeartBeat(0, 0))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Disconnect() })
	return c
}

// send sends messages from to to-1 on p, each persistent with a receipt.
func (f *flow) send(p *gostomp.Conn, from, to int) {
	f.t.Helper()
	for i := from; i < to; i++ {
		if err := p.Send(f.dest, "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
			f.t.Fatalf("SEND %d through the gateway: %v", i, err)
		}
	}
}

// take acks deliveries until n distinct messages have come; the consumer
// must stay connected.
func (f *flow) take(n int) {
	f.t.Helper()
	for len(f.got) < n {
		select {
		case m := <-f.sub.C:
			if m.Err != nil {
				f.t.Fatalf("the consumer on the gateway lost its connection: %v", m.Err)
			}
			f.got[string(m.Body)] = true
			if err := f.c.Ack(m); err != nil {
				f.t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			f.t.Fatalf("the gateway's consumer got %d of %d:\n%s", len(f.got), n, f.g.log())
		}
	}
}
