// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package floor is the least a STOMP broker can do for a persistent,
// receipted SEND on this machine, served over real connections so that
// `cairn bench broker` measures it like any broker: the floor under
// bench/compare's scenario (a).
//
// For each SEND it writes the body into a pre-zeroed ring file as whole
// 4 KiB blocks with O_DSYNC (the cheapest durable write there is here, and
// the one Cairn's journal makes: journal/wal's sync ring), then sends the
// RECEIPT, then forwards the body as a MESSAGE to the destination's next
// subscriber, all on the producer connection's goroutine. That is the whole
// work: no journal records, no queue, no message ids kept, no acks
// tracked, no recovery. A SEND with no subscriber is written and dropped.
// Frames are read with a lean hand parser, and each reply is one write.
//
// It is not a broker and must not be used as one; it exists so that a
// comparison can say how far a broker is from what the disk and the
// network allow, measured side by side in the same run.
package floor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

const (
	block    = 4096
	ringSize = 8 << 20
	// maxFrame bounds what one frame may hold, so that a stray client
	// cannot make it allocate without limit.
	maxFrame = 16 << 20
)

// Server is a floor responder.
type Server struct {
	mu     sync.Mutex // the ring, and the subscriptions
	ring   *os.File
	pos    int64
	buf    []byte
	writes int64
	subs   map[string][]*subscriber
	next   map[string]int
	seq    uint64
	closed bool
	conns  map[net.Conn]struct{}
	lns    []net.Listener
	wg     sync.WaitGroup
}

type subscriber struct {
	conn net.Conn
	id   string
}

// New makes the ring file dir/FLOOR-RING, zero-filled and fsynced, and
// opens it for O_DSYNC writes.
func New(dir string) (*Server, error) {
	path := filepath.Join(dir, "FLOOR-RING")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(make([]byte, ringSize)); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	f.Close()
	if f, err = os.OpenFile(path, os.O_RDWR|syncFlag, 0); err != nil {
		return nil, err
	}
	return &Server{ring: f, subs: map[string][]*subscriber{}, next: map[string]int{}, conns: map[net.Conn]struct{}{}}, nil
}

// Writes is how many SENDs have been written to the ring.
func (s *Server) Writes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// Serve accepts connections on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serve(c)
		}()
	}
}

// Close stops the listeners and connections, waits for them, and closes
// the ring.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return s.ring.Close()
}

var errFrame = errors.New("bad frame")

type frame struct {
	command string
	headers [][2][]byte
	body    []byte
}

func (f *frame) header(k string) ([]byte, bool) {
	for _, h := range f.headers {
		if string(h[0]) == k {
			return h[1], true
		}
	}
	return nil, false
}

func (s *Server) serve(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		for dest, subs := range s.subs {
			kept := subs[:0]
			for _, sub := range subs {
				if sub.conn != c {
					kept = append(kept, sub)
				}
			}
			s.subs[dest] = kept
		}
		s.mu.Unlock()
	}()
	r := bufio.NewReaderSize(c, 4096)
	var f frame
	var out []byte
	for {
		if err := read(r, &f); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.Write([]byte("ERROR\nmessage:" + err.Error() + "\n\n\x00"))
			}
			return
		}
		receipt := func() error {
			id, ok := f.header("receipt")
			if !ok {
				return nil
			}
			out = append(append(append(out[:0], "RECEIPT\nreceipt-id:"...), id...), "\n\n\x00"...)
			_, err := c.Write(out)
			return err
		}
		var err error
		switch f.command {
		case "CONNECT", "STOMP":
			_, err = c.Write([]byte("CONNECTED\nversion:1.2\nheart-beat:0,0\nserver:cairn-floor\n\n\x00"))
		case "SUBSCRIBE":
			dest, _ := f.header("destination")
			id, _ := f.header("id")
			s.mu.Lock()
			s.subs[string(dest)] = append(s.subs[string(dest)], &subscriber{conn: c, id: string(id)})
			s.mu.Unlock()
			err = receipt()
		case "SEND":
			dest, _ := f.header("destination")
			sub, seq, werr := s.write(string(dest), f.body)
			if werr != nil {
				c.Write([]byte("ERROR\nmessage:" + werr.Error() + "\n\n\x00"))
				return
			}
			if err = receipt(); err == nil && sub != nil {
				out = append(out[:0], "MESSAGE\ndestination:"...)
				out = append(out, dest...)
				out = append(out, "\nmessage-id:floor-"...)
				out = strconv.AppendUint(out, seq, 10)
				out = append(out, "\nsubscription:"...)
				out = append(out, sub.id...)
				out = append(out, "\nack:floor-"...)
				out = strconv.AppendUint(out, seq, 10)
				out = append(out, "\ncontent-length:"...)
				out = strconv.AppendInt(out, int64(len(f.body)), 10)
				out = append(out, "\n\n"...)
				out = append(out, f.body...)
				out = append(out, 0)
				sub.conn.Write(out) // one Write is one frame on the wire; a subscriber that is gone is its own loss
			}
		case "DISCONNECT":
			receipt()
			return
		default: // ACK, NACK, UNSUBSCRIBE, BEGIN, COMMIT, ABORT: nothing kept
			err = receipt()
		}
		if err != nil {
			return
		}
	}
}

