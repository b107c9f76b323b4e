// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"fmt"
	"strings"
)

// Destinations: a queue or a topic, named as STOMP names them, and
// ActiveMQ's wildcards over their names. Wildcard topics live in topic.go
// and broker.go (wildcardTopics); wildcard queue subscriptions in fanin.go.

// Kind says whether a destination is a queue (each message to one consumer)
// or a topic (each message to every subscriber).
type Kind uint8

const (
	Queue Kind = 1
	Topic Kind = 2
)

func (k Kind) String() string {
	switch k {
	case Queue:
		return "queue"
	case Topic:
		return "topic"
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Destination names a queue or a topic.
type Destination struct {
	Kind Kind
	Name string
}

// ParseDestination reads a STOMP destination: "/queue/NAME" or
// "/topic/NAME" (the prefix stripped; "/queue/a/b" is queue "a/b").
func ParseDestination(s string) (Destination, error) {
	for _, p := range []struct {
		prefix string
		kind   Kind
	}{{"/queue/", Queue}, {"/topic/", Topic}} {
		if name, ok := strings.CutPrefix(s, p.prefix); ok {
			if name == "" {
				return Destination{}, fmt.Errorf("destination %q has no name", s)
			}
			if name[0] == '$' {
				return Destination{}, fmt.Errorf("destination %q: names starting with $ are the broker's own", s)
			}
			return Destination{Kind: p.kind, Name: name}, nil
		}
	}
	return Destination{}, fmt.Errorf("destination %q must begin with /queue/ or /topic/", s)
}

func (d Destination) String() string { return "/" + d.Kind.String() + "/" + d.Name }

// IsWildcard reports whether a destination name is a wildcard pattern:
// a segment ("." separated) that is "*" or ">".
func IsWildcard(name string) bool {
	for seg := range strings.SplitSeq(name, ".") {
		if seg == "*" || seg == ">" {
			return true
		}
	}
	return false
}

// MatchDestination reports whether name matches an ActiveMQ wildcard
// pattern ("." separated; "*" one segment; ">" the rest, at the end).
func MatchDestination(pattern, name string) bool {
	ps, ns := strings.Split(pattern, "."), strings.Split(name, ".")
	for i, p := range ps {
		if p == ">" {
			return i < len(ns) // ">" needs at least one segment
		}
		if i >= len(ns) || p != "*" && p != ns[i] {
			return false
		}
	}
	return len(ps) == len(ns)
}

// private reports whether a destination name is the broker's own or a
// connection's temporary one (it starts with $, which clients cannot
// name): no wildcard subscription receives from it, so a /topic/>
// subscriber cannot read another connection's replies.
func private(name string) bool { return strings.HasPrefix(name, "$") }
