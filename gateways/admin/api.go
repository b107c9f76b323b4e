// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package admin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/gateways/stomp"
)

// The admin API, JSON under /api/v1/ (the README's "Health, metrics and
// the admin API" shows it in use):
//
//	GET    /api/v1/overview                    role, epoch, uptime, connections, memory, journal
//	GET    /api/v1/queues?sort=&order=&filter=&offset=&limit=   a page of queues (100 by default)
//	GET    /api/v1/queues/{name}               one queue's figures
//	GET    /api/v1/queues/{name}/messages?offset=&limit=         a page of what it holds in memory
//	POST   /api/v1/queues/{name}/messages      send one: {"body", "headers", "persistent", "priority"}
//	POST   /api/v1/queues/{name}/purge         remove what it holds
//	POST   /api/v1/queues/{name}/move          {"to", "message_ids", "copy"}: move (or copy) messages to another queue
//	POST   /api/v1/queues/{name}/retry         {"message_ids"}: send dead letters back to their original queues
//	DELETE /api/v1/queues/{name}               remove it (refused while consumers are attached)
//	GET    /api/v1/topics                      topics, subscribers, messages lost by slow ones
//	GET    /api/v1/durables                    durable subscriptions
//	DELETE /api/v1/durables/{client}/{name}    remove one (refused while its subscriber is connected)
//	GET    /api/v1/connections                 connected clients: user, address, version, subscriptions
//	GET    /api/v1/links                       on a gateway, its upstream links and their health
//	DELETE /api/v1/connections/{id}            close one (ERROR closed-by-admin; its unacked messages go back)
//
// Every change goes through the broker as a STOMP client's would: journaled
// before the answer. With users (Options.Users) each request needs HTTP
// Basic credentials of a user in Options.AdminGroup; without, the caller
// (cairn serve) serves the API on loopback only. Changes from a browser on
// another origin are refused (http.CrossOriginProtection), so that a page
// elsewhere cannot use an operator's logged-in browser.

// apiHandler serves /api/v1/.
type apiHandler struct {
	src     Source
	o       Options
	started time.Time
}

// newAPI returns the API's handler, the console's and ActiveMQ's XML
// feeds', behind the same logins and cross-origin protection.
func newAPI(src Source, o Options) (api, console, activemqXML http.Handler) {
	a := &apiHandler{src: src, o: o, started: time.Now()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/overview", a.overview)
	mux.HandleFunc("GET /api/v1/queues", a.withBroker(a.queues))
	mux.HandleFunc("GET /api/v1/queues/{name}", a.withBroker(a.queue))
	mux.HandleFunc("GET /api/v1/queues/{name}/messages", a.withBroker(a.browse))
	mux.HandleFunc("POST /api/v1/queues/{name}/messages", a.withBroker(a.send))
	mux.HandleFunc("POST /api/v1/queues/{name}/purge", a.withBroker(a.purge))
	mux.HandleFunc("POST /api/v1/queues/{name}/move", a.withBroker(a.move))
	mux.HandleFunc("POST /api/v1/queues/{name}/retry", a.withBroker(a.retry))
	mux.HandleFunc("DELETE /api/v1/queues/{name}", a.withBroker(a.deleteQueue))
	mux.HandleFunc("GET /api/v1/topics", a.withBroker(a.topics))
	mux.HandleFunc("GET /api/v1/durables", a.withBroker(a.durables))
	mux.HandleFunc("DELETE /api/v1/durables/{client}/{name}", a.withBroker(a.deleteDurable))
	mux.HandleFunc("GET /api/v1/connections", a.connections)
	mux.HandleFunc("GET /api/v1/links", a.links)
	mux.HandleFunc("DELETE /api/v1/connections/{id}", a.closeConnection)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "no such path: %s %s", r.Method, r.URL.Path)
	})
	return a.protect(mux), a.protect(a.console()), a.protect(a.activemqXML())
}

// protect puts h behind the logins and the cross-origin protection.
func (a *apiHandler) protect(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusForbidden, "a change from another origin is refused (cross-site request forgery protection)")
	}))
	return cop.Handler(a.authenticate(h))
}

