// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// CONNECT and STOMP: version and heart-beat negotiation.

package stomp

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairnmq/cairn/core"
	"github.com/cairnmq/cairn/gateways/auth"
	"github.com/go-stomp/stomp/v3/frame"
)

var versions = []string{"1.0", "1.1", "1.2"}

func (ss *session) connect(f *frame.Frame) error {
	if ss.connected {
		return perr(CodeAlreadyConnected, "a second CONNECT on one connection")
	}
	version := "1.0"
	if av, ok := f.Header.Contains(frame.AcceptVersion); ok {
		version = ""
		for _, v := range strings.Split(av, ",") {
			v = strings.TrimSpace(v)
			if slices.Contains(versions, v) && v > version {
				version = v
			}
		}
		if version == "" {
			// The specification's negotiation: say what the server speaks.
			return &protocolError{code: CodeBadVersion, msg: fmt.Sprintf("none of the versions %q is supported (1.0, 1.1, 1.2)", av),
				header: []string{frame.Version, strings.Join(versions, ",")}}
		}
	}
	cx, cy := 0, 0
	if hb, ok := f.Header.Contains(frame.HeartBeat); ok && version != "1.0" {
		x, y, err := parseHeartBeat(hb)
		if err != nil {
			return err
		}
		cx, cy = x, y
	}
	// cx: the client sends every cx ms; cy: it wants ours every cy ms.
	min := int(ss.srv.opts.HeartBeat / time.Millisecond)
	send, recv := 0, 0
	if cy > 0 {
		send = max(cy, min)
	}
	if cx > 0 {
		recv = max(cx, min)
	}
	if err := ss.authenticate(f); err != nil {
		return err
	}
	clientID := f.Header.Get("client-id")
	if err := ss.srv.admit(ss, clientID); err != nil {
		return err
	}
	ss.version = version
	ss.r.version = version
	ss.connected = true
	ss.clientID = clientID
	ss.info.Store(&ConnInfo{ID: ss.id, Remote: ss.conn.RemoteAddr().String(), User: ss.user, ClientID: clientID, Version: version,
		Since: time.Now()})
	ss.readEvery = time.Duration(recv) * time.Millisecond
	resp := frame.New(frame.CONNECTED, frame.Version, version, frame.Session, ss.id,
		frame.Server, ss.srv.opts.ServerName, frame.HeartBeat, fmt.Sprintf("%d,%d", send, recv))
	if r := f.Header.Get(frame.Receipt); r != "" {
		resp.Header.Add(frame.ReceiptId, r)
	}
	if r := f.Header.Get("request-id"); r != "" {
		resp.Header.Add("response-id", r) // as ActiveMQ does
	}
	if ch := ss.srv.opts.ConnectedHeaders; ch != nil {
		h := ch()
		for i := 0; i+1 < len(h); i += 2 {
			resp.Header.Add(h[i], h[i+1])
		}
	}
	ss.outMu.Lock()
	ss.sendEvery = time.Duration(send) * time.Millisecond
	if ss.sendEvery > 0 && !ss.closing {
		ss.beats = time.AfterFunc(ss.sendEvery/2, ss.beat)
	}
	ss.outMu.Unlock()
	ss.reply(resp)
	return nil
}

func parseHeartBeat(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, ",")
	x, err1 := strconv.Atoi(strings.TrimSpace(a))
	y, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || x < 0 || y < 0 {
		return 0, 0, perr(CodeMalformedFrame, "heart-beat %q is not two numbers", s)
	}
	return x, y, nil
}

// authenticate checks CONNECT's login and passcode against the users, if
// the server has any. A refusal is slowed down for an address that keeps
// failing; the log names the user and the address, never the passcode.
func (ss *session) authenticate(f *frame.Frame) error {
	users := ss.srv.opts.Users
	if cn, ok := ss.certUser(); ok {
		if users == nil {
			ss.user = cn
			return nil
		}
		if groups, known := users.Groups(cn); known {
			ss.user, ss.groups = cn, groups
			return nil
		}
		ss.srv.opts.Logger.Warn("stomp: a client certificate names no user of the users file", "session", ss.id, "user", cn, "addr", ss.conn.RemoteAddr().String())
		return perr(CodeBadCredentials, "the client certificate's name %q is not a user", cn)
	}
	if users == nil {
		return nil
	}
	login, _ := f.Header.Contains(frame.Login)
	if login == "" {
		if ss.srv.opts.AllowAnonymous {
			ss.groups = []string{auth.Anonymous}
			return nil
		}
		ss.refuseLogin(login)
		return perr(CodeBadCredentials, "a login is required")
	}
	// An address that keeps failing waits before its password is even
	// hashed: a guesser costs its own time, not the broker's CPU.
	if d := ss.srv.loginDelay(ss.addr); d > 0 {
		time.Sleep(d)
	}
	u, err := users.Check(login, f.Header.Get(frame.Passcode))
	if err == nil {
		ss.srv.loginSucceeded(ss.addr)
		ss.user, ss.groups = u.Name, u.Groups
		return nil
	}
	ss.refuseLogin(login)
	return perr(CodeBadCredentials, "User name [%s] or password is invalid.", login)
}

// refuseLogin counts and logs a refused login, naming the user, never the
// passcode.
func (ss *session) refuseLogin(login string) {
	ss.srv.loginFailed(ss.addr)
	ss.srv.opts.Logger.Warn("stomp: login refused", "session", ss.id, "user", login, "addr", ss.conn.RemoteAddr().String())
}

// allowed says whether the session's user may do op on d: always without
// users, and always on a temporary destination (its name makes it its
// owner's); otherwise as the users file's authorization entries say.
func (ss *session) allowed(op auth.Op, d core.Destination) error {
	users := ss.srv.opts.Users
	if users == nil || strings.HasPrefix(d.Name, "$temp:") {
		return nil
	}
	if users.Allowed(ss.groups, op, d.Kind.String(), d.Name) {
		return nil
	}
	who := ss.user
	if who == "" {
		who = auth.Anonymous
	}
	verb := map[auth.Op]string{auth.Read: "read from", auth.Write: "write to", auth.Admin: "administer"}[op]
	return perr(CodeAccessDenied, "User %s is not authorized to %s: %s://%s", who, verb, d.Kind, d.Name)
}

// certUser is the common name of the connection's verified client
// certificate, when certificates name users (Options.CertUsers).
func (ss *session) certUser() (string, bool) {
	tc, ok := ss.conn.(*tls.Conn)
	if !ok || !ss.srv.opts.CertUsers {
		return "", false
	}
	st := tc.ConnectionState()
	if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return "", false
	}
	cn := st.VerifiedChains[0][0].Subject.CommonName
	return cn, cn != ""
}
