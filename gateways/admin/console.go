// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package admin

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cairnmq/cairn/core"
)

// The web console, under /console/: server-rendered pages (html/template,
// no script, no build step) of the same data as the API, with forms for
// what an operator does by hand: send a message, purge or delete a queue,
// remove a durable subscription. It takes the API's logins and its
// cross-origin protection; every list pages from the start.

//go:embed console/*.html
var consoleFS embed.FS

var consoleFuncs = template.FuncMap{
	"bytes": func(n int64) string {
		switch {
		case n >= 1<<30:
			return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
		case n >= 1<<20:
			return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
		case n >= 1<<10:
			return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
		}
		return fmt.Sprintf("%d B", n)
	},
	"even": func(i int) bool { return i%2 == 0 },
	"ms":   func(seconds float64) float64 { return seconds * 1000 },
	"short": func(s string) string {
		if len(s) > 512 {
			return s[:512] + "…"
		}
		return s
	},
	"sortURL": func(q queuesQuery, by string) string {
		order := "desc"
		if by == "name" {
			order = "asc"
		}
		if q.Sort == by || q.Sort == "" && by == "name" {
			order = map[string]string{"asc": "desc", "desc": "asc", "": "desc"}[q.Order]
		}
		v := url.Values{"sort": {by}, "order": {order}}
		if q.Filter != "" {
			v.Set("filter", q.Filter)
		}
		return "/console/queues?" + v.Encode()
	},
}

var consolePages = func() map[string]*template.Template {
	m := map[string]*template.Template{}
	for _, p := range []string{"overview", "queues", "queue", "topics", "durables", "connections", "links"} {
		m[p] = template.Must(template.New("").Funcs(consoleFuncs).ParseFS(consoleFS, "console/layout.html", "console/pager.html", "console/"+p+".html"))
	}
	return m
}()

// view is what a console page renders.
type view struct {
	Title, Page, Node string
	Flash, Error      string
	Name              string // the queue a queue page shows
	Query             queuesQuery
	Data              any
	Pager             *pager
	Chart             *Chart // the last hour, where the node samples (Options.Samples)
}

// chart is name's chart ("" for the broker's), if the node samples.
func (a *apiHandler) chart(name string) *Chart {
	if a.o.Samples == nil {
		return nil
	}
	c, ok := a.o.Samples.chart(name)
	if !ok {
		return nil
	}
	return &c
}

type queuesQuery struct{ Sort, Order, Filter string }

// pager links a list's pages.
type pager struct {
	From, To, Total int
	Prev, Next      string
}

func pagerOf[T any](r *http.Request, p Page[T]) *pager {
	pg := &pager{From: min(p.Offset+1, p.Total), To: p.Offset + len(p.Items), Total: p.Total}
	link := func(offset int) string {
		v := r.URL.Query()
		v.Set("offset", strconv.Itoa(offset))
		v.Del("done")
		return r.URL.Path + "?" + v.Encode()
	}
	if p.Offset > 0 {
		pg.Prev = link(max(0, p.Offset-p.Limit))
	}
	if p.Offset+len(p.Items) < p.Total {
		pg.Next = link(p.Offset + p.Limit)
	}
	return pg
}

func (a *apiHandler) console() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /console/{$}", a.consoleOverview)
	mux.HandleFunc("GET /console/queues", a.withBrokerPage(a.consoleQueues))
	mux.HandleFunc("GET /console/queues/{name}", a.withBrokerPage(a.consoleQueue))
	mux.HandleFunc("POST /console/queues/{name}/send", a.withBrokerPage(a.consoleSend))
	mux.HandleFunc("POST /console/queues/{name}/purge", a.withBrokerPage(a.consolePurge))
	mux.HandleFunc("POST /console/queues/{name}/delete", a.withBrokerPage(a.consoleDelete))
	mux.HandleFunc("POST /console/queues/{name}/move", a.withBrokerPage(a.consoleMove))
	mux.HandleFunc("POST /console/queues/{name}/retry", a.withBrokerPage(a.consoleRetry))
	mux.HandleFunc("GET /console/topics", a.withBrokerPage(a.consoleTopics))
	mux.HandleFunc("GET /console/durables", a.withBrokerPage(a.consoleDurables))
	mux.HandleFunc("POST /console/durables/{client}/{name}/delete", a.withBrokerPage(a.consoleDeleteDurable))
	mux.HandleFunc("GET /console/connections", a.consoleConnections)
	mux.HandleFunc("GET /console/links", a.consoleLinks)
	mux.HandleFunc("POST /console/connections/{id}/close", a.consoleCloseConnection)
	mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		a.render(w, r, http.StatusNotFound, "overview", view{Title: "Not found", Error: "No such page: " + r.URL.Path, Data: a.overviewData()})
	})
	return mux
}

