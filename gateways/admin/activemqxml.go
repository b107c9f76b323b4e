// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package admin

import (
	"encoding/xml"
	"net/http"

	"github.com/cairnmq/cairn/core"
)

// The XML feeds ActiveMQ's console serves and monitoring tools scrape
// (Telegraf's activemq input reads /admin/xml/queues.jsp, topics.jsp and
// subscribers.jsp), in the same shape, so that existing dashboards keep
// working when a broker moves to Cairn. They take the API's logins (as
// ActiveMQ's /admin/* takes its admins group's).

type xmlStats struct {
	Size          int    `xml:"size,attr"`
	ConsumerCount int    `xml:"consumerCount,attr"`
	EnqueueCount  uint64 `xml:"enqueueCount,attr"`
	DequeueCount  uint64 `xml:"dequeueCount,attr"`
}

type xmlDest struct {
	Name  string   `xml:"name,attr"`
	Stats xmlStats `xml:"stats"`
}

type xmlQueues struct {
	XMLName xml.Name  `xml:"queues"`
	Queues  []xmlDest `xml:"queue"`
}

type xmlTopics struct {
	XMLName xml.Name  `xml:"topics"`
	Topics  []xmlDest `xml:"topic"`
}

type xmlSubscriber struct {
	ClientID         string `xml:"clientId,attr"`
	SubscriptionName string `xml:"subscriptionName,attr"`
	ConnectionID     string `xml:"connectionId,attr"`
	DestinationName  string `xml:"destinationName,attr"`
	Selector         string `xml:"selector,attr"`
	Active           string `xml:"active,attr"`
	Stats            struct {
		PendingQueueSize    int `xml:"pendingQueueSize,attr"`
		DispatchedQueueSize int `xml:"dispatchedQueueSize,attr"`
		DispatchedCounter   int `xml:"dispatchedCounter,attr"`
		EnqueueCounter      int `xml:"enqueueCounter,attr"`
		DequeueCounter      int `xml:"dequeueCounter,attr"`
	} `xml:"stats"`
}

type xmlSubscribers struct {
	XMLName     xml.Name        `xml:"subscribers"`
	Subscribers []xmlSubscriber `xml:"subscriber"`
}

func (a *apiHandler) activemqXML() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/xml/queues.jsp", a.withBroker(func(w http.ResponseWriter, r *http.Request, b *core.Broker) {
		var out xmlQueues
		for _, st := range b.Queues() {
			out.Queues = append(out.Queues, xmlDest{Name: st.Destination.Name, Stats: xmlStats{Size: st.Depth(), ConsumerCount: st.Consumers,
				EnqueueCount: uint64(st.Enqueued), DequeueCount: uint64(st.Dequeued)}})
		}
		writeXML(w, out)
	}))
	mux.HandleFunc("GET /admin/xml/topics.jsp", a.withBroker(func(w http.ResponseWriter, r *http.Request, b *core.Broker) {
		var out xmlTopics
		for _, t := range b.Topics() {
			// A topic keeps nothing: its size is 0, as ActiveMQ's usually is.
			out.Topics = append(out.Topics, xmlDest{Name: t.Name, Stats: xmlStats{ConsumerCount: t.Subscribers,
				EnqueueCount: t.Published, DequeueCount: t.Acknowledged}})
		}
		writeXML(w, out)
	}))
	mux.HandleFunc("GET /admin/xml/subscribers.jsp", a.withBroker(func(w http.ResponseWriter, r *http.Request, b *core.Broker) {
		var out xmlSubscribers
		for _, d := range b.Durables() {
			s := xmlSubscriber{ClientID: d.ClientID, SubscriptionName: d.Name, DestinationName: d.Topic, Active: "no"}
			if d.Active {
				s.Active = "yes"
			}
			s.Stats.PendingQueueSize, s.Stats.DispatchedQueueSize = d.Stats.Pending, d.Stats.InFlight
			// Cairn does not count dispatches: acknowledged and in flight.
			s.Stats.DispatchedCounter = d.Stats.Dequeued + d.Stats.InFlight
			s.Stats.EnqueueCounter, s.Stats.DequeueCounter = d.Stats.Enqueued, d.Stats.Dequeued
			out.Subscribers = append(out.Subscribers, s)
		}
		writeXML(w, out)
	}))
	return mux
}

func writeXML(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	b, err := xml.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "the feed failed to render", http.StatusInternalServerError)
		return
	}
	w.Write([]byte(xml.Header))
	w.Write(b)
	w.Write([]byte("\n"))
}
