// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package interop

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// activemqJar is where Debian's activemq package puts the broker.
const activemqJar = "/usr/share/activemq/bin/activemq.jar"

// activemqXML is the test broker: KahaDB in its own directory, STOMP only,
// on loopback, no JMX.
const activemqXML = `<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <bean class="org.springframework.beans.factory.config.PropertyPlaceholderConfigurer"/>
  <broker xmlns="http://activemq.apache.org/schema/core" useJmx="false" brokerName="interop" dataDirectory="${activemq.data}">
    <persistenceAdapter>
      <kahaDB directory="${activemq.data}/kahadb"/>
    </persistenceAdapter>
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:${stomp.port}"/>
    </transportConnectors>
  </broker>
</beans>
`

// ActiveMQ is a real ActiveMQ (Debian's package) that a test started: its
// STOMP address, and its data kept across Kill and Start.
type ActiveMQ struct {
	Addr string
	t    testing.TB
	base string
	port int
	cmd  *exec.Cmd
	log  *os.File
}

// StartActiveMQ starts Debian's ActiveMQ on a free loopback port and waits
// until its STOMP port answers; it is killed (by its PID) when t ends.
// Without the package, t skips (or fails under CAIRN_REQUIRE_INTEROP;
// scripts/activemq-setup installs it).
func StartActiveMQ(t testing.TB) *ActiveMQ {
	t.Helper()
	if _, err := os.Stat(activemqJar); err != nil {
		Missing(t, "Debian's activemq (scripts/activemq-setup installs it)", err)
	}
	if _, err := exec.LookPath("java"); err != nil {
		Missing(t, "java (Debian's activemq brings it)", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	a := &ActiveMQ{t: t, base: t.TempDir(), port: port, Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	if err := os.WriteFile(filepath.Join(a.base, "activemq.xml"), []byte(activemqXML), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	a.Start()
	return a
}

// Start starts the broker again on the same port and data (after Kill).
func (a *ActiveMQ) Start() {
	a.t.Helper()
	log, err := os.OpenFile(filepath.Join(a.base, "activemq.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		a.t.Fatal(err)
	}
	a.log = log
	a.cmd = exec.Command("java", "-Xms128M", "-Xmx256M", "-Dactivemq.home=/usr/share/activemq",
		"-Dactivemq.base="+a.base, "-Dactivemq.conf="+a.base, "-Dactivemq.data="+filepath.Join(a.base, "data"),
		fmt.Sprintf("-Dstomp.port=%d", a.port), "-jar", activemqJar, "start", "xbean:file:"+filepath.Join(a.base, "activemq.xml"))
	a.cmd.Stdout, a.cmd.Stderr = log, log
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", a.Addr, time.Second); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("ActiveMQ did not listen on %s within 90s; its log:\n%s", a.Addr, a.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Kill ends the broker with SIGKILL (its JVM, by PID) and waits for it.
func (a *ActiveMQ) Kill() {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	a.cmd.Process.Kill()
	a.cmd.Wait()
	a.cmd = nil
	a.log.Close()
}

// Signal sends sig to the broker's JVM (SIGSTOP freezes it, SIGCONT thaws it).
func (a *ActiveMQ) Signal(sig syscall.Signal) {
	if a.cmd != nil && a.cmd.Process != nil {
		a.cmd.Process.Signal(sig)
	}
}

// Log is the broker's output so far.
func (a *ActiveMQ) Log() string {
	b, _ := os.ReadFile(filepath.Join(a.base, "activemq.log"))
	return strings.TrimSpace(string(b))
}
