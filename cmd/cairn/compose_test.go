// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
	"gopkg.in/yaml.v3"

	"github.com/cairnmq/cairn/gateways/auth"
	"github.com/cairnmq/cairn/internal/interop"
	"github.com/cairnmq/cairn/internal/netns"
)

// composeFile is what the tests read of a compose file.
type composeFile struct {
	Services map[string]struct {
		Command     []string          `yaml:"command"`
		Volumes     []string          `yaml:"volumes"`
		Environment map[string]string `yaml:"environment"`
	} `yaml:"services"`
}

// composeRun runs the services of deploy/docker/NAME for real, with no
// Docker engine: each as a cairn process on a host of its own (a network
// namespace on one bridge, the services' names resolving to their hosts),
// its named volumes as directories the services share, its bind mounts as
// the files given, its environment from env. It first checks the file
// with docker-compose config (Debian's docker-compose), as the engine
// would read it. It returns each service's process and address.
func composeRun(t *testing.T, name string, binds, env map[string]string) (map[string]*serveProc, *netns.LAN) {
	t.Helper()
	path := filepath.Join("..", "..", "deploy", "docker", name)
	if _, err := exec.LookPath("docker-compose"); err != nil {
		interop.Missing(t, "docker-compose (scripts/test installs Debian's)", err)
	}
	check := exec.Command("docker-compose", "-f", path, "config", "-q")
	check.Env = os.Environ()
	for k, v := range env {
		check.Env = append(check.Env, k+"="+v)
	}
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("docker-compose config %s: %v\n%s", name, err, out)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(raw, &cf); err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range cf.Services {
		names = append(names, n)
	}
	lan := netns.NewLAN(t, names...)
	volumes := map[string]string{}
	expand := regexp.MustCompile(`\$\{([A-Z_]+)(:\?[^}]*)?\}`)
	procs := map[string]*serveProc{}
	for _, n := range names {
		svc := cf.Services[n]
		paths := map[string]string{} // container path -> host path
		for _, v := range svc.Volumes {
			parts := strings.Split(v, ":")
			src, dst := parts[0], parts[1]
			switch {
			case strings.HasPrefix(src, "./"):
				host, ok := binds[src]
				if !ok {
					t.Fatalf("%s mounts %s, which the test does not provide", n, src)
				}
				paths[dst] = host
			default:
				if volumes[src] == "" {
					volumes[src] = t.TempDir()
				}
				paths[dst] = volumes[src]
			}
		}
		var args []string
		for _, a := range svc.Command {
			if host, ok := paths[a]; ok {
				a = host
			}
			args = append(args, a)
		}
		cmd := lan.Command(n, binary(t), args...)
		cmd.Env = os.Environ()
		for k, v := range svc.Environment {
			cmd.Env = append(cmd.Env, k+"="+expand.ReplaceAllStringFunc(v, func(m string) string {
				return env[expand.FindStringSubmatch(m)[1]]
			}))
		}
		procs[n] = launchCmd(t, net.JoinHostPort(lan.Addr(n), "61613"), cmd)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for n, p := range procs {
				t.Logf("%s's log:\n%s", n, p.log())
			}
		}
	})
	return procs, lan
}