// write makes body durable in the ring and picks the subscriber of dest
// that gets it, round robin.
func (s *Server) write(dest string, body []byte) (*subscriber, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := (len(body) + block - 1) / block * block
	if n == 0 {
		n = block
	}
	if n > ringSize {
		return nil, 0, fmt.Errorf("a body of %d bytes is over the ring", len(body))
	}
	if cap(s.buf) < n {
		s.buf = make([]byte, n)
	}
	b := s.buf[:n]
	clear(b[copy(b, body):])
	if s.pos+int64(n) > ringSize {
		s.pos = 0
	}
	if _, err := s.ring.WriteAt(b, s.pos); err != nil {
		return nil, 0, err
	}
	if err := syncRing(s.ring); err != nil {
		return nil, 0, err
	}
	s.pos += int64(n)
	s.writes++
	s.seq++
	var sub *subscriber
	if subs := s.subs[dest]; len(subs) > 0 {
		i := s.next[dest] % len(subs)
		s.next[dest] = i + 1
		sub = subs[i]
	}
	return sub, s.seq, nil
}

// read reads one frame into f; its slices are valid until the next read.
func read(r *bufio.Reader, f *frame) error {
	f.headers = f.headers[:0]
	var line []byte
	var err error
	for len(line) == 0 { // heart-beats and blank lines between frames
		if line, err = readLine(r); err != nil {
			return err
		}
	}
	f.command = string(line)
	length := -1
	size := len(line)
	for {
		if line, err = readLine(r); err != nil {
			return err
		}
		if len(line) == 0 {
			break
		}
		if size += len(line); size > maxFrame {
			return fmt.Errorf("%w: headers over %d bytes", errFrame, maxFrame)
		}
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return fmt.Errorf("%w: header %q has no colon", errFrame, line)
		}
		// readLine's slice is overwritten by the next read: keep copies.
		kv := [2][]byte{append([]byte(nil), k...), append([]byte(nil), v...)}
		f.headers = append(f.headers, kv)
		if string(k) == "content-length" && length < 0 {
			if length, err = strconv.Atoi(string(v)); err != nil || length < 0 || length > maxFrame {
				return fmt.Errorf("%w: content-length %q", errFrame, v)
			}
		}
	}
	if length >= 0 {
		if cap(f.body) < length+1 {
			f.body = make([]byte, length+1)
		}
		f.body = f.body[:length+1]
		if _, err := io.ReadFull(r, f.body); err != nil {
			return err
		}
		if f.body[length] != 0 {
			return fmt.Errorf("%w: no NUL after a %d-byte body", errFrame, length)
		}
		f.body = f.body[:length]
		return nil
	}
	f.body = f.body[:0]
	for {
		b, err := r.ReadSlice(0)
		if err != nil && err != bufio.ErrBufferFull {
			return err
		}
		if len(f.body)+len(b) > maxFrame {
			return fmt.Errorf("%w: body over %d bytes", errFrame, maxFrame)
		}
		if err == nil {
			f.body = append(f.body, b[:len(b)-1]...)
			return nil
		}
		f.body = append(f.body, b...)
	}
}

func readLine(r *bufio.Reader) ([]byte, error) {
	l, err := r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, fmt.Errorf("%w: a line over %d bytes", errFrame, r.Size())
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
