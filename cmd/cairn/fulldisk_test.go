// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory, unmounted
// when the test ends: a disk that really fills. It needs root (CI's and
// this project's machines run tests as root); elsewhere the test is
// skipped, saying why.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "cairn-test", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// sendRaw sends one SEND on a new connection and returns the reply: the
// RECEIPT, or the ERROR's code.
func sendRaw(t *testing.T, addr, dest string, persistent bool, body []byte) string {
	t.Helper()
	rc := dialRaw(t, addr)
	defer rc.nc.Close()
	f := frame.New("SEND", "destination", dest, "persistent", fmt.Sprint(persistent), "receipt", "r")
	f.Body = body
	rc.send(t, f)
	rc.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	reply, err := rc.r.Read()
	if err != nil {
		t.Fatalf("SEND to %s: %v", dest, err)
	}
	if reply.Command == "ERROR" {
		return "ERROR " + reply.Header.Get("code")
	}
	return reply.Command
}

// TestServeFullDisk fills the disk under a real cairn serve: a tmpfs, most
// of it taken by a file, the rest by 64 KiB persistent messages. Then:
// the SEND that finds no room, and every persistent SEND after it, gets
// ERROR code store-unavailable, and nothing of it is stored; the broker
// stays up and master past its lease TTL; non-persistent messages still
// flow; a consumer still receives and acknowledges what was stored; killed
// with -9, the broker starts again on the full disk. Once
// the file is deleted, persistent SENDs are taken again within seconds,
// with no restart. A restart then finds exactly the stored messages less
// the acknowledged ones. (Before, the 895th SEND got journal-failure naming
// the segment's path, the broker lost its lease about 6 s later and exited,
// and it would not start again until space was freed.)
func TestServeFullDisk(t *testing.T) {
	disk := mountTmpfs(t, 64<<20)
	filler := filepath.Join(disk, "filler")
	if err := os.WriteFile(filler, make([]byte, 24<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(disk, "data")
	p := startServe(t, data, "--lease-ttl", "2s")

	consumer := dialRaw(t, p.addr)
	consumer.send(t, frame.New("SUBSCRIBE", "destination", "/queue/full", "id", "0", "ack", "client-individual",
		"activemq.prefetchSize", "20", "receipt", "sub"))
	consumer.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	if f, err := consumer.r.Read(); err != nil || f.Command != "RECEIPT" {
		t.Fatalf("SUBSCRIBE: %v %v", f, err)
	}

	body := []byte(strings.Repeat("x", 64<<10))
	producer := dialRaw(t, p.addr)
	stored := 0
	refusal := ""
	for stored < 2000 {
		f := frame.New("SEND", "destination", "/queue/full", "persistent", "true", "receipt", fmt.Sprint(stored))
		f.Body = body
		producer.send(t, f)
		producer.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		reply, err := producer.r.Read()
		if err != nil {
			t.Fatalf("after %d stored: %v", stored, err)
		}
		if reply.Command == "ERROR" {
			refusal = reply.Header.Get("code") + ": " + reply.Header.Get("message")
			if strings.Contains(refusal, disk) {
				t.Fatalf("the ERROR names the data directory: %s", refusal)
			}
			break
		}
		stored++
	}
	if !strings.HasPrefix(refusal, "store-unavailable") || stored < 50 {
		t.Fatalf("after %d stored SENDs the disk did not fill with store-unavailable: %q", stored, refusal)
	}
	t.Logf("%d messages of 64 KiB stored before the disk filled: %s", stored, refusal)

	// Consumers and acknowledgements go on.
	const acks = 20
	for i := range acks {
		m, err := consumer.r.Read()
		if err != nil || m.Command != "MESSAGE" {
			t.Fatalf("delivery %d on a full disk: %v %v", i, m, err)
		}
		consumer.send(t, frame.New("ACK", "id", m.Header.Get("ack"), "receipt", fmt.Sprint("a", i)))
	}
	for got := 0; got < acks; {
		f, err := consumer.r.Read()
		if err != nil {
			t.Fatalf("ack receipts on a full disk: %v", err)
		}
		switch f.Command {
		case "RECEIPT":
			got++
		case "ERROR":
			t.Fatalf("an ACK on a full disk: %s %s\n%s", f.Header.Get("code"), f.Header.Get("message"), p.log())
		}
	}
	// Persistent SENDs stay refused; non-persistent ones flow.
	if r := sendRaw(t, p.addr, "/queue/full", true, []byte("more")); r != "ERROR store-unavailable" {
		t.Fatalf("a persistent SEND while the disk is full: %s", r)
	}
	if r := sendRaw(t, p.addr, "/queue/volatile", false, []byte("light")); r != "RECEIPT" {
		t.Fatalf("a non-persistent SEND while the disk is full: %s", r)
	}
	// Past the lease's TTL the broker is still the master, and up.
	time.Sleep(3 * time.Second)
	if p.cmd.ProcessState != nil || strings.Contains(p.log(), "fenced") {
		t.Fatalf("the broker lost its lease or stopped on a full disk:\n%s", p.log())
	}

	// A broker killed on a full disk starts again on it (before, its
	// start-up copied the tail segment and made a new ring, and failed for
	// want of room), and refuses persistent SENDs as before.
	if !strings.Contains(p.log(), "reopened after the disk was full") {
		t.Fatalf("the journal did not reopen by itself after the disk filled:\n%s", p.log())
	}
	consumer.nc.Close()
	p.cmd.Process.Kill()
	p.cmd.Wait()
	p = startServe(t, data, "--lease-ttl", "2s")
	if r := sendRaw(t, p.addr, "/queue/full", true, []byte("more")); r != "ERROR store-unavailable" {
		t.Fatalf("a persistent SEND after a restart on a full disk: %s\n%s", r, p.log())
	}
	if r := sendRaw(t, p.addr, "/queue/volatile", false, []byte("light")); r != "RECEIPT" {
		t.Fatalf("a non-persistent SEND after a restart on a full disk: %s", r)
	}

	// Space comes back: persistent SENDs are taken again, with no restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	took := time.Now()
	for {
		r := sendRaw(t, p.addr, "/queue/full", true, []byte("after"))
		if r == "RECEIPT" {
			break
		}
		if r != "ERROR store-unavailable" || time.Since(took) > 10*time.Second {
			t.Fatalf("a persistent SEND %v after space came back: %s\n%s", time.Since(took), r, p.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("persistent SENDs taken again %v after the file was deleted", time.Since(took).Round(time.Millisecond))
	for _, want := range []string{"the disk is full", "space is back"} {
		if !strings.Contains(p.log(), want) {
			t.Fatalf("the log lacks %q:\n%s", want, p.log())
		}
	}

	// A restart finds what was stored, less what was acknowledged.
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, p.log())
	}
	p2 := startServe(t, data)
	want := stored - acks + 1
	if m := regexp.MustCompile(`pending_messages=(\d+)`).FindStringSubmatch(p2.log()); m == nil || m[1] != fmt.Sprint(want) {
		t.Fatalf("after a restart: %v, want pending_messages=%d (%d stored, %d acked, 1 after space came back)\n%s", m, want, stored, acks, p2.log())
	}
}