// usersYAML writes a users file of name, password, groups triples.
func usersYAML(t *testing.T, users ...string) string {
	t.Helper()
	content := "users:\n"
	for i := 0; i+2 < len(users)+1; i += 3 {
		h, err := auth.Hash(users[i+1])
		if err != nil {
			t.Fatal(err)
		}
		content += fmt.Sprintf("  %s:\n    password: %s\n    groups: [%s]\n", users[i], h, users[i+2])
	}
	content += "authorization:\n  - queue: \">\"\n    read: [apps, gateways]\n    write: [apps, gateways]\n    admin: [admins]\n" +
		"  - topic: \">\"\n    read: [apps, gateways]\n    write: [apps, gateways]\n    admin: [admins]\n"
	p := filepath.Join(t.TempDir(), "users.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// serving returns the services that answer a CONNECT now.
func serving(procs map[string]*serveProc) []string {
	var out []string
	for n, p := range procs {
		c, err := gostomp.Dial("tcp", p.addr, gostomp.ConnOpt.Login("app", "app-pw"), gostomp.ConnOpt.HeartBeat(0, 0))
		if err == nil {
			c.Disconnect()
			out = append(out, n)
		}
	}
	return out
}

// TestComposeHA: deploy/docker/ha.yaml (a master and two standbys on one
// journal volume), validated by docker-compose and run as processes on
// three namespaced hosts: one serves; a receipted message survives a
// kill -9 of it, served by a standby that took over.
func TestComposeHA(t *testing.T) {
	users := usersYAML(t, "app", "app-pw", "apps")
	procs, _ := composeRun(t, "ha.yaml", map[string]string{"./users.yaml": users}, nil)
	var master string
	for deadline := time.Now().Add(60 * time.Second); master == ""; time.Sleep(100 * time.Millisecond) {
		if s := serving(procs); len(s) == 1 {
			master = s[0]
		} else if len(s) > 1 {
			t.Fatalf("%v all serve on one journal", s)
		}
		if time.Now().After(deadline) {
			t.Fatal("no master within 60s")
		}
	}
	c, err := gostomp.Dial("tcp", procs[master].addr, gostomp.ConnOpt.Login("app", "app-pw"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send("/queue/compose", "text/plain", []byte("kept"), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
		t.Fatal(err)
	}
	c.Disconnect()
	procs[master].cmd.Process.Kill()
	procs[master].cmd.Wait()
	delete(procs, master)
	var next string
	for deadline := time.Now().Add(30 * time.Second); next == ""; time.Sleep(100 * time.Millisecond) {
		if s := serving(procs); len(s) == 1 {
			next = s[0]
		}
		if time.Now().After(deadline) {
			t.Fatal("no standby took over within 30s")
		}
	}
	c, err = gostomp.Dial("tcp", procs[next].addr, gostomp.ConnOpt.Login("app", "app-pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	sub, _ := c.Subscribe("/queue/compose", gostomp.AckAuto)
	select {
	case m := <-sub.C:
		if string(m.Body) != "kept" {
			t.Fatalf("after the takeover: %q", m.Body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the receipted message is gone after the takeover")
	}
	t.Logf("%s served first; after its kill -9, %s took over with the message", master, next)
}

// TestComposeTier: deploy/docker/tier.yaml (a producer pair and two
// gateways with failover upstream), validated by docker-compose and run as
// processes on four namespaced hosts: a producer on the pair's master, a
// queue consumer on one gateway and topic subscribers on both.
func TestComposeTier(t *testing.T) {
	users := usersYAML(t, "app", "app-pw", "apps", "gateway", "gw-pw", "gateways")
	procs, _ := composeRun(t, "tier.yaml", map[string]string{"./users.yaml": users}, map[string]string{"GATEWAY_PASSCODE": "gw-pw"})
	for _, g := range []string{"gateway-1", "gateway-2"} {
		procs[g].waitLog(t, "cairn gateway listening", 60*time.Second)
	}
	brokers := map[string]*serveProc{"broker-a": procs["broker-a"], "broker-b": procs["broker-b"]}
	var master string
	for deadline := time.Now().Add(60 * time.Second); master == ""; time.Sleep(100 * time.Millisecond) {
		if s := serving(brokers); len(s) == 1 {
			master = s[0]
		}
		if time.Now().After(deadline) {
			t.Fatal("no master within 60s")
		}
	}
	dial := func(addr string) *gostomp.Conn {
		c, err := gostomp.Dial("tcp", addr, gostomp.ConnOpt.Login("app", "app-pw"), gostomp.ConnOpt.HeartBeat(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Disconnect() })
		return c
	}
	g1, g2, p := dial(procs["gateway-1"].addr), dial(procs["gateway-2"].addr), dial(procs[master].addr)
	q, err := g1.Subscribe("/queue/orders", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("activemq.prefetchSize", "10"))
	if err != nil {
		t.Fatal(err)
	}
	t1, _ := g1.Subscribe("/topic/prices", gostomp.AckAuto)
	t2, _ := g2.Subscribe("/topic/prices", gostomp.AckAuto)
	g1.Send("/queue/barrier", "", nil, gostomp.SendOpt.Receipt) // the SUBSCRIBEs are done upstream
	g2.Send("/queue/barrier", "", nil, gostomp.SendOpt.Receipt)
	for i := range 5 {
		if err := p.Send("/queue/orders", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatal(err)
		}
	}
	p.Send("/topic/prices", "text/plain", []byte("tick"), gostomp.SendOpt.Receipt)
	recv := func(sub *gostomp.Subscription, what string) *gostomp.Message {
		select {
		case m := <-sub.C:
			if m.Err != nil {
				t.Fatalf("%s: %v", what, m.Err)
			}
			return m
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: nothing within 20s", what)
		}
		return nil
	}
	for i := range 5 {
		m := recv(q, "the queue through gateway-1")
		if string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("message %d is %q", i, m.Body)
		}
		g1.Ack(m)
	}
	for _, s := range []*gostomp.Subscription{t1, t2} {
		if m := recv(s, "the topic through a gateway"); string(m.Body) != "tick" {
			t.Fatalf("topic: %q", m.Body)
		}
	}
}