// authenticate lets through requests of a user in the admin group (or any,
// without users).
func (a *apiHandler) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.o.APIRefused != "" {
			apiError(w, http.StatusForbidden, "%s", a.o.APIRefused)
			return
		}
		if a.o.Users == nil {
			next.ServeHTTP(w, r)
			return
		}
		login, pass, ok := r.BasicAuth()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="cairn", charset="UTF-8"`)
			apiError(w, http.StatusUnauthorized, "log in (HTTP Basic) as a user of the %q group", a.o.AdminGroup)
			return
		}
		u, err := a.o.Users.Check(login, pass)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="cairn", charset="UTF-8"`)
			apiError(w, http.StatusUnauthorized, "user name [%s] or password is invalid", login)
			return
		}
		if !slices.Contains(u.Groups, a.o.AdminGroup) {
			apiError(w, http.StatusForbidden, "user %s is not in the %q group", login, a.o.AdminGroup)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// withBroker answers 503 on a node with no broker (a standby, a gateway).
func (a *apiHandler) withBroker(h func(http.ResponseWriter, *http.Request, *core.Broker)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var b *core.Broker
		if a.src.Broker != nil {
			b = a.src.Broker()
		}
		if b == nil {
			_, why := a.ready()
			apiError(w, http.StatusServiceUnavailable, "this node has no broker to show: %s", why)
			return
		}
		h(w, r, b)
	}
}

func (a *apiHandler) ready() (bool, string) {
	if a.src.Ready == nil {
		return true, ""
	}
	return a.src.Ready()
}

// Overview is GET /api/v1/overview.
type Overview struct {
	Role        string `json:"role"`
	Epoch       uint64 `json:"epoch,omitempty"`
	Ready       bool   `json:"ready"`
	Why         string `json:"why,omitempty"` // why not ready
	Uptime      string `json:"uptime"`
	Connections int    `json:"connections"`
	// The broker's, on a master.
	Queues       int   `json:"queues"`
	Topics       int   `json:"topics"`
	Messages     int   `json:"messages"` // held by queues
	MemoryBytes  int64 `json:"memory_bytes"`
	MemoryLimit  int64 `json:"memory_limit_bytes"`
	TopicMemory  int64 `json:"topic_memory_bytes"`
	StoreBytes   int64 `json:"store_bytes"`   // persistent messages held
	JournalBytes int64 `json:"journal_bytes"` // the journal, about
	DeferredAcks int   `json:"deferred_acks"` // acks waiting for room in the journal
}

func (a *apiHandler) overview(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.overviewData())
}

func (a *apiHandler) overviewData() Overview {
	ov := Overview{Uptime: time.Since(a.started).Round(time.Second).String()}
	ov.Ready, ov.Why = a.ready()
	if a.src.Role != nil {
		ov.Role, ov.Epoch = a.src.Role()
	}
	if a.src.Connections != nil {
		ov.Connections = a.src.Connections()
	}
	if a.src.Broker != nil {
		if b := a.src.Broker(); b != nil {
			qs := b.Queues()
			ov.Queues, ov.Topics = len(qs), len(b.Topics())
			for _, q := range qs {
				ov.Messages += q.Depth()
			}
			m := b.Memory()
			ov.MemoryBytes, ov.MemoryLimit, ov.TopicMemory = m.Messages, m.Limit, m.Topics
			ov.StoreBytes, ov.JournalBytes, ov.DeferredAcks = b.StoreUsed(), b.JournalBytes(), b.DeferredAcks()
		}
	}
	return ov
}

// Queue is one queue's figures.
type Queue struct {
	Name         string `json:"name"`
	Depth        int    `json:"depth"` // pending + delayed + in flight
	Pending      int    `json:"pending"`
	Paged        int    `json:"paged"`
	Delayed      int    `json:"delayed"`
	InFlight     int    `json:"in_flight"`
	Unreadable   int    `json:"unreadable"`
	Enqueued     int    `json:"enqueued"`
	Dequeued     int    `json:"dequeued"`
	Expired      int    `json:"expired"`
	DeadLettered int    `json:"dead_lettered"`
	Consumers    int    `json:"consumers"`
	Producers    int    `json:"producers"`
	MemoryBytes  int64  `json:"memory_bytes"`
	JournalBytes int64  `json:"journal_bytes"`
}

