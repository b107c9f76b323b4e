// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// The writer role: the only code that takes the output lock and writes to the socket.

package stomp

import (
	"bufio"
	"context"
	"errors"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/cairnmq/cairn/core"
)

// writeTimeout drops a client that reads nothing for this long.
const writeTimeout = 30 * time.Second

var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}

// outItem is a frame for the writer: a built one, a delivery it builds, a
// barrier, or (none of these) a heart-beat. A barrier is closed once
// everything queued before it is written and its auto acks have landed.
type outItem struct {
	f       *frame.Frame
	d       core.Delivery
	sub     *subscription
	barrier chan struct{}
}

// push queues an item for the writer, unless the session is closing.
func (ss *session) push(it outItem) bool {
	ss.outMu.Lock()
	if ss.closing {
		ss.outMu.Unlock()
		return false
	}
	ss.out = append(ss.out, it)
	ss.wakeLocked()
	ss.outMu.Unlock()
	return true
}

// pushLater queues an item for writeLaterDeliveries, unless the session is closing.
// It starts no writer: writeLaterDeliveries (or whichever writer runs first) writes it.
func (ss *session) pushLater(it outItem) {
	ss.outMu.Lock()
	if !ss.closing {
		ss.out = append(ss.out, it)
	}
	ss.outMu.Unlock()
}

// wakeLocked starts a writer unless one is running (it will see what was
// queued before it gives up the role). outMu is held.
func (ss *session) wakeLocked() {
	if !ss.writing {
		ss.writing = true
		go ss.writeLoop()
	}
}

// reply queues a frame from the reader goroutine. If no writer runs, the
// reader takes the role and writes it at once; whatever is queued while it
// writes goes to a writer goroutine. A client that does not read blocks
// only its own reader this way, up to writeTimeout.
func (ss *session) reply(f *frame.Frame) {
	if !ss.queueReply(f, true) {
		return
	}
	switch final, idle := ss.writeOnce(); {
	case final:
		ss.writerDone()
	case !idle:
		go ss.writeLoop()
	}
}

// queueReply queues f for the writer, or, when no writer runs, takes the
// writer role for the caller (true), with f queued if queue is set.
func (ss *session) queueReply(f *frame.Frame, queue bool) (writer bool) {
	ss.outMu.Lock()
	defer ss.outMu.Unlock()
	if ss.closing {
		return false
	}
	if ss.writing {
		ss.out = append(ss.out, outItem{f: f})
		ss.replies++ // holdBack bounds these
		return false
	}
	ss.writing = true
	if queue {
		ss.out = append(ss.out, outItem{f: f})
	}
	return true
}

// replyNow is reply for a frame written where others may wait on the
// reader: a SEND's RECEIPT, written while its queue is held for the
// message's dispatch. It never waits on the socket (see writeNow).
func (ss *session) replyNow(f *frame.Frame) {
	if ss.r.rc == nil {
		ss.push(outItem{f: f})
		return
	}
	if ss.queueReply(f, false) {
		ss.writeNow([]outItem{{f: f}})
	}
}

// writeLaterDeliveries writes what is queued (deliveries queued with pushLater) on the
// caller's goroutine, when no writer runs: a producer's goroutine that
// dispatched a message itself (core.Broker.SendConfirmed) writes it to the
// consumer too, with no hand-off to a writer goroutine. It never waits on
// the socket.
func (ss *session) writeLaterDeliveries() {
	ss.outMu.Lock()
	if ss.writing || len(ss.out) == 0 {
		ss.outMu.Unlock()
		return
	}
	if ss.closing || ss.r.rc == nil {
		ss.wakeLocked()
		ss.outMu.Unlock()
		return
	}
	ss.writing = true
	batch := ss.out
	ss.out, ss.spare = ss.spare[:0], nil
	ss.outMu.Unlock()
	ss.writeNow(batch)
}