// render writes page with v; the node's role and the flash message (a
// change's outcome, carried in ?done=) are filled in.
func (a *apiHandler) render(w http.ResponseWriter, r *http.Request, status int, page string, v view) {
	v.Page = page
	if a.src.Role != nil {
		role, epoch := a.src.Role()
		v.Node = role
		if epoch > 0 {
			v.Node += fmt.Sprintf(", epoch %d", epoch)
		}
	}
	if v.Flash == "" {
		v.Flash = r.URL.Query().Get("done")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	if err := consolePages[page].ExecuteTemplate(w, "layout", v); err != nil {
		fmt.Fprintf(w, "<p>the page failed to render</p>")
	}
}

// withBrokerPage is withBroker for pages.
func (a *apiHandler) withBrokerPage(h func(http.ResponseWriter, *http.Request, *core.Broker)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var b *core.Broker
		if a.src.Broker != nil {
			b = a.src.Broker()
		}
		if b == nil {
			_, why := a.ready()
			a.render(w, r, http.StatusServiceUnavailable, "overview", view{Title: "Overview", Error: "This node has no broker to show: " + why, Data: a.overviewData()})
			return
		}
		h(w, r, b)
	}
}

// done redirects to path (303, so a reload does not post again), saying
// what was done.
func done(w http.ResponseWriter, r *http.Request, path, what string) {
	http.Redirect(w, r, path+"?"+url.Values{"done": {what}}.Encode(), http.StatusSeeOther)
}

func (a *apiHandler) consoleOverview(w http.ResponseWriter, r *http.Request) {
	if a.src.Links != nil && (a.src.Broker == nil || a.src.Broker() == nil) {
		http.Redirect(w, r, "/console/links", http.StatusSeeOther) // a gateway: its links are its state
		return
	}
	a.render(w, r, http.StatusOK, "overview", view{Title: "Overview", Data: a.overviewData(), Chart: a.chart("")})
}

func (a *apiHandler) consoleLinks(w http.ResponseWriter, r *http.Request) {
	v := view{Title: "Upstream links"}
	if a.src.Links == nil {
		v.Error = "This node has no upstream links (it is not a gateway)."
		a.render(w, r, http.StatusNotFound, "links", v)
		return
	}
	v.Data = a.src.Links()
	if ok, why := a.ready(); !ok {
		v.Error = "Not ready: " + why
	}
	a.render(w, r, http.StatusOK, "links", v)
}

func (a *apiHandler) consoleQueues(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	q := r.URL.Query()
	v := view{Title: "Queues", Query: queuesQuery{Sort: q.Get("sort"), Order: q.Get("order"), Filter: q.Get("filter")}}
	p, err := queuesPage(r, b)
	if err != nil {
		v.Error = err.Error()
		a.render(w, r, http.StatusBadRequest, "queues", v)
		return
	}
	v.Data, v.Pager = p, pagerOf(r, p)
	a.render(w, r, http.StatusOK, "queues", v)
}

type queueView struct {
	Queue    Queue
	Messages Page[Message]
}

func (a *apiHandler) consoleQueue(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	name := r.PathValue("name")
	v := view{Title: "Queue " + name, Name: name}
	st, ok := b.QueueStats(name)
	if !ok {
		v.Error = fmt.Sprintf("There is no queue %q.", name)
		a.render(w, r, http.StatusNotFound, "queue", v)
		return
	}
	msgs, status, err := browsePage(r, b, name)
	if err != nil {
		v.Error = err.Error()
		a.render(w, r, status, "queue", v)
		return
	}
	v.Data, v.Pager, v.Chart = queueView{Queue: queueOf(st), Messages: msgs}, pagerOf(r, msgs), a.chart(name)
	a.render(w, r, http.StatusOK, "queue", v)
}

