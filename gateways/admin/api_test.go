// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package admin_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/gateways/admin"
	"github.com/cairnmq/cairn/gateways/auth"
	"github.com/cairnmq/cairn/gateways/stomp"
	"github.com/cairnmq/cairn/internal/brokertest"
)

type apiClient struct {
	t          *testing.T
	url        string
	user, pass string
}

// do sends a request and decodes a JSON answer into out (if not nil).
func (c apiClient) do(method, path, body string, out any, header ...string) int {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.url+path, strings.NewReader(body))
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

func startAPI(t *testing.T, o admin.Options) (*brokertest.Broker, apiClient) {
	// NACKed messages of "work" go straight to ActiveMQ.DLQ.
	b := brokertest.Start(t, brokertest.Options{Core: core.Options{Redelivery: []core.RedeliveryRule{
		{Pattern: "work", Policy: core.RedeliveryPolicy{MaxRedeliveries: 0, DeadLetterQueue: "ActiveMQ.DLQ"}}}}})
	src := admin.Source{Ready: func() (bool, string) { return true, "" },
		Broker: func() *core.Broker { return b.Core }, Role: func() (string, uint64) { return "master", 7 },
		Connections: func() int { return 3 }, Conns: b.Server.Conns, CloseConn: b.Server.CloseConn}
	o.Samples = admin.NewSampler(src, 20*time.Millisecond, 0)
	t.Cleanup(o.Samples.Stop)
	srv := httptest.NewServer(admin.Handler(src, o))
	t.Cleanup(srv.Close)
	return b, apiClient{t: t, url: srv.URL}
}

