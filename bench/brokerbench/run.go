// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package brokerbench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// consumer is one consuming connection and what it saw. Each consumer keeps
// its own tallies, merged after the run: nothing is shared per message.
type consumer struct {
	c         *client // the lean client's (nil with go-stomp)
	closeConn func()  // go-stomp's
	received  atomic.Int64
	lastRecv  atomic.Int64 // unix nanos of its last delivery
	keys      []uint64     // producer<<32 | sequence of each delivery
	lats      []time.Duration
	err       error
	done      atomic.Bool // consume has returned
	_         [64]byte    // keeps the counters of neighbours off one cache line
}

// Run runs the scenario against the broker at o.Addr.
func Run(ctx context.Context, o Options) (Result, error) {
	var res Result
	if err := o.fill(); err != nil {
		return res, err
	}
	// Idle connections first, with the broker's memory before and after.
	if o.Idle > 0 {
		res.IdleConns = o.Idle
		res.RSSBeforeKiB = rss(o.BrokerPID)
		idle, err := openIdle(o)
		defer func() {
			for _, c := range idle {
				c.Close()
			}
		}()
		if err != nil {
			return res, err
		}
		time.Sleep(time.Second) // let the broker settle
		res.RSSAfterKiB = rss(o.BrokerPID)
		if res.RSSBeforeKiB > 0 {
			res.KiBPerIdle = float64(res.RSSAfterKiB-res.RSSBeforeKiB) / float64(o.Idle)
		}
	}
	topic := strings.HasPrefix(o.Destination, "/topic/")
	dest := escape(o.Destination)

	// Consumers, each subscribed (and the broker's RECEIPT read) before any
	// producer starts.
	var cons []*consumer
	goStomp := o.Client == "go-stomp"
	if o.Client != "" && o.Client != "lean" && !goStomp {
		return res, errUnknownClient
	}
	stopGS := make(chan struct{}) // ends the go-stomp consumers
	defer func() {
		for _, cn := range cons {
			if cn.c != nil {
				cn.c.conn.Close()
			} else if cn.closeConn != nil {
				cn.closeConn()
			}
		}
	}()
	for i := range o.Consumers {
		if goStomp {
			cn := &consumer{}
			cons = append(cons, cn)
			if err := o.goStompConsumer(cn, i, stopGS); err != nil {
				return res, fmt.Errorf("consumer connect: %w", err)
			}
			continue
		}
		c, err := dialClient(&o, o.consumerAddr())
		if err != nil {
			return res, fmt.Errorf("consumer connect: %w", err)
		}
		cons = append(cons, &consumer{c: c})
		var extra []string
		if o.Prefetch > 0 {
			extra = append(extra, "activemq.prefetchSize", strconv.Itoa(o.Prefetch))
		}
		if o.Selector != "" {
			extra = append(extra, "selector", o.Selector)
		}
		if err := c.subscribe(strconv.Itoa(i), o.Destination, o.AckMode, extra...); err != nil {
			return res, fmt.Errorf("subscribe: %w", err)
		}
	}
	var stopping atomic.Bool
	var cwg sync.WaitGroup
	for _, cn := range cons {
		if goStomp {
			continue // its goroutine runs already
		}
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			err := cn.consume(o.AckMode != "auto", o.Size)
			if !stopping.Load() {
				cn.err = err // else the read was cut off at the end of the run
			}
			cn.done.Store(true)
		}()
	}

	// Producers.
	headers := ""
	if o.Persistent {
		headers += "persistent:true\n"
	}
	if o.Selector != "" {
		headers += "kind:order\namount:150\nregion:eu\n"
	}
	var prods []*client
	for range o.Producers {
		if goStomp {
			break
		}
		c, err := dialClient(&o, o.Addr)
		if err != nil {
			for _, p := range prods {
				p.conn.Close()
			}
			return res, fmt.Errorf("producer connect: %w", err)
		}
		prods = append(prods, c)
	}
	start := time.Now()
	deadline := start.Add(o.Duration)
	var sent atomic.Int64
	var pwg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	fail := func(err error) { firstErr.CompareAndSwap(nil, &err) }
	if goStomp {
		for p := range o.Producers {
			n := o.Count / o.Producers
			if p < o.Count%o.Producers {
				n++
			}
			pwg.Go(func() {
				if err := o.goStompProducer(p, n, deadline, func() { sent.Add(1) }); err != nil {
					fail(fmt.Errorf("producer %d: %w", p, err))
				}
			})
		}
	}
	for p, c := range prods {
		n := 0
		if o.Count > 0 {
			n = o.Count / o.Producers
			if p < o.Count%o.Producers {
				n++
			}
		}
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			body := make([]byte, o.Size)
			for i := range o.Size - 24 {
				body[24+i] = byte('a' + i%26)
			}
			var err error
			i := 0
			for ; ctx.Err() == nil; i++ {
				if o.Count > 0 && i >= n || o.Count == 0 && time.Now().After(deadline) {
					break
				}
				binary.LittleEndian.PutUint64(body, uint64(time.Now().UnixNano()))
				binary.LittleEndian.PutUint64(body[8:], uint64(p))
				binary.LittleEndian.PutUint64(body[16:], uint64(i))
				r := c.send(dest, headers, body, o.Receipt)
				if o.Receipt {
					err = c.awaitReceipt(r)
				} else if c.w.Buffered() == 0 {
					// The buffer was written out: see that it went.
					err = c.w.Flush()
				}
				if err != nil {
					break
				}
				sent.Add(1)
			}
			if err == nil {
				// DISCONNECT's RECEIPT: the broker has taken every SEND.
				err = c.disconnect()
			}
			if err != nil {
				fail(fmt.Errorf("producer %d after %d sends: %w", p, i, c.explain(err)))
			}
			c.conn.Close()
		}()
	}
	pwg.Wait()
	sendSecs := time.Since(start).Seconds()
	res.Sent = sent.Load()
	expectedTotal := res.Sent
	switch {
	case o.Producers == 0:
		expectedTotal = int64(o.Count)
	case topic:
		expectedTotal *= int64(len(cons))
	}

	// Wait for the consumers to receive everything, or for Drain to pass
	// with nothing arriving; then cut their reads off.
	if len(cons) > 0 {
		total := func() (n, last int64) {
			for _, cn := range cons {
				n += cn.received.Load()
				last = max(last, cn.lastRecv.Load())
			}
			return n, last
		}
		idleSince := time.Now()
		for prev := int64(-1); ; {
			n, _ := total()
			if n >= expectedTotal || time.Since(idleSince) > o.Drain || ctx.Err() != nil || allDone(cons) {
				break
			}
			if n != prev {
				prev, idleSince = n, time.Now()
			}
			time.Sleep(5 * time.Millisecond)
		}
		stopping.Store(true)
		for _, cn := range cons {
			if cn.c != nil {
				cn.c.conn.SetReadDeadline(time.Now())
			}
		}
		cwg.Wait()
		if goStomp {
			close(stopGS)
			for _, cn := range cons { // a consumer stuck in Ack gives up within go-stomp's send timeout
				for end := time.Now().Add(15 * time.Second); !cn.done.Load() && time.Now().Before(end); {
					time.Sleep(time.Millisecond)
				}
			}
		}
		var last int64
		res.Received, last = total()
		if last > 0 {
			// Up to the last delivery: the drain wait after it is not throughput.
			res.RecvPerSec = float64(res.Received) / time.Duration(last-start.UnixNano()).Seconds()
		}
		res.Expected = expectedTotal
		res.Lost, res.Duplicates = tally(cons, res.Sent, o.Producers == 0, o.Count, topic)
		for _, cn := range cons {
			if cn.err != nil {
				fail(fmt.Errorf("consumer: %w", cn.err))
				break
			}
		}
	}
	res.Seconds = time.Since(start).Seconds()
	res.SentPerSec = float64(res.Sent) / sendSecs
	var lats []time.Duration
	for _, cn := range cons {
		lats = append(lats, cn.lats...)
	}
	slices.Sort(lats)
	res.P50Ms, res.P99Ms, res.P999Ms = pct(lats, 0.50), pct(lats, 0.99), pct(lats, 0.999)
	if e := firstErr.Load(); e != nil {
		res.ErrorsOrFirst = (*e).Error()
		return res, *e
	}
	return res, nil
}