// writeNow writes batch as the writer role's holder with one write that
// does not wait: what the socket does not take goes to a writer goroutine
// (all of it, for a client that has stopped reading), and so do the auto
// acks of the deliveries in it.
func (ss *session) writeNow(batch []outItem) {
	nb := nbWriter{rc: ss.r.rc}
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(&nb)
	// Compose only while the socket takes what is written: for a client
	// that has stopped reading, what is left is one buffer's worth (and one
	// frame), not a copy of every frame the batch holds.
	autoAcks, n := ss.composeUntil(bw, batch, nil, func() bool { return len(nb.rest) > 0 })
	bw.Flush()
	bw.Reset(nil)
	writers.Put(bw)
	if n < len(batch) {
		ss.outMu.Lock()
		rest := make([]outItem, 0, len(batch)-n+len(ss.out))
		rest = append(append(rest, batch[n:]...), ss.out...) // ahead of what came since
		clear(batch[n:])
		ss.out = rest
		ss.outMu.Unlock()
	}
	if len(nb.rest) == 0 && n == len(batch) {
		ss.autoAck(autoAcks)
		ss.releaseBarriers()
		if _, idle := ss.batchWritten(batch); !idle {
			go ss.writeLoop()
		}
		return
	}
	ss.outMu.Lock()
	if nb.n > 0 {
		ss.wroteAt = time.Now()
	}
	ss.pend, ss.pendAcks = nb.rest, autoAcks
	ss.outMu.Unlock()
	go ss.writeLoop() // with the role
}

// nbWriter writes to a connection's descriptor without ever waiting: from
// the first write the socket does not take whole, it keeps what is left.
type nbWriter struct {
	rc   syscall.RawConn
	n    int    // bytes written
	rest []byte // bytes not written, in order
}

func (w *nbWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(w.rest) == 0 {
		k := 0
		w.rc.Write(func(fd uintptr) bool {
			for k < len(p) {
				m, err := syscall.Write(int(fd), p[k:])
				if err == syscall.EINTR {
					continue
				}
				if err != nil || m <= 0 {
					break // would block, or failed: the writer goroutine finds out
				}
				k += m
			}
			return true // never wait here
		})
		w.n += k
		p = p[k:]
	}
	w.rest = append(w.rest, p...)
	return n, nil
}

// holdBack stops the reader while too many of its frames wait for the
// writer (a client that sends receipted frames and reads nothing): its
// connection then reads no more, as when the reader itself waits on the
// socket, rather than piling replies up in memory.
func (ss *session) holdBack() {
	ss.outMu.Lock()
	for ss.replies >= maxQueuedReplies && !ss.closing {
		ss.drained.Wait()
	}
	ss.outMu.Unlock()
}

const maxQueuedReplies = 1024

// beat runs every half heart-beat interval: if nothing was written for an
// interval, it queues a heart-beat.
func (ss *session) beat() {
	ss.outMu.Lock()
	defer ss.outMu.Unlock()
	if ss.closing {
		return
	}
	if !ss.writing && time.Since(ss.wroteAt) >= ss.sendEvery {
		ss.out = append(ss.out, outItem{})
		ss.wakeLocked()
	}
	ss.beats.Reset(ss.sendEvery / 2)
}

// closeAfter queues last (if any) as the final frame and tells the writer to
// close the connection once everything queued is written.
func (ss *session) closeAfter(last *frame.Frame) {
	ss.outMu.Lock()
	if !ss.closing {
		if last != nil {
			ss.out = append(ss.out, outItem{f: last})
		}
		ss.closing = true
		ss.drained.Broadcast()
		ss.wakeLocked()
	}
	ss.outMu.Unlock()
}

// writeLoop writes until nothing is queued: a connection with nothing to
// write has no writer goroutine (heart-beats come from a timer). push and
// closeAfter start it. Its last run, once the session is closing and
// everything queued is written, closes the connection and ss.written.
func (ss *session) writeLoop() {
	for {
		final, idle := ss.writeOnce()
		if final {
			ss.writerDone()
			return
		}
		if idle {
			return
		}
	}
}

