// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package admin_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/gateways/admin"
	"github.com/cairnmq/cairn/internal/interop"
)

// TestConsoleInChromium clicks through the web console in headless
// Chromium (Debian's, driven by chromedp) against a broker with real
// traffic: the overview, the queues sorted and filtered and paged, one
// queue's messages, a message sent with the form (a STOMP consumer gets
// it), a purge, the topics and durable subscriptions. It saves a
// screenshot of each page beside the test's log and checks each page's
// structure (its headings, tables and forms), not its pixels.
func TestConsoleInChromium(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		interop.Missing(t, "chromium (scripts/stompjs-setup installs it)", err)
	}
	b, api := startAPI(t, admin.Options{})
	ctx := context.Background()
	for i := range 120 {
		m := &core.Message{Destination: core.Destination{Kind: core.Queue, Name: fmt.Sprintf("orders.%03d", i)}, Persistent: true, Priority: 4,
			Body: []byte("order <b>" + fmt.Sprint(i) + "</b>"), Header: []string{"region", "eu"}}
		if err := b.Core.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		b.Core.Send(ctx, &core.Message{Destination: core.Destination{Kind: core.Queue, Name: "orders.007"}, Persistent: true, Priority: 4, Body: []byte("more")})
	}
	c, err := gostomp.Dial("tcp", b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	topicSub, _ := c.Subscribe("/topic/prices", gostomp.AckAuto)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.Headless, chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	bctx, cancelTime := context.WithTimeout(bctx, 90*time.Second)
	defer cancelTime()

	shots := filepath.Join(os.TempDir(), "cairn-console-"+fmt.Sprint(os.Getpid()))
	os.MkdirAll(shots, 0o700)
	shot := func(name string) {
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(shots, name+".png"), png, 0o600)
	}
	text := func(sel string) string {
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return s
	}
	count := func(sel string) int {
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	time.Sleep(100 * time.Millisecond) // a few samples for the charts
	run("the overview", chromedp.Navigate(api.url+"/console/"), chromedp.WaitVisible(chromedp.CSS("#overview")))
	if count("#chart-depth polyline") != 1 || count("#chart-rates polyline") < 1 {
		t.Fatalf("the overview's charts: %d depth lines, %d rate lines", count("#chart-depth polyline"), count("#chart-rates polyline"))
	}
	if h := text("h1"); h != "Overview" || !strings.Contains(text("#overview"), "master (epoch 7)") || !strings.Contains(text("#overview"), "120") {
		t.Fatalf("overview: %q %q", h, text("#overview"))
	}
	shot("overview")

	run("to the queues", chromedp.Click(chromedp.CSS(`a[href="/console/queues"]`)), chromedp.WaitVisible(chromedp.CSS("#queues")))
	if n := count("#queues tbody tr"); n != 100 || !strings.Contains(text("#pager"), "1–100 of 120") {
		t.Fatalf("the first page of queues: %d rows, pager %q", n, text("#pager"))
	}
	shot("queues")
	run("the next page", chromedp.Click(chromedp.CSS("#next")), chromedp.WaitVisible(chromedp.CSS("#prev")))
	if n := count("#queues tbody tr"); n != 20 {
		t.Fatalf("the second page of queues: %d rows", n)
	}
	run("sort by depth", chromedp.Navigate(api.url+"/console/queues"), chromedp.WaitVisible(chromedp.CSS("#queues")),
		chromedp.Click(chromedp.CSS(`th a[href*="sort=depth"]`)), chromedp.WaitVisible(chromedp.CSS("#queues")))
	if first := text("#queues tbody tr td"); first != "orders.007" {
		t.Fatalf("sorted by depth, the first queue is %q", first)
	}
	run("filter", chromedp.SetValue(chromedp.CSS(`#filter input[name="filter"]`), "orders.11"), chromedp.Submit(chromedp.CSS("#filter")),
		chromedp.WaitVisible(chromedp.CSS("#queues")), chromedp.Sleep(200*time.Millisecond))
	if n := count("#queues tbody tr"); n != 10 {
		t.Fatalf("filtered on orders.11: %d rows", n)
	}

	run("one queue", chromedp.Navigate(api.url+"/console/queues/orders.007"), chromedp.WaitVisible(chromedp.CSS("#messages")))
	if n := count("#messages tbody tr"); n != 4 || !strings.Contains(text("#messages"), "order <b>7</b>") || count("#messages b") != 0 {
		t.Fatalf("the queue's messages (bodies shown as text): %d rows: %q", n, text("#messages"))
	}
	if count("form#purge") != 1 || count("form#send") != 1 || count("form#delete") != 1 || count("form#move") != 1 || count("form#retry") != 1 {
		t.Fatal("the queue page lacks its forms")
	}
	if count("#chart-depth polyline") != 1 || !strings.Contains(text("#charts"), "messages held") && count("#chart-depth") != 1 {
		t.Fatal("the queue page has no depth chart")
	}
	shot("queue")

	// Send with the form: a STOMP consumer gets it.
	sub, _ := c.Subscribe("/queue/fresh", gostomp.AckAuto)
	run("send", chromedp.Navigate(api.url+"/console/queues/fresh"), chromedp.WaitVisible(chromedp.CSS("#send")))
	run("send", chromedp.SetValue(chromedp.CSS(`#send textarea[name="body"]`), "from the console"),
		chromedp.SetValue(chromedp.CSS(`#send textarea[name="headers"]`), "kind: test"),
		chromedp.Click(chromedp.CSS(`#send button`)), chromedp.WaitVisible(chromedp.CSS("#flash")))
	if f := text("#flash"); !strings.HasPrefix(f, "Sent ID:cairn-") {
		t.Fatalf("after sending: %q", f)
	}
	select {
	case m := <-sub.C:
		if string(m.Body) != "from the console" || m.Header.Get("kind") != "test" {
			t.Fatalf("the console's message arrived as %q %v", m.Body, m.Header)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the message sent with the console did not arrive")
	}

	// Purge.
	run("purge", chromedp.Navigate(api.url+"/console/queues/orders.007"), chromedp.WaitVisible(chromedp.CSS("#purge")),
		chromedp.Click(chromedp.CSS("#purge button")), chromedp.WaitVisible(chromedp.CSS("#flash")))
	if f := text("#flash"); f != "Purged 4 messages." {
		t.Fatalf("after the purge: %q", f)
	}
	if st, _ := b.Core.QueueStats("orders.007"); st.Pending != 0 {
		t.Fatalf("after the purge the queue holds %d", st.Pending)
	}
	shot("purged")

	// A dead letter, sent back with the console.
	deadLetter(t, b, "poison")
	run("the DLQ", chromedp.Navigate(api.url+"/console/queues/ActiveMQ.DLQ"), chromedp.WaitVisible(chromedp.CSS("#retry")))
	if !strings.Contains(text("#messages"), "original-destination") {
		t.Fatalf("the dead letter's headers: %q", text("#messages"))
	}
	shot("dlq")
	run("retry", chromedp.Click(chromedp.CSS("#retry button")), chromedp.WaitVisible(chromedp.CSS("#flash")))
	if f := text("#flash"); f != "Sent 1 dead letters back to their queues." {
		t.Fatalf("after the retry: %q", f)
	}
	if st, _ := b.Core.QueueStats("work"); st.Pending != 1 {
		t.Fatalf("after the retry the queue holds %+v", st)
	}
	// Move every message of a queue to another.
	run("move", chromedp.Navigate(api.url+"/console/queues/orders.008"), chromedp.WaitVisible(chromedp.CSS("#move")),
		chromedp.SetValue(chromedp.CSS(`#move input[name="to"]`), "orders.archive"),
		chromedp.Click(chromedp.CSS(`#move button[value="false"]`)), chromedp.WaitVisible(chromedp.CSS("#flash")))
	if f := text("#flash"); f != "Moved 1 messages to orders.archive." {
		t.Fatalf("after the move: %q", f)
	}

	run("topics", chromedp.Navigate(api.url+"/console/topics"), chromedp.WaitVisible(chromedp.CSS("#topics")))
	if !strings.Contains(text("#topics"), "prices") {
		t.Fatalf("topics: %q", text("#topics"))
	}
	run("durables", chromedp.Navigate(api.url+"/console/durables"), chromedp.WaitVisible(chromedp.CSS("#durables")))
	shot("durables")

	// The connections, and one closed from the console.
	run("connections", chromedp.Navigate(api.url+"/console/connections"), chromedp.WaitVisible(chromedp.CSS("#connections")))
	if n := count("#connections tbody tr form"); n != 1 || !strings.Contains(text("#connections"), "1.2") {
		t.Fatalf("connections: %d rows with a close button: %q", n, text("#connections"))
	}
	shot("connections")
	run("close", chromedp.Click(chromedp.CSS("#connections tbody tr form button")), chromedp.WaitVisible(chromedp.CSS("#flash")))
	if f := text("#flash"); !strings.HasPrefix(f, "Closed ") {
		t.Fatalf("after closing: %q", f)
	}
	select {
	case m := <-topicSub.C:
		if m.Err == nil {
			t.Fatalf("the closed client got %q", m.Body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client closed from the console heard nothing")
	}
	t.Logf("screenshots in %s", shots)
}
