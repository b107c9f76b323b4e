// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package brokerbench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
)

// The run with go-stomp v3.1.5 clients (Options.Client "go-stomp"): what
// users of that library get, beside the lean generator's figures. Each
// producer and consumer is one go-stomp connection at its default options,
// or with both its channels GoStompChannels deep.

func (o *Options) dialGoStomp(addr string) (*gostomp.Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	opts := []func(*gostomp.Conn) error{gostomp.ConnOpt.HeartBeat(0, 0), gostomp.ConnOpt.MsgSendTimeout(10 * time.Second),
		gostomp.ConnOpt.RcvReceiptTimeout(10 * time.Second)}
	if o.Host != "" {
		opts = append(opts, gostomp.ConnOpt.Host(o.Host))
	}
	if o.Login != "" {
		opts = append(opts, gostomp.ConnOpt.Login(o.Login, o.Passcode))
	}
	if o.GoStompChannels > 0 {
		opts = append(opts, gostomp.ConnOpt.ReadChannelCapacity(o.GoStompChannels), gostomp.ConnOpt.WriteChannelCapacity(o.GoStompChannels))
	}
	c, err := gostomp.Connect(nc, opts...)
	if err != nil {
		nc.Close()
	}
	return c, err
}

// goStompConsumer subscribes on a go-stomp connection and, in a goroutine,
// receives (and acks) until stop is closed or the subscription fails.
func (o *Options) goStompConsumer(cn *consumer, id int, stop <-chan struct{}) error {
	c, err := o.dialGoStomp(o.consumerAddr())
	if err != nil {
		return err
	}
	mode := map[string]gostomp.AckMode{"auto": gostomp.AckAuto, "client": gostomp.AckClient,
		"client-individual": gostomp.AckClientIndividual}[o.AckMode]
	var opts []func(*frame.Frame) error
	if o.Prefetch > 0 {
		opts = append(opts, gostomp.SubscribeOpt.Header("activemq.prefetchSize", fmt.Sprint(o.Prefetch)))
	}
	if o.Selector != "" {
		opts = append(opts, gostomp.SubscribeOpt.Header("selector", o.Selector))
	}
	sub, err := c.Subscribe(o.Destination, mode, opts...)
	if err != nil {
		c.MustDisconnect()
		return err
	}
	cn.closeConn = func() { c.MustDisconnect() }
	// go-stomp's Subscribe does not wait for the broker: a topic's first
	// messages could pass before the SUBSCRIBE is read. A broker answers a
	// connection's frames in order, so a RECEIPT for a SEND behind it
	// means the subscription is in place before any producer starts.
	if err := c.Send(barrierTopic, "text/plain", nil, gostomp.SendOpt.Receipt); err != nil {
		c.MustDisconnect()
		return fmt.Errorf("subscribe barrier: %w", err)
	}
	go func() {
		defer cn.done.Store(true)
		for {
			var m *gostomp.Message
			select {
			case m = <-sub.C:
			case <-stop:
				return
			}
			if m == nil {
				return
			}
			if m.Err != nil {
				select {
				case <-stop:
				default:
					cn.err = m.Err
				}
				return
			}
			if len(m.Body) != o.Size || len(m.Body) < 24 {
				cn.err = fmt.Errorf("a MESSAGE with a %d-byte body, not %d", len(m.Body), o.Size)
				return
			}
			now := time.Now().UnixNano()
			cn.lats = append(cn.lats, time.Duration(now-int64(binary.LittleEndian.Uint64(m.Body))))
			cn.keys = append(cn.keys, binary.LittleEndian.Uint64(m.Body[8:])<<32|binary.LittleEndian.Uint64(m.Body[16:]))
			if mode != gostomp.AckAuto {
				if err := c.Ack(m); err != nil {
					cn.err = fmt.Errorf("ack: %w", err)
					return
				}
			}
			cn.received.Add(1)
			cn.lastRecv.Store(now)
		}
	}()
	return nil
}

// goStompProducer sends n messages (or until deadline) on one go-stomp
// connection; it returns how many it sent.
func (o *Options) goStompProducer(p, n int, deadline time.Time, sent func()) error {
	c, err := o.dialGoStomp(o.Addr)
	if err != nil {
		return err
	}
	defer c.Disconnect() // waits for its RECEIPT: the broker has every SEND
	body := make([]byte, o.Size)
	for i := range o.Size - 24 {
		body[24+i] = byte('a' + i%26)
	}
	var opts []func(*frame.Frame) error
	if o.Persistent {
		opts = append(opts, gostomp.SendOpt.Header("persistent", "true"))
	}
	if o.Selector != "" {
		opts = append(opts, gostomp.SendOpt.Header("kind", "order"), gostomp.SendOpt.Header("amount", "150"), gostomp.SendOpt.Header("region", "eu"))
	}
	if o.Receipt {
		opts = append(opts, gostomp.SendOpt.Receipt)
	}
	for i := 0; ; i++ {
		if o.Count > 0 && i >= n || o.Count == 0 && time.Now().After(deadline) {
			return nil
		}
		// go-stomp writes the body after Send returns: each SEND its own.
		b := append([]byte(nil), body...)
		binary.LittleEndian.PutUint64(b, uint64(time.Now().UnixNano()))
		binary.LittleEndian.PutUint64(b[8:], uint64(p))
		binary.LittleEndian.PutUint64(b[16:], uint64(i))
		if err := c.Send(o.Destination, "application/octet-stream", b, opts...); err != nil {
			return fmt.Errorf("after %d sends: %w", i, err)
		}
		sent()
	}
}

// barrierTopic has no subscribers: a SEND to it stores nothing.
const barrierTopic = "/topic/cairn.bench.barrier"

var errUnknownClient = errors.New(`--client is "lean" or "go-stomp"`)
