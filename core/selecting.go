// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package core

import (
	"strconv"

	"github.com/cairnmq/cairn/core/selector"
)

// selecting shows a message to a selector: its headers by name, and the
// JMS header names ActiveMQ's selectors use for its fields.
type selecting struct{ m *Message }

func (s selecting) Header(name string) (string, bool) {
	m := s.m
	switch name {
	case "JMSPriority":
		return strconv.Itoa(int(m.Priority)), true
	case "JMSTimestamp":
		return strconv.FormatInt(m.Timestamp, 10), true
	case "JMSExpiration":
		return strconv.FormatInt(m.Expires, 10), true
	case "JMSMessageID":
		return m.ID(), true
	case "JMSDeliveryMode":
		if m.Persistent {
			return "PERSISTENT", true
		}
		return "NON_PERSISTENT", true
	case "JMSDestination":
		return m.Destination.String(), true
	case "JMSCorrelationID":
		name = "correlation-id"
	case "JMSType":
		name = "type"
	case "JMSReplyTo":
		name = "reply-to"
	}
	for i := 0; i+1 < len(m.Header); i += 2 {
		if m.Header[i] == name {
			return m.Header[i+1], true
		}
	}
	return "", false
}

// matches reports whether s's selector (if any) accepts m.
func (s *Subscription) matches(m *Message) bool {
	return s.selector == nil || s.selector.Match(selecting{m})
}

var _ selector.Message = selecting{}
