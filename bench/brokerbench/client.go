// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package brokerbench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// client is the load generator's own STOMP 1.2 connection. A load generator
// must cost less than the broker it measures: on a two-core machine a
// go-stomp client (a reader and a writer goroutine per connection, a
// channel hop per frame, a write syscall per frame, some forty allocations
// per frame read) used most of the CPU the broker needed. Here one
// goroutine owns each connection: frames are written into a buffer flushed
// when the goroutine next waits (one syscall per burst), and read in place
// from the read buffer, keeping only the few headers the run needs.
type client struct {
	conn    net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	num     []byte // scratch for numbers
	receipt uint64 // the last receipt id asked for
}

// frameInfo is what the run needs of a frame read: the command, a few
// headers (their escaped bytes, valid until the next read) and the body's
// first bytes.
type frameInfo struct {
	command   string
	ack       []byte // MESSAGE: the ack header, as sent (escaped)
	receiptID []byte // RECEIPT
	message   []byte // ERROR
	head      [24]byte
	headLen   int
	bodyLen   int
}

var errFrame = errors.New("malformed frame from the broker")

// brokerError is an ERROR frame the broker sent.
type brokerError struct{ message string }

func (e *brokerError) Error() string { return "broker ERROR: " + e.message }

func dialClient(o *Options, addr string) (*client, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c := &client{conn: conn, w: bufio.NewWriterSize(conn, 64<<10)}
	c.r = bufio.NewReaderSize(flushFirst{c}, 64<<10)
	host := "localhost"
	if o.Host != "" {
		host = o.Host
	}
	// CONNECT headers are not escaped (STOMP 1.2).
	c.w.WriteString("CONNECT\naccept-version:1.2\nhost:" + host + "\nheart-beat:0,0\n")
	if o.Login != "" {
		c.w.WriteString("login:" + o.Login + "\npasscode:" + o.Passcode + "\n")
	}
	c.w.WriteString("\n\x00")
	if err := c.w.Flush(); err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var f frameInfo
	err = c.read(&f)
	conn.SetReadDeadline(time.Time{})
	switch {
	case err != nil:
	case f.command == "ERROR":
		err = fmt.Errorf("CONNECT refused: %s", f.message)
	case f.command != "CONNECTED":
		err = fmt.Errorf("CONNECT answered with %s", f.command)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// flushFirst reads the connection, first writing out what is buffered to
// send: the read buffer asks for more only when it is empty, so frames
// written (ACKs, say) go out in one write just before the client would
// wait, never later.
type flushFirst struct{ c *client }

func (f flushFirst) Read(p []byte) (int, error) {
	if f.c.w.Buffered() > 0 {
		if err := f.c.w.Flush(); err != nil {
			return 0, err
		}
	}
	return f.c.conn.Read(p)
}

// header writes one header; v is escaped as STOMP 1.2 asks.
func (c *client) header(k, v string) {
	c.w.WriteString(k)
	c.w.WriteByte(':')
	c.w.WriteString(escape(v))
	c.w.WriteByte('\n')
}

func escape(v string) string {
	if !strings.ContainsAny(v, "\\\r\n:") {
		return v
	}
	return strings.NewReplacer("\\", `\\`, "\r", `\r`, "\n", `\n`, ":", `\c`).Replace(v)
}

// nextReceipt writes a receipt header with a new id and returns the id.
func (c *client) nextReceipt() uint64 {
	c.receipt++
	c.w.WriteString("receipt:")
	c.num = strconv.AppendUint(c.num[:0], c.receipt, 10)
	c.w.Write(c.num)
	c.w.WriteByte('\n')
	return c.receipt
}

// subscribe subscribes and waits for the broker to confirm it.
func (c *client) subscribe(id, dest, ack string, extra ...string) error {
	c.w.WriteString("SUBSCRIBE\n")
	c.header("id", id)
	c.header("destination", dest)
	c.header("ack", ack)
	for i := 0; i+1 < len(extra); i += 2 {
		c.header(extra[i], extra[i+1])
	}
	r := c.nextReceipt()
	c.w.WriteString("\n\x00")
	return c.awaitReceipt(r)
}

// send writes a SEND (buffered); with receipt it returns the receipt id to
// wait for. headers is pre-escaped "k:v\n" lines.
func (c *client) send(dest string, headers string, body []byte, receipt bool) uint64 {
	c.w.WriteString("SEND\ndestination:")
	c.w.WriteString(dest)
	c.w.WriteString("\ncontent-type:application/octet-stream\ncontent-length:")
	c.num = strconv.AppendInt(c.num[:0], int64(len(body)), 10)
	c.w.Write(c.num)
	c.w.WriteByte('\n')
	c.w.WriteString(headers)
	var r uint64
	if receipt {
		r = c.nextReceipt()
	}
	c.w.WriteByte('\n')
	c.w.Write(body)
	c.w.WriteByte(0)
	return r
}

// ack writes an ACK for a MESSAGE's ack header (buffered).
func (c *client) ack(id []byte) {
	c.w.WriteString("ACK\nid:")
	c.w.Write(id)
	c.w.WriteString("\n\n\x00")
}

// awaitReceipt flushes and reads until the RECEIPT for id. Only a
// connection without subscriptions may wait this way: anything else read
// meanwhile is an error.
func (c *client) awaitReceipt(id uint64) error {
	if err := c.w.Flush(); err != nil {
		return err
	}
	var f frameInfo
	for {
		if err := c.read(&f); err != nil {
			return err
		}
		switch f.command {
		case "RECEIPT":
			if n, err := strconv.ParseUint(string(f.receiptID), 10, 64); err == nil && n == id {
				return nil
			}
			return fmt.Errorf("RECEIPT %q while waiting for %d", f.receiptID, id)
		case "ERROR":
			return &brokerError{string(f.message)}
		default:
			return fmt.Errorf("%s while waiting for RECEIPT %d", f.command, id)
		}
	}
}

// disconnect ends the session gracefully: the broker has taken every frame
// written before it once its RECEIPT comes.
func (c *client) disconnect() error {
	c.w.WriteString("DISCONNECT\n")
	r := c.nextReceipt()
	c.w.WriteString("\n\x00")
	c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	err := c.awaitReceipt(r)
	c.conn.Close()
	return err
}

// line reads one line without its EOL; the slice is valid until the next
// read.
func (c *client) line() ([]byte, error) {
	l, err := c.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, fmt.Errorf("%w: a line over %d bytes", errFrame, c.r.Size())
	}
	if err != nil {
		return nil, err
	}
	l = l[:len(l)-1]
	if n := len(l); n > 0 && l[n-1] == '\r' {
		l = l[:n-1]
	}
	return l, nil
}

// read reads the next frame, skipping heart-beats.
func (c *client) read(f *frameInfo) error {
	*f = frameInfo{}
	var cmd []byte
	for {
		l, err := c.line()
		if err != nil {
			return err
		}
		if len(l) > 0 {
			cmd = l
			break
		}
	}
	switch string(cmd) { // no allocation: the compiler compares in place
	case "MESSAGE":
		f.command = "MESSAGE"
	case "RECEIPT":
		f.command = "RECEIPT"
	case "ERROR":
		f.command = "ERROR"
	case "CONNECTED":
		f.command = "CONNECTED"
	default:
		return fmt.Errorf("%w: command %q", errFrame, cmd)
	}
	length := -1
	for {
		l, err := c.line()
		if err != nil {
			return err
		}
		if len(l) == 0 {
			break
		}
		k, v, ok := bytes.Cut(l, []byte{':'})
		if !ok {
			return fmt.Errorf("%w: header line %q", errFrame, l)
		}
		// The first of a repeated header wins; each value is copied out,
		// since the next line overwrites the read buffer's slice.
		switch string(k) {
		case "content-length":
			if length < 0 {
				n, err := strconv.Atoi(string(v))
				if err != nil || n < 0 {
					return fmt.Errorf("%w: content-length %q", errFrame, v)
				}
				length = n
			}
		case "ack":
			if f.ack == nil {
				f.ack = append(make([]byte, 0, len(v)), v...)
			}
		case "receipt-id":
			if f.receiptID == nil {
				f.receiptID = append(make([]byte, 0, len(v)), v...)
			}
		case "message":
			if f.message == nil {
				f.message = append(make([]byte, 0, len(v)), v...)
			}
		}
	}
	if length >= 0 {
		f.bodyLen = length
		f.headLen = min(length, len(f.head))
		if _, err := io.ReadFull(c.r, f.head[:f.headLen]); err != nil {
			return err
		}
		if _, err := c.r.Discard(length - f.headLen); err != nil {
			return err
		}
		nul, err := c.r.ReadByte()
		if err != nil {
			return err
		}
		if nul != 0 {
			return fmt.Errorf("%w: no NUL after a %d-byte body", errFrame, length)
		}
	} else {
		for {
			b, err := c.r.ReadSlice(0)
			if err != nil && err != bufio.ErrBufferFull {
				return err
			}
			n := len(b)
			if err == nil {
				n-- // the NUL
			}
			k := copy(f.head[f.headLen:], b[:n])
			f.headLen += k
			f.bodyLen += n
			if err == nil {
				break
			}
		}
	}
	if f.command == "ERROR" && f.message == nil {
		f.message = []byte("(no message header)")
	}
	return nil
}
