// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHealthAndMetrics: a master and a standby with --http. The standby's
// /readyz says not ready and why, the master's ready; /metrics carries
// what was sent and acked; after SIGKILL of the master the standby turns
// ready; cairn health exits 0 for a ready node and 1 for one that is not.
func TestHealthAndMetrics(t *testing.T) {
	data := t.TempDir()
	mh, sh := freeAddr(t), freeAddr(t)
	master := startServe(t, data, "--http", mh)
	standby := launchServe(t, data, "--http", sh)
	standby.waitLog(t, "standby: waiting for the journal", 20*time.Second)
	if code, body := get(t, "http://"+sh+"/readyz"); code != 503 || !strings.Contains(body, "standby") {
		t.Fatalf("the standby's /readyz: %d %q", code, body)
	}
	if code, _ := get(t, "http://"+sh+"/livez"); code != 200 {
		t.Fatalf("the standby's /livez: %d", code)
	}
	if code, _ := get(t, "http://"+mh+"/readyz"); code != 200 {
		t.Fatalf("the master's /readyz: %d", code)
	}
	var ee *exec.ExitError
	if err := exec.Command(binary(t), "health", "http://"+sh).Run(); !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("cairn health of the standby: %v", err)
	}
	if out, err := exec.Command(binary(t), "health", "http://"+mh).CombinedOutput(); err != nil {
		t.Fatalf("cairn health of the master: %v %s", err, out)
	}

	c, err := gostomp.Dial("tcp", master.addr)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c.Send("/queue/m", "text/plain", []byte("x"), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true"))
	}
	sub, _ := c.Subscribe("/queue/m", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("activemq.prefetchSize", "1"))
	m := <-sub.C
	tx, _ := c.BeginWithError()
	tx.Ack(m)
	if err := tx.CommitWithReceipt(); err != nil {
		t.Fatal(err)
	}
	_, metrics := get(t, "http://"+mh+"/metrics")
	for _, want := range []string{
		`cairn_queue_messages{destination="/queue/m"} 2`,
		`cairn_queue_enqueued_messages_total{destination="/queue/m"} 3`,
		`cairn_queue_dequeued_messages_total{destination="/queue/m"} 1`,
		`cairn_queue_consumers{destination="/queue/m"} 1`,
		`cairn_role{epoch="1",role="master"} 1`,
		`cairn_connections 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	c.Disconnect()
	if t.Failed() {
		t.Logf("/metrics:\n%s", metrics)
	}
	master.cmd.Process.Signal(syscall.SIGKILL)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _ := get(t, "http://"+sh+"/readyz"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby did not turn ready after the takeover:\n%s", standby.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