// TestAdminAPI: the JSON API over a broker with real traffic: the
// overview, queues sorted, filtered and paged, one queue, browsing a page,
// sending (journaled: a STOMP consumer gets it), purging, deleting
// (refused while a consumer is attached), topics and durable
// subscriptions; bad requests say what is wrong.
func TestAdminAPI(t *testing.T) {
	b, api := startAPI(t, admin.Options{})
	ctx := context.Background()
	for i := range 5 {
		for j := range i + 1 {
			m := &core.Message{Destination: core.Destination{Kind: core.Queue, Name: fmt.Sprint("orders.", i)}, Persistent: true, Priority: 4,
				Body: []byte(fmt.Sprint("m", j)), Header: []string{"region", "eu"}}
			if err := b.Core.Send(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	b.Core.Send(ctx, &core.Message{Destination: core.Destination{Kind: core.Queue, Name: "other"}, Priority: 4, Body: []byte{0xff, 0xfe}})

	var ov admin.Overview
	if api.do("GET", "/api/v1/overview", "", &ov) != 200 || ov.Role != "master" || ov.Epoch != 7 || ov.Queues != 6 || ov.Messages != 16 ||
		ov.Connections != 3 || ov.MemoryBytes == 0 || ov.StoreBytes == 0 {
		t.Fatalf("overview %+v", ov)
	}

	var qs admin.Page[admin.Queue]
	api.do("GET", "/api/v1/queues?sort=depth&filter=orders.&limit=2", "", &qs)
	if qs.Total != 5 || len(qs.Items) != 2 || qs.Items[0].Name != "orders.4" || qs.Items[0].Depth != 5 || qs.Items[1].Name != "orders.3" {
		t.Fatalf("the two deepest orders queues: %+v", qs)
	}
	api.do("GET", "/api/v1/queues?offset=5&limit=2", "", &qs)
	if qs.Total != 6 || len(qs.Items) != 1 || qs.Items[0].Name != "other" {
		t.Fatalf("the last page by name: %+v", qs)
	}
	var e map[string]string
	if api.do("GET", "/api/v1/queues?sort=colour", "", &e) != 400 || !strings.Contains(e["error"], "colour") {
		t.Fatalf("a bad sort: %v", e)
	}
	if api.do("GET", "/api/v1/queues?limit=5000", "", &e) != 400 {
		t.Fatalf("a limit over 1,000: %v", e)
	}
	var q admin.Queue
	if api.do("GET", "/api/v1/queues/orders.2", "", &q) != 200 || q.Pending != 3 || q.Enqueued != 3 {
		t.Fatalf("one queue: %+v", q)
	}
	if api.do("GET", "/api/v1/queues/nothere", "", &e) != 404 {
		t.Fatalf("a missing queue: %v", e)
	}

	var ms admin.Page[admin.Message]
	api.do("GET", "/api/v1/queues/orders.4/messages?offset=1&limit=2", "", &ms)
	if ms.Total != 5 || len(ms.Items) != 2 || ms.Items[0].Body != "m1" || ms.Items[0].Headers[1] != "eu" || !ms.Items[0].Persistent {
		t.Fatalf("browse a page: %+v", ms)
	}
	api.do("GET", "/api/v1/queues/other/messages", "", &ms)
	if len(ms.Items) != 1 || !ms.Items[0].BodyBase64 || ms.Items[0].Body != "//4=" {
		t.Fatalf("a body that is not UTF-8: %+v", ms)
	}

	// A message sent through the API goes through the broker: a STOMP
	// consumer gets it, headers and all.
	var sent map[string]string
	if code := api.do("POST", "/api/v1/queues/fresh/messages", `{"body":"hello","headers":["k","v"],"persistent":true,"priority":7}`, &sent); code != 201 ||
		!strings.HasPrefix(sent["message_id"], "ID:cairn-") {
		t.Fatalf("send: %d %v", code, sent)
	}
	c, err := gostomp.Dial("tcp", b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	sub, _ := c.Subscribe("/queue/fresh", gostomp.AckAuto)
	select {
	case m := <-sub.C:
		if string(m.Body) != "hello" || m.Header.Get("k") != "v" || m.Header.Get("priority") != "7" || m.Header.Get("message-id") != sent["message_id"] {
			t.Fatalf("the message sent through the API arrived as %q %v", m.Body, m.Header)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the message sent through the API did not arrive")
	}
	if api.do("POST", "/api/v1/queues/fresh/messages", `{"body":"x","colour":"red"}`, &e) != 400 || !strings.Contains(e["error"], "colour") {
		t.Fatalf("an unknown field: %v", e)
	}
	if api.do("POST", "/api/v1/queues/fresh/messages", `{"body":"x","priority":12}`, &e) != 400 {
		t.Fatalf("a bad priority: %v", e)
	}
	if api.do("POST", "/api/v1/queues/orders.%3E/messages", `{"body":"x"}`, &e) != 400 {
		t.Fatalf("a send to a wildcard: %v", e)
	}

	// Purge, and delete: refused while a consumer is attached.
	var purged map[string]int
	if api.do("POST", "/api/v1/queues/orders.4/purge", "", &purged) != 200 || purged["purged"] != 5 {
		t.Fatalf("purge: %v", purged)
	}
	if st, _ := b.Core.QueueStats("orders.4"); st.Pending != 0 {
		t.Fatalf("after the purge the queue holds %d", st.Pending)
	}
	if api.do("DELETE", "/api/v1/queues/fresh", "", &e) != 409 {
		t.Fatalf("delete with a consumer attached: %v", e)
	}
	sub.Unsubscribe()
	if api.do("DELETE", "/api/v1/queues/orders.3", "", nil) != 204 {
		t.Fatal("delete")
	}
	if _, ok := b.Core.QueueStats("orders.3"); ok {
		t.Fatal("the deleted queue is still there")
	}

	// Topics and durable subscriptions.
	d, err := gostomp.Dial("tcp", b.Addr, gostomp.ConnOpt.Header("client-id", "app1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Subscribe("/topic/prices", gostomp.AckAuto, gostomp.SubscribeOpt.Header("activemq.subscriptionName", "feed")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); len(b.Core.Durables()) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the durable subscription was not made")
		}
	}
	if code := api.do("DELETE", "/api/v1/durables/app1/feed", "", &e); code != 409 {
		t.Fatalf("removing a durable subscription while its subscriber is connected: %d %v", code, e)
	}
	d.Disconnect()
	for deadline := time.Now().Add(5 * time.Second); b.Core.Durables()[0].Active; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the durable subscription stayed active after DISCONNECT")
		}
	}
	var ts admin.Page[admin.Topic]
	api.do("GET", "/api/v1/topics", "", &ts)
	var ds admin.Page[admin.Durable]
	api.do("GET", "/api/v1/durables", "", &ds)
	if ds.Total != 1 || ds.Items[0].ClientID != "app1" || ds.Items[0].Name != "feed" || ds.Items[0].Topic != "prices" {
		t.Fatalf("durables: %+v (topics %+v)", ds, ts)
	}
	if api.do("DELETE", "/api/v1/durables/app1/feed", "", nil) != 204 || len(b.Core.Durables()) != 0 {
		t.Fatalf("the durable subscription was not removed: %+v", b.Core.Durables())
	}
	if api.do("GET", "/api/v1/nothing", "", &e) != 404 || !strings.Contains(e["error"], "no such path") {
		t.Fatalf("an unknown path: %v", e)
	}
}

// TestAdminAPILogins: with users, the API takes HTTP Basic logins of the
// admin group only (health and metrics need none); changes from a page on
// another origin are refused; without users off loopback it is refused.
func TestAdminAPILogins(t *testing.T) {
	content := "users:\n"
	for _, u := range []struct{ name, pass, groups string }{{"root", "s3cret", "[admins]"}, {"app", "pw", "[apps]"}} {
		h, err := auth.Hash(u.pass)
		if err != nil {
			t.Fatal(err)
		}
		content += "  " + u.name + ":\n    password: " + h + "\n    groups: " + u.groups + "\n"
	}
	p := filepath.Join(t.TempDir(), "users.yaml")
	os.WriteFile(p, []byte(content), 0o600)
	users, err := auth.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	_, api := startAPI(t, admin.Options{Users: users})
	var e map[string]string
	if api.do("GET", "/api/v1/overview", "", &e) != 401 {
		t.Fatalf("no login: %v", e)
	}
	if api.do("GET", "/livez", "", nil) != 200 || api.do("GET", "/metrics", "", nil) != 200 {
		t.Fatal("health and metrics took a login")
	}
	bad := api
	bad.user, bad.pass = "root", "wrong"
	if bad.do("GET", "/api/v1/overview", "", &e) != 401 || strings.Contains(e["error"], "wrong") {
		t.Fatalf("a wrong password: %v", e)
	}
	app := api
	app.user, app.pass = "app", "pw"
	if app.do("GET", "/api/v1/queues", "", &e) != 403 || !strings.Contains(e["error"], "admins") {
		t.Fatalf("a user outside the admin group: %v", e)
	}
	root := api
	root.user, root.pass = "root", "s3cret"
	var ov admin.Overview
	if root.do("GET", "/api/v1/overview", "", &ov) != 200 || ov.Role != "master" {
		t.Fatalf("the admin: %+v", ov)
	}
	// A page elsewhere posting with the admin's browser.
	if code := root.do("POST", "/api/v1/queues/q/messages", `{"body":"x"}`, &e, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); code != 403 {
		t.Fatalf("a cross-origin POST: %d %v", code, e)
	}
	if code := root.do("POST", "/api/v1/queues/q/messages", `{"body":"x"}`, nil, "Sec-Fetch-Site", "same-origin"); code != 201 {
		t.Fatalf("a same-origin POST: %d", code)
	}

	_, open := startAPI(t, admin.Options{APIRefused: "the admin API is served off loopback only with --users"})
	if open.do("GET", "/api/v1/overview", "", &e) != 403 || !strings.Contains(e["error"], "--users") || open.do("GET", "/readyz", "", nil) != 200 {
		t.Fatalf("the API off loopback without users: %v", e)
	}
}

// TestActiveMQXMLFeeds: /admin/xml/queues.jsp, topics.jsp and
// subscribers.jsp in ActiveMQ's shape, decoded as Telegraf's activemq
// input decodes them (attributes on queue, topic, subscriber and stats).
func TestActiveMQXMLFeeds(t *testing.T) {
	b, api := startAPI(t, admin.Options{})
	c, err := gostomp.Dial("tcp", b.Addr, gostomp.ConnOpt.Header("client-id", "app1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	qsub, _ := c.Subscribe("/queue/orders", gostomp.AckClientIndividual)
	tsub, _ := c.Subscribe("/topic/prices", gostomp.AckAuto, gostomp.SubscribeOpt.Header("activemq.subscriptionName", "feed"))
	plain, _ := c.Subscribe("/topic/prices", gostomp.AckAuto)
	for i := range 3 {
		c.Send("/queue/orders", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Receipt)
	}
	c.Send("/topic/prices", "text/plain", []byte("p"), gostomp.SendOpt.Receipt)
	m := <-qsub.C
	c.Ack(m)
	<-tsub.C
	<-plain.C
	get := func(path string, v any) {
		t.Helper()
		resp, err := http.Get(api.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/xml") {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		if err := xml.Unmarshal(body, v); err != nil {
			t.Fatalf("%s: %v\n%s", path, err, body)
		}
	}
	type stats struct {
		Size          int `xml:"size,attr"`
		ConsumerCount int `xml:"consumerCount,attr"`
		EnqueueCount  int `xml:"enqueueCount,attr"`
		DequeueCount  int `xml:"dequeueCount,attr"`
	}
	type dest struct {
		Name  string `xml:"name,attr"`
		Stats stats  `xml:"stats"`
	}
	var queues struct {
		Items []dest `xml:"queue"`
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		get("/admin/xml/queues.jsp", &queues)
		var orders dest
		for _, q := range queues.Items {
			if q.Name == "orders" {
				orders = q
			}
		}
		if orders.Stats == (stats{Size: 2, ConsumerCount: 1, EnqueueCount: 3, DequeueCount: 1}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queues.jsp: %+v", queues)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var topics struct {
		Items []dest `xml:"topic"`
	}
	get("/admin/xml/topics.jsp", &topics)
	if len(topics.Items) != 1 || topics.Items[0].Name != "prices" || topics.Items[0].Stats.ConsumerCount < 1 || topics.Items[0].Stats.EnqueueCount != 1 {
		t.Fatalf("topics.jsp: %+v", topics)
	}
	var subs struct {
		Items []struct {
			ClientID         string `xml:"clientId,attr"`
			SubscriptionName string `xml:"subscriptionName,attr"`
			DestinationName  string `xml:"destinationName,attr"`
			Active           string `xml:"active,attr"`
			Stats            struct {
				PendingQueueSize int `xml:"pendingQueueSize,attr"`
				EnqueueCounter   int `xml:"enqueueCounter,attr"`
			} `xml:"stats"`
		} `xml:"subscriber"`
	}
	get("/admin/xml/subscribers.jsp", &subs)
	if len(subs.Items) != 1 || subs.Items[0].ClientID != "app1" || subs.Items[0].SubscriptionName != "feed" || subs.Items[0].DestinationName != "prices" ||
		subs.Items[0].Active != "yes" {
		t.Fatalf("subscribers.jsp: %+v", subs)
	}
}

// TestAdminAPIConnections: the connected clients listed, one closed: it
// gets ERROR closed-by-admin and its unacknowledged message goes back.
func TestAdminAPIConnections(t *testing.T) {
	b, api := startAPI(t, admin.Options{})
	c, err := gostomp.Dial("tcp", b.Addr, gostomp.ConnOpt.Header("client-id", "app1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	sub, _ := c.Subscribe("/queue/jobs", gostomp.AckClientIndividual)
	c.Send("/queue/jobs", "text/plain", []byte("job"), gostomp.SendOpt.Receipt)
	<-sub.C // delivered, not acknowledged
	var conns admin.Page[stomp.ConnInfo]
	api.do("GET", "/api/v1/connections", "", &conns)
	if conns.Total != 1 || conns.Items[0].ClientID != "app1" || conns.Items[0].Version != "1.2" || conns.Items[0].Subscriptions != 1 ||
		conns.Items[0].FramesIn < 3 || !strings.HasPrefix(conns.Items[0].Remote, "127.0.0.1:") {
		t.Fatalf("connections: %+v", conns)
	}
	if api.do("DELETE", "/api/v1/connections/"+conns.Items[0].ID, "", nil) != 204 {
		t.Fatal("close")
	}
	select {
	case m := <-sub.C:
		if m.Err == nil || !strings.Contains(m.Err.Error(), "administrator") {
			t.Fatalf("the closed client got %v", m.Err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the closed client heard nothing")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if st, _ := b.Core.QueueStats("jobs"); st.InFlight == 0 && st.Pending == 1 && len(b.Server.Conns()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			st, _ := b.Core.QueueStats("jobs")
			t.Fatalf("after the close: %+v, %d connections", st, len(b.Server.Conns()))
		}
	}
	var e map[string]string
	if api.do("DELETE", "/api/v1/connections/nobody", "", &e) != 404 {
		t.Fatalf("closing an unknown connection: %v", e)
	}
}

// deadLetter makes one dead letter of a message sent to queue work.
func deadLetter(t *testing.T, b *brokertest.Broker, body string) {
	t.Helper()
	c, err := gostomp.Dial("tcp", b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	sub, _ := c.Subscribe("/queue/work", gostomp.AckClientIndividual)
	c.Send("/queue/work", "text/plain", []byte(body), gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true"))
	if err := c.Nack(<-sub.C); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if st, _ := b.Core.QueueStats("ActiveMQ.DLQ"); st.Pending > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no dead letter")
		}
	}
}

// TestAdminAPIMoveAndRetry: messages moved and copied between queues by
// message-id, and a dead letter sent back to its queue.
func TestAdminAPIMoveAndRetry(t *testing.T) {
	b, api := startAPI(t, admin.Options{})
	ctx := context.Background()
	var ids []string
	for i := range 4 {
		m := &core.Message{Destination: core.Destination{Kind: core.Queue, Name: "src"}, Persistent: true, Priority: 4, Body: []byte(fmt.Sprint(i))}
		b.Core.Send(ctx, m)
		ids = append(ids, m.ID())
	}
	var res admin.MoveResult
	if code := api.do("POST", "/api/v1/queues/src/move", `{"to":"dst","message_ids":["`+ids[0]+`","`+ids[1]+`"]}`, &res); code != 200 || res.Moved != 2 {
		t.Fatalf("move: %d %+v", code, res)
	}
	if code := api.do("POST", "/api/v1/queues/src/move", `{"to":"copy","copy":true}`, &res); code != 200 || res.Moved != 2 {
		t.Fatalf("copy: %d %+v", code, res)
	}
	for q, want := range map[string]int{"src": 2, "dst": 2, "copy": 2} {
		if st, _ := b.Core.QueueStats(q); st.Pending != want {
			t.Errorf("%s holds %d, want %d", q, st.Pending, want)
		}
	}
	var e map[string]string
	if code := api.do("POST", "/api/v1/queues/src/move", `{"to":"orders.>"}`, &e); code != 400 {
		t.Fatalf("a move to a wildcard: %d %v", code, e)
	}
	if code := api.do("POST", "/api/v1/queues/src/move", `{"to":"x","message_ids":["nope"]}`, &e); code != 400 {
		t.Fatalf("a bad message-id: %d %v", code, e)
	}
	deadLetter(t, b, "poison")
	if code := api.do("POST", "/api/v1/queues/ActiveMQ.DLQ/retry", `{}`, &res); code != 200 || res.Moved != 1 {
		t.Fatalf("retry: %d %+v", code, res)
	}
	msgs, _ := b.Core.Browse("work")
	if len(msgs) != 1 || string(msgs[0].Body) != "poison" || msgs[0].Get(core.HeaderOriginalDestination) != "" {
		t.Fatalf("after the retry, work holds %+v", msgs)
	}
}

// TestGatewayLinksPages: a gateway's API and console show its upstream
// links; its console opens on them.
func TestGatewayLinksPages(t *testing.T) {
	links := []admin.Link{{Name: "link 0", Upstream: "10.0.0.1:61613", Up: true, Connects: 2, CanaryRTT: 0.0004, Subscribed: 3},
		{Name: "link 1", Upstream: "10.0.0.2:61613", LastError: "connection refused"}}
	srv := httptest.NewServer(admin.Handler(admin.Source{Ready: func() (bool, string) { return false, "link 1 to the upstream is down" },
		Role: func() (string, uint64) { return "gateway", 0 }, Links: func() []admin.Link { return links }}, admin.Options{}))
	defer srv.Close()
	api := apiClient{t: t, url: srv.URL}
	var got []admin.Link
	if api.do("GET", "/api/v1/links", "", &got) != 200 || len(got) != 2 || got[1].LastError != "connection refused" || !got[0].Up {
		t.Fatalf("links: %+v", got)
	}
	var e map[string]string
	if api.do("GET", "/api/v1/queues", "", &e) != 503 || !strings.Contains(e["error"], "no broker") {
		t.Fatalf("a gateway's queues: %v", e)
	}
	resp, err := http.Get(srv.URL + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if resp.Request.URL.Path != "/console/links" || !strings.Contains(page, `id="links"`) || !strings.Contains(page, "10.0.0.2:61613") ||
		!strings.Contains(page, "connection refused") || !strings.Contains(page, "Not ready: link 1") || !strings.Contains(page, "0.400 ms") {
		t.Fatalf("the gateway's console (%s):\n%s", resp.Request.URL.Path, page)
	}
}