func queueOf(st core.Stats) Queue {
	return Queue{Name: st.Destination.Name, Depth: st.Depth(), Pending: st.Pending, Paged: st.Paged, Delayed: st.Delayed,
		InFlight: st.InFlight, Unreadable: st.Unreadable, Enqueued: st.Enqueued, Dequeued: st.Dequeued, Expired: st.Expired,
		DeadLettered: st.DeadLettered, Consumers: st.Consumers, Producers: st.Producers, MemoryBytes: st.MemoryBytes,
		JournalBytes: st.JournalBytes}
}

// Page is a page of a list: Total matched, Items from Offset.
type Page[T any] struct {
	Total  int `json:"total"`
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
	Items  []T `json:"items"`
}

// page cuts items by the offset and limit query parameters (limit 100 by
// default, at most 1,000).
func page[T any](r *http.Request, items []T) (Page[T], error) {
	p := Page[T]{Total: len(items), Limit: 100}
	var err error
	if s := r.URL.Query().Get("offset"); s != "" {
		if p.Offset, err = strconv.Atoi(s); err != nil || p.Offset < 0 {
			return p, fmt.Errorf("offset %q is not a number of items from 0", s)
		}
	}
	if s := r.URL.Query().Get("limit"); s != "" {
		if p.Limit, err = strconv.Atoi(s); err != nil || p.Limit < 1 || p.Limit > 1000 {
			return p, fmt.Errorf("limit %q is not 1-1000", s)
		}
	}
	from := min(p.Offset, len(items))
	p.Items = items[from:min(from+p.Limit, len(items))]
	if p.Items == nil {
		p.Items = []T{}
	}
	return p, nil
}

// queueSorts are the orders GET /api/v1/queues takes (sort=), ascending
// here; the list is descending unless order=asc (by name: ascending unless
// order=desc), ties by name.
var queueSorts = map[string]func(a, b Queue) int{
	"name":      func(a, b Queue) int { return strings.Compare(a.Name, b.Name) },
	"depth":     func(a, b Queue) int { return a.Depth - b.Depth },
	"enqueued":  func(a, b Queue) int { return a.Enqueued - b.Enqueued },
	"dequeued":  func(a, b Queue) int { return a.Dequeued - b.Dequeued },
	"consumers": func(a, b Queue) int { return a.Consumers - b.Consumers },
	"memory":    func(a, b Queue) int { return int(a.MemoryBytes - b.MemoryBytes) },
}