// writerDone ends the writer role for good.
func (ss *session) writerDone() {
	ss.conn.Close()
	ss.outMu.Lock()
	if ss.beats != nil {
		ss.beats.Stop()
	}
	ss.outMu.Unlock()
	close(ss.written)
}

// writeOnce writes everything queued with one flush, by the holder of the
// writer role. It reports final when the session is over (closing and
// drained, or the connection failed), and idle when it gave the role up
// because nothing more is queued.
func (ss *session) writeOnce() (final, idle bool) {
	ss.outMu.Lock()
	batch, pend, autoAcks := ss.out, ss.pend, ss.pendAcks
	ss.out, ss.spare, ss.pend, ss.pendAcks = ss.spare[:0], nil, nil, nil
	ss.replies = 0
	ss.drained.Broadcast()
	closing := ss.closing
	ss.outMu.Unlock()
	if closing && len(batch) == 0 && len(pend) == 0 {
		return true, false
	}
	// The write buffer is taken from a pool for each burst and given back
	// after it, so an idle connection holds none.
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(ss.conn)
	bw.Write(pend)
	autoAcks = ss.compose(bw, batch, autoAcks)
	ss.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	err := bw.Flush()
	bw.Reset(nil)
	writers.Put(bw)
	if err != nil {
		ss.srv.opts.Logger.Debug("stomp: write", "session", ss.id, "err", err)
		ss.conn.Close() // the reader sees it and cleans up
		ss.discardQueued()
		return true, false
	}
	ss.autoAck(autoAcks)
	ss.releaseBarriers()
	return ss.batchWritten(batch)
}

// releaseBarriers closes the barriers composed so far, once the auto acks
// of what was written before them have landed. Only the writer role's
// holder adds to ss.acks, and it is the caller: the Wait is safe.
func (ss *session) releaseBarriers() {
	if len(ss.barriers) == 0 {
		return
	}
	ss.acks.Wait()
	for _, b := range ss.barriers {
		close(b)
	}
	clear(ss.barriers)
	ss.barriers = ss.barriers[:0]
}

// compose writes batch's frames into w, clearing batch, and returns
// autoAcks with the deliveries to auto-ack subscriptions appended.
func (ss *session) compose(w *bufio.Writer, batch []outItem, autoAcks []outItem) []outItem {
	autoAcks, _ = ss.composeUntil(w, batch, autoAcks, nil)
	return autoAcks
}

// composeUntil is compose that stops after the frame for which full (if
// not nil) reports true, and says how many items it composed (and cleared).
func (ss *session) composeUntil(w *bufio.Writer, batch []outItem, autoAcks []outItem, full func() bool) ([]outItem, int) {
	for i := range batch {
		if full != nil && full() {
			return autoAcks, i
		}
		it := &batch[i]
		switch {
		case it.f != nil:
			writeFrame(w, it.f, ss.version)
		case it.barrier != nil:
			ss.barriers = append(ss.barriers, it.barrier)
		case it.sub != nil && it.sub.gone.Load():
			// Unsubscribed: not written, so not consumed; closing the
			// core subscription gives it back.
		case it.sub != nil:
			ss.writeMessage(w, it)
			if it.sub.core != nil && it.sub.mode == core.AckAuto { // (nil: a browse)
				autoAcks = append(autoAcks, *it)
			}
		default:
			w.WriteByte('\n') // a heart-beat
		}
		*it = outItem{}
	}
	return autoAcks, len(batch)
}

