// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
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
func TestGatewayAcrossAMasterKill(t *testing.T) {
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
func TestGatewayKill9UnderLoad(t *testing.T) {
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