func (a *apiHandler) queues(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	p, err := queuesPage(r, b)
	if err != nil {
		apiError(w, http.StatusBadRequest, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// queuesPage is the page of queues r asks for (sort, order, filter,
// offset, limit).
func queuesPage(r *http.Request, b *core.Broker) (Page[Queue], error) {
	q := r.URL.Query()
	by, order, filter := q.Get("sort"), q.Get("order"), q.Get("filter")
	if by == "" {
		by = "name"
	}
	cmp, ok := queueSorts[by]
	if !ok {
		return Page[Queue]{}, fmt.Errorf("sort %q is not one of name, depth, enqueued, dequeued, consumers, memory", by)
	}
	if order == "" && by == "name" {
		order = "asc"
	}
	if order != "" && order != "asc" && order != "desc" {
		return Page[Queue]{}, fmt.Errorf("order %q is not asc or desc", order)
	}
	var list []Queue
	for _, st := range b.Queues() {
		if filter == "" || strings.Contains(st.Destination.Name, filter) {
			list = append(list, queueOf(st))
		}
	}
	slices.SortFunc(list, func(x, y Queue) int {
		c := cmp(x, y)
		if order != "asc" {
			c = -c
		}
		if c == 0 {
			c = strings.Compare(x.Name, y.Name)
		}
		return c
	})
	return page(r, list)
}

func (a *apiHandler) queue(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	st, ok := b.QueueStats(r.PathValue("name"))
	if !ok {
		apiError(w, http.StatusNotFound, "no queue %q", r.PathValue("name"))
		return
	}
	writeJSON(w, http.StatusOK, queueOf(st))
}

// Message is one message, as browsing shows it and sending takes it.
type Message struct {
	ID          string   `json:"message_id,omitempty"`
	Destination string   `json:"destination,omitempty"`
	Persistent  bool     `json:"persistent"`
	Priority    *int     `json:"priority,omitempty"`
	Timestamp   int64    `json:"timestamp,omitempty"`
	Expires     int64    `json:"expires,omitempty"`
	Headers     []string `json:"headers,omitempty"` // name, value, name, value, ...
	Body        string   `json:"body"`
	// BodyBase64 says Body is base64 (a body that is not UTF-8).
	BodyBase64 bool `json:"body_base64,omitempty"`
}

func (a *apiHandler) browse(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	p, status, err := browsePage(r, b, r.PathValue("name"))
	if err != nil {
		apiError(w, status, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// browsePage is the page of queue name's messages that r asks for.
func browsePage(r *http.Request, b *core.Broker, name string) (Page[Message], int, error) {
	msgs, ok := b.Browse(name)
	if !ok {
		return Page[Message]{}, http.StatusNotFound, fmt.Errorf("no queue %q", name)
	}
	p, err := page(r, msgs)
	if err != nil {
		return Page[Message]{}, http.StatusBadRequest, err
	}
	out := Page[Message]{Total: p.Total, Offset: p.Offset, Limit: p.Limit, Items: []Message{}}
	for _, m := range p.Items {
		prio := int(m.Priority)
		am := Message{ID: m.ID(), Destination: m.Destination.String(), Persistent: m.Persistent, Priority: &prio,
			Timestamp: m.Timestamp, Expires: m.Expires, Headers: m.Header, Body: string(m.Body)}
		if !utf8.Valid(m.Body) {
			am.Body, am.BodyBase64 = base64.StdEncoding.EncodeToString(m.Body), true
		}
		out.Items = append(out.Items, am)
	}
	return out, http.StatusOK, nil
}

// maxSendBytes bounds a message sent through the API.
const maxSendBytes = 10 << 20

func (a *apiHandler) send(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	var in Message
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSendBytes+64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, "the body is not a message (JSON: body, headers, persistent, priority, expires): %v", err)
		return
	}
	id, status, err := sendMessage(r.Context(), b, r.PathValue("name"), in)
	if err != nil {
		apiError(w, status, "%v", err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"message_id": id})
}

// sendMessage sends in to queue, through the broker as a STOMP client's
// SEND goes, and returns its message-id.
func sendMessage(ctx context.Context, b *core.Broker, queue string, in Message) (string, int, error) {
	body := []byte(in.Body)
	if in.BodyBase64 {
		var err error
		if body, err = base64.StdEncoding.DecodeString(in.Body); err != nil {
			return "", http.StatusBadRequest, fmt.Errorf("body_base64 is set and body is not base64: %v", err)
		}
	}
	if len(in.Headers)%2 != 0 {
		return "", http.StatusBadRequest, fmt.Errorf("headers come in name, value pairs; got %d strings", len(in.Headers))
	}
	if queue == "" || strings.HasPrefix(queue, "$") || core.IsWildcard(queue) {
		return "", http.StatusBadRequest, fmt.Errorf("%q is not a queue clients can name", queue)
	}
	m := &core.Message{Destination: core.Destination{Kind: core.Queue, Name: queue}, Persistent: in.Persistent,
		Priority: 4, Expires: in.Expires, Timestamp: time.Now().UnixMilli(), Header: in.Headers, Body: body}
	if in.Priority != nil {
		if *in.Priority < 0 || *in.Priority > 9 {
			return "", http.StatusBadRequest, fmt.Errorf("priority %d is not 0-9", *in.Priority)
		}
		m.Priority = uint8(*in.Priority)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.Send(ctx, m); err != nil {
		status, msg := brokerFailure(err)
		return "", status, errors.New(msg)
	}
	return m.ID(), http.StatusOK, nil
}

// MoveRequest is the body of move and retry: which messages (all waiting
// in memory, when empty), and for move where to and whether to copy.
type MoveRequest struct {
	To         string   `json:"to,omitempty"`
	MessageIDs []string `json:"message_ids,omitempty"`
	Copy       bool     `json:"copy,omitempty"`
}

// MoveResult says how many moved, and how many of the named did not
// (in flight, delayed, paged, or not dead letters).
type MoveResult struct {
	Moved   int `json:"moved"`
	Skipped int `json:"skipped"`
}

func readMove(w http.ResponseWriter, r *http.Request) (MoveRequest, []uint64, bool) {
	var in MoveRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, "the body is not a move (JSON: to, message_ids, copy): %v", err)
		return in, nil, false
	}
	seqs, err := seqsOf(in.MessageIDs)
	if err != nil {
		apiError(w, http.StatusBadRequest, "%v", err)
		return in, nil, false
	}
	return in, seqs, true
}

// seqsOf reads message-ids (nil for none: all messages).
func seqsOf(ids []string) ([]uint64, error) {
	var seqs []uint64
	for _, id := range ids {
		seq, ok := core.ParseID(id)
		if !ok {
			return nil, fmt.Errorf("%q is not a Cairn message-id (ID:cairn-N)", id)
		}
		seqs = append(seqs, seq)
	}
	return seqs, nil
}

func (a *apiHandler) move(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	in, seqs, ok := readMove(w, r)
	if !ok {
		return
	}
	moved, skipped, err := b.MoveMessages(r.Context(), r.PathValue("name"), in.To, seqs, in.Copy)
	a.moveAnswer(w, moved, skipped, err)
}

func (a *apiHandler) retry(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	_, seqs, ok := readMove(w, r)
	if !ok {
		return
	}
	moved, skipped, err := b.RetryDeadLetters(r.Context(), r.PathValue("name"), seqs)
	a.moveAnswer(w, moved, skipped, err)
}

func (a *apiHandler) moveAnswer(w http.ResponseWriter, moved, skipped int, err error) {
	switch {
	case errors.Is(err, core.ErrNoQueue):
		apiError(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, core.ErrNotAQueue):
		apiError(w, http.StatusBadRequest, "%v", err)
	case err != nil:
		status, msg := brokerFailure(err)
		apiError(w, status, "%s (%d moved before it)", msg, moved)
	default:
		writeJSON(w, http.StatusOK, MoveResult{Moved: moved, Skipped: skipped})
	}
}

func (a *apiHandler) purge(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	if _, ok := b.QueueStats(r.PathValue("name")); !ok {
		apiError(w, http.StatusNotFound, "no queue %q", r.PathValue("name"))
		return
	}
	n, err := b.Purge(r.Context(), r.PathValue("name"))
	if err != nil {
		brokerError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"purged": n})
}

func (a *apiHandler) deleteQueue(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	if _, ok := b.QueueStats(r.PathValue("name")); !ok {
		apiError(w, http.StatusNotFound, "no queue %q", r.PathValue("name"))
		return
	}
	if err := b.DeleteQueue(r.Context(), r.PathValue("name")); err != nil {
		brokerError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Topic is one topic.
type Topic struct {
	Name        string `json:"name"`
	Subscribers int    `json:"subscribers"`
	Dropped     uint64 `json:"dropped"` // lost by slow subscribers
}

func (a *apiHandler) topics(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	p, err := topicsPage(r, b)
	if err != nil {
		apiError(w, http.StatusBadRequest, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func topicsPage(r *http.Request, b *core.Broker) (Page[Topic], error) {
	var list []Topic
	for _, t := range b.Topics() {
		list = append(list, Topic{Name: t.Name, Subscribers: t.Subscribers, Dropped: t.Dropped})
	}
	return page(r, list)
}

// Durable is one durable subscription.
type Durable struct {
	ClientID     string     `json:"client_id"`
	Name         string     `json:"name"`
	Topic        string     `json:"topic"`
	Active       bool       `json:"active"`
	OfflineSince *time.Time `json:"offline_since,omitempty"`
	Pending      int        `json:"pending"`
}

func (a *apiHandler) durables(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	p, err := durablesPage(r, b)
	if err != nil {
		apiError(w, http.StatusBadRequest, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func durablesPage(r *http.Request, b *core.Broker) (Page[Durable], error) {
	var list []Durable
	for _, d := range b.Durables() {
		dd := Durable{ClientID: d.ClientID, Name: d.Name, Topic: d.Topic, Active: d.Active, Pending: d.Stats.Depth()}
		if !d.OfflineSince.IsZero() {
			t := d.OfflineSince
			dd.OfflineSince = &t
		}
		list = append(list, dd)
	}
	slices.SortFunc(list, func(x, y Durable) int {
		return strings.Compare(x.ClientID+"\x00"+x.Name, y.ClientID+"\x00"+y.Name)
	})
	return page(r, list)
}

func (a *apiHandler) deleteDurable(w http.ResponseWriter, r *http.Request, b *core.Broker) {
	client, name := r.PathValue("client"), r.PathValue("name")
	found := false
	for _, d := range b.Durables() {
		found = found || d.ClientID == client && d.Name == name
	}
	if !found {
		apiError(w, http.StatusNotFound, "no durable subscription %q of client-id %q", name, client)
		return
	}
	if err := b.UnsubscribeDurable(r.Context(), client, name); err != nil {
		brokerError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *apiHandler) links(w http.ResponseWriter, r *http.Request) {
	if a.src.Links == nil {
		apiError(w, http.StatusNotImplemented, "this node has no upstream links (it is not a gateway)")
		return
	}
	writeJSON(w, http.StatusOK, a.src.Links())
}

func (a *apiHandler) connections(w http.ResponseWriter, r *http.Request) {
	p, status, err := a.connectionsPage(r)
	if err != nil {
		apiError(w, status, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (a *apiHandler) connectionsPage(r *http.Request) (Page[stomp.ConnInfo], int, error) {
	if a.src.Conns == nil {
		return Page[stomp.ConnInfo]{}, http.StatusNotImplemented, errors.New("this node does not list its connections")
	}
	p, err := page(r, a.src.Conns())
	if err != nil {
		return p, http.StatusBadRequest, err
	}
	return p, http.StatusOK, nil
}

// closeConn closes connection id, and says what happened.
func (a *apiHandler) closeConn(id string) (int, error) {
	switch {
	case a.src.CloseConn == nil:
		return http.StatusNotImplemented, errors.New("this node does not close connections")
	case !a.src.CloseConn(id):
		return http.StatusNotFound, fmt.Errorf("no connection %q", id)
	}
	return http.StatusNoContent, nil
}

func (a *apiHandler) closeConnection(w http.ResponseWriter, r *http.Request) {
	status, err := a.closeConn(r.PathValue("id"))
	if err != nil {
		apiError(w, status, "%v", err)
		return
	}
	w.WriteHeader(status)
}

// brokerFailure is the status and message for err from the broker: a
// conflict for what the broker refuses as the queue's state stands, 503
// for a store that cannot take it; no journal detail (paths, I/O errors)
// leaves the process.
func brokerFailure(err error) (int, string) {
	switch {
	case errors.Is(err, core.ErrInUse), errors.Is(err, core.ErrDurableInUse):
		return http.StatusConflict, err.Error()
	case errors.Is(err, core.ErrNoDurable):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, core.ErrStoreFull):
		return http.StatusServiceUnavailable, err.Error()
	case errors.Is(err, core.ErrClosed):
		return http.StatusServiceUnavailable, "the broker is shutting down"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "the broker did not take it within 30s (memory or store limit)"
	}
	return http.StatusInternalServerError, "the message store failed; the broker's log has the detail"
}

func brokerError(w http.ResponseWriter, err error) {
	status, msg := brokerFailure(err)
	apiError(w, status, "%s", msg)
}

func apiError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
