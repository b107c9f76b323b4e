// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package bridge

import (
	"fmt"
	"net"
	"strings"
)

// ParseUpstream reads an upstream list: host:port addresses separated by
// commas, or ActiveMQ's failover URI,
// failover:(tcp://a:61613,tcp://b:61613)?randomize=false. The order is
// kept (a gateway tries the first first, as ActiveMQ does with
// randomize=false); options after ? are accepted and ignored.
func ParseUpstream(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "failover:"); ok {
		rest, _, _ = strings.Cut(rest, "?")
		if strings.HasPrefix(rest, "(") {
			if !strings.HasSuffix(rest, ")") {
				return nil, fmt.Errorf("upstream %q: a failover list opened with ( is not closed", s)
			}
			rest = rest[1 : len(rest)-1]
		}
		s = rest
	}
	var addrs []string
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		for _, scheme := range []string{"tcp://", "stomp://"} {
			a = strings.TrimPrefix(a, scheme)
		}
		a, _, _ = strings.Cut(a, "?")
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("upstream %q: %v", a, err)
		}
		addrs = append(addrs, a)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("upstream %q names no broker", s)
	}
	return addrs, nil
}