func (a *apiHandler) consoleSend(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	name := r.PathValue("name")
	r.Body = http.MaxBytesReader(w, r.Body, maxSendBytes+64<<10)
	if err := r.ParseForm(); err != nil {
		a.render(w, r, http.StatusBadRequest, "queue", view{Title: "Queue " + name, Name: name, Error: "The form did not parse: " + err.Error()})
		return
	}
	in := Message{Body: r.PostForm.Get("body"), Persistent: r.PostForm.Get("persistent") == "true"}
	if p := strings.TrimSpace(r.PostForm.Get("priority")); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			a.render(w, r, http.StatusBadRequest, "queue", view{Title: "Queue " + name, Name: name, Error: fmt.Sprintf("Priority %q is not a number 0-9.", p)})
			return
		}
		in.Priority = &n
	}
	for line := range strings.SplitSeq(r.PostForm.Get("headers"), "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) == "" {
			a.render(w, r, http.StatusBadRequest, "queue", view{Title: "Queue " + name, Name: name, Error: fmt.Sprintf("Header line %q is not name:value.", line)})
			return
		}
		in.Headers = append(in.Headers, strings.TrimSpace(k), strings.TrimSpace(v))
	}
	id, status, err := sendMessage(r.Context(), b, name, in)
	if err != nil {
		a.render(w, r, status, "queue", view{Title: "Queue " + name, Name: name, Error: err.Error()})
		return
	}
	done(w, r, "/console/queues/"+url.PathEscape(name), "Sent "+id+".")
}

func (a *apiHandler) consolePurge(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	name := r.PathValue("name")
	n, err := b.Purge(r.Context(), name)
	if err != nil {
		_, msg := brokerFailure(err)
		done(w, r, "/console/queues/"+url.PathEscape(name), "The purge failed: "+msg)
		return
	}
	done(w, r, "/console/queues/"+url.PathEscape(name), fmt.Sprintf("Purged %d messages.", n))
}

func (a *apiHandler) consoleDelete(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	name := r.PathValue("name")
	if err := b.DeleteQueue(r.Context(), name); err != nil {
		_, msg := brokerFailure(err)
		done(w, r, "/console/queues/"+url.PathEscape(name), "The queue was not deleted: "+msg)
		return
	}
	done(w, r, "/console/queues", fmt.Sprintf("Deleted queue %s.", name))
}

func (a *apiHandler) consoleTopics(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	p, err := topicsPage(r, b)
	v := view{Title: "Topics", Data: p, Pager: pagerOf(r, p)}
	if err != nil {
		v.Error = err.Error()
	}
	a.render(w, r, http.StatusOK, "topics", v)
}

func (a *apiHandler) consoleDurables(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	p, err := durablesPage(r, b)
	v := view{Title: "Durable subscriptions", Data: p, Pager: pagerOf(r, p)}
	if err != nil {
		v.Error = err.Error()
	}
	a.render(w, r, http.StatusOK, "durables", v)
}

func (a *apiHandler) consoleDeleteDurable(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	client, name := r.PathValue("client"), r.PathValue("name")
	if err := b.UnsubscribeDurable(r.Context(), client, name); err != nil {
		_, msg := brokerFailure(err)
		done(w, r, "/console/durables", "Not removed: "+msg)
		return
	}
	done(w, r, "/console/durables", fmt.Sprintf("Removed %s of client-id %s.", name, client))
}

func (a *apiHandler) consoleConnections(w http.ResponseWriter, r *http.Request) {
	p, status, err := a.connectionsPage(r)
	v := view{Title: "Connections", Data: p, Pager: pagerOf(r, p)}
	if err != nil {
		v.Error = err.Error()
	}
	a.render(w, r, status, "connections", v)
}

func (a *apiHandler) consoleCloseConnection(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := a.closeConn(id); err != nil {
		done(w, r, "/console/connections", "Not closed: "+err.Error())
		return
	}
	done(w, r, "/console/connections", "Closed "+id+".")
}

func (a *apiHandler) consoleMove(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	name := r.PathValue("name")
	r.ParseForm()
	to, keep := strings.TrimSpace(r.PostForm.Get("to")), r.PostForm.Get("copy") == "true"
	moved, _, err := b.MoveMessages(r.Context(), name, to, nil, keep)
	verb := "Moved"
	if keep {
		verb = "Copied"
	}
	if err != nil {
		msg := err.Error()
		if !errors.Is(err, core.ErrNotAQueue) {
			_, msg = brokerFailure(err)
		}
		done(w, r, "/console/queues/"+url.PathEscape(name), fmt.Sprintf("%s %d, then: %s", verb, moved, msg))
		return
	}
	done(w, r, "/console/queues/"+url.PathEscape(name), fmt.Sprintf("%s %d messages to %s.", verb, moved, to))
}

func (a *apiHandler) consoleRetry(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	name := r.PathValue("name")
	moved, _, err := b.RetryDeadLetters(r.Context(), name, nil)
	if err != nil {
		_, msg := brokerFailure(err)
		done(w, r, "/console/queues/"+url.PathEscape(name), fmt.Sprintf("Sent %d back, then: %s", moved, msg))
		return
	}
	done(w, r, "/console/queues/"+url.PathEscape(name), fmt.Sprintf("Sent %d dead letters back to their queues.", moved))
}