// autoAck acknowledges deliveries written to auto-ack subscriptions: one
// AutoAck (one journal append) per subscription. Nobody waits for an auto
// ack to be durable (a crash before it lands redelivers, marked
// redelivered), and the journal takes them lazily when it can: then they
// are done here, which costs no goroutine; otherwise off the writer's
// path, so that the next burst need not wait for a sync.
func (ss *session) autoAck(autoAcks []outItem) {
	inline := len(autoAcks) > 0 && !ss.srv.broker.AutoAckWaits()
	for len(autoAcks) > 0 {
		sub := autoAcks[0].sub.core
		var seqs []uint64
		rest := autoAcks[:0]
		for _, it := range autoAcks {
			if it.sub.core == sub {
				seqs = append(seqs, it.d.Msg.Seq)
			} else {
				rest = append(rest, it)
			}
		}
		ack := func() {
			err := sub.AutoAck(context.Background(), seqs)
			switch {
			case errors.Is(err, core.ErrUnknownAck):
				// Written to the client, but no longer its to consume:
				// it will be delivered again.
				ss.srv.opts.Logger.Warn("stomp: auto ack of messages no longer delivered to the subscription; they will be delivered again",
					"session", ss.id, "messages", len(seqs), "err", err)
			case err != nil:
				ss.srv.opts.Logger.Error("stomp: auto ack", "session", ss.id, "err", err)
			}
		}
		if inline {
			ack()
		} else {
			ss.acks.Add(1)
			go func() {
				defer ss.acks.Done()
				ack()
			}()
		}
		clear(autoAcks[len(rest):])
		autoAcks = rest
	}
}

// batchWritten ends a burst written by the writer role's holder: it keeps
// batch's array for the next, and gives the role up (idle) if nothing more
// is queued.
func (ss *session) batchWritten(batch []outItem) (final, idle bool) {
	if cap(batch) > 64 {
		batch = nil // do not hold a large burst's array while idle
	}
	ss.outMu.Lock()
	defer ss.outMu.Unlock()
	ss.spare = batch[:0]
	ss.wroteAt = time.Now()
	if len(ss.out) == 0 && !ss.closing {
		ss.writing = false
		return false, true
	}
	return false, false
}

// discardQueued discards what is queued after the connection failed.
func (ss *session) discardQueued() {
	ss.outMu.Lock()
	ss.closing = true
	ss.drained.Broadcast()
	ss.out = nil
	ss.outMu.Unlock()
}

// writeMessage writes the MESSAGE frame of a delivery, with ActiveMQ's
// headers, straight into w (no frame is built: this is the hot path).
func (ss *session) writeMessage(w *bufio.Writer, it *outItem) {
	m := it.d.Msg
	v := ss.version
	esc := v != "1.0"
	var num [20]byte
	id := m.ID()
	w.WriteString("MESSAGE\n")
	if it.sub.wild {
		writeHeader(w, frame.Destination, m.Destination.String(), v, esc) // the topic it was published to
	} else {
		writeHeader(w, frame.Destination, it.sub.destStr, v, esc)
	}
	writeHeader(w, frame.MessageId, id, v, esc)
	writeHeader(w, frame.Subscription, it.sub.id, v, esc)
	if it.sub.core != nil && it.sub.mode != core.AckAuto && v == "1.2" {
		writeHeader(w, frame.Ack, id, v, esc)
	}
	if it.d.Redelivered {
		w.WriteString("redelivered:true\n")
	}
	if m.Persistent {
		w.WriteString("persistent:true\n")
	}
	w.WriteString("priority:")
	w.Write(strconv.AppendUint(num[:0], uint64(m.Priority), 10))
	w.WriteString("\ntimestamp:")
	w.Write(strconv.AppendInt(num[:0], m.Timestamp, 10))
	w.WriteString("\nexpires:")
	w.Write(strconv.AppendInt(num[:0], m.Expires, 10))
	w.WriteByte('\n')
	for i := 0; i+1 < len(m.Header); i += 2 {
		if v != "1.2" && !deliverable(m.Header[i], m.Header[i+1], v) {
			continue // it cannot reach this client intact
		}
		writeHeader(w, m.Header[i], m.Header[i+1], v, esc)
	}
	w.WriteString("content-length:")
	w.Write(strconv.AppendInt(num[:0], int64(len(m.Body)), 10))
	w.WriteString("\n\n")
	w.Write(m.Body)
	w.WriteByte(0)
}