func allDone(cons []*consumer) bool {
	for _, cn := range cons {
		if !cn.done.Load() {
			return false
		}
	}
	return true
}

// consume reads MESSAGEs until the connection fails or its read is cut off.
// With ack it ACKs each one; the ACKs go out in one write before the next
// wait for the broker (flushFirst).
func (cn *consumer) consume(ack bool, size int) error {
	c := cn.c
	var f frameInfo
	for {
		if err := c.read(&f); err != nil {
			return err
		}
		switch f.command {
		case "MESSAGE":
		case "RECEIPT":
			continue
		case "ERROR":
			return &brokerError{string(f.message)}
		default:
			return fmt.Errorf("unexpected %s", f.command)
		}
		if f.bodyLen != size || f.headLen < 24 {
			return fmt.Errorf("a MESSAGE with a %d-byte body, not %d", f.bodyLen, size)
		}
		now := time.Now().UnixNano()
		at := int64(binary.LittleEndian.Uint64(f.head[:]))
		cn.lats = append(cn.lats, time.Duration(now-at))
		cn.keys = append(cn.keys, binary.LittleEndian.Uint64(f.head[8:])<<32|binary.LittleEndian.Uint64(f.head[16:]))
		if ack {
			if f.ack == nil {
				return errors.New("a MESSAGE without an ack header, on an acknowledged subscription")
			}
			c.ack(f.ack)
		}
		cn.received.Add(1)
		cn.lastRecv.Store(now)
	}
}

// tally counts lost and duplicated messages. On a queue every message
// sent should reach exactly one consumer; on a topic every consumer.
func tally(cons []*consumer, sent int64, draining bool, count int, topic bool) (lost, dups int64) {
	uniq := func(keys []uint64) int64 {
		slices.Sort(keys)
		return int64(len(slices.Compact(keys)))
	}
	if topic && !draining {
		for _, cn := range cons {
			n := int64(len(cn.keys))
			u := uniq(cn.keys)
			dups += n - u
			lost += max(0, sent-u)
		}
		return lost, dups
	}
	var all []uint64
	for _, cn := range cons {
		all = append(all, cn.keys...)
	}
	n := int64(len(all))
	u := uniq(all)
	want := sent
	if draining {
		want = int64(count)
	}
	return max(0, want-u), n - u
}

// explain turns a failed write into the broker's reason when the broker
// said one: an ERROR frame before it closed the connection.
func (c *client) explain(err error) error {
	var be *brokerError
	if errors.As(err, &be) {
		return err
	}
	c.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	var f frameInfo
	for c.read(&f) == nil {
		if f.command == "ERROR" {
			return fmt.Errorf("%w (%w)", &brokerError{string(f.message)}, err)
		}
	}
	return err
}
