// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/go-stomp/stomp/v3/frame"
)

// Limits bound what a client may send. Each is checked before anything is
// allocated for it.
type Limits struct {
	MaxHeaders     int // headers per frame (default 1000, ActiveMQ's)
	MaxHeaderBytes int // one header line, or the command line (default 10 KiB, ActiveMQ's)
	MaxBodyBytes   int // one frame's body (default 10 MiB, ActiveMQ's shipped maxFrameSize)
}

func (l *Limits) fill() {
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = 1000
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 10 << 10
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = 10 << 20
	}
}

// protocolError is a client error: it is answered with an ERROR frame
// carrying code, and the connection is closed.
type protocolError struct {
	code   Code // stable, from the table in codes.go
	msg    string
	header []string // more headers for the ERROR frame, name then value
}

func (e *protocolError) Error() string { return e.msg }

func perr(code Code, format string, args ...any) error {
	return &protocolError{code: code, msg: fmt.Sprintf(format, args...)}
}

var commands = map[string]bool{
	frame.CONNECT: true, frame.STOMP: true, frame.SEND: true, frame.SUBSCRIBE: true,
	frame.UNSUBSCRIBE: true, frame.ACK: true, frame.NACK: true, frame.BEGIN: true,
	frame.COMMIT: true, frame.ABORT: true, frame.DISCONNECT: true,
}

// reader reads client frames with limits. Unlike go-stomp's frame.Reader it
// never reads a header line or a body past the limits (that reader grows
// its buffer without bound and allocates content-length bytes first).
type reader struct {
	src     io.Reader
	br      *bufio.Reader // nil while idle (see wait)
	rc      syscall.RawConn
	lim     Limits
	version string          // "1.0", "1.1" or "1.2": how header values are escaped
	accept  map[string]bool // the commands it reads (nil: a client's, commands)
	pairs   []string        // the frame being read's headers, reused: one allocation of their size per frame

	// The read budget (nil: none): what the frame being read holds of it,
	// when it must be read by, and a channel closed when its session ends.
	budget   *readBudget
	deadline time.Time
	done     <-chan struct{}
	used     int64 // bytes of the frame being read
	held     int64 // taken from budget for it
}

// budgetStep is how much more a frame takes from the budget at once while
// it grows a line or a body of unknown length.
const budgetStep = 64 << 10

// charge counts n more bytes of the frame being read against the budget,
// taking at least step more when it must take any (a known body length
// takes exactly what it needs).
func (r *reader) charge(n, step int64) error {
	if r.budget == nil {
		return nil
	}
	r.used += n
	over := r.used - readBufferSize - r.held
	if over <= 0 {
		return nil
	}
	need := max(over, step)
	if err := r.budget.take(need, r.deadline, r.done); err != nil {
		return err
	}
	r.held += need
	return nil
}

// endFrame gives back what the frame took from the budget.
func (r *reader) endFrame() {
	if r.held > 0 {
		r.budget.give(r.held)
	}
	r.used, r.held = 0, 0
}

// readBufferSize is the reader's buffer, borrowed from a pool while there
// is something to read (an idle connection holds none). 4 KiB takes a SEND
// of a 1 KiB message, headers and all, in one read; longer header lines are
// gathered up to the limit, and a body larger than the buffer is read
// straight into its own slice.
const readBufferSize = 4096

var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

func newReader(r io.Reader, lim Limits) *reader {
	rd := &reader{src: r, lim: lim, version: "1.2"}
	if sc, ok := r.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil && canWait {
			rd.rc = rc
		}
	}
	if rd.rc == nil {
		rd.br = bufio.NewReaderSize(r, readBufferSize)
	} else {
		rd.src = &connSource{r: r}
	}
	return rd
}

// connSource is what a waiting reader's buffer reads from: the connection,
// or, while wait has the descriptor ready (raw), the descriptor itself
// without blocking, so that the read that finds data is the one that takes
// it in.
type connSource struct {
	r   io.Reader
	fd  int
	raw bool
}

func (c *connSource) Read(p []byte) (int, error) {
	if !c.raw {
		return c.r.Read(p)
	}
	for {
		n, err := syscall.Read(c.fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// buffered is how many bytes are read and not yet used.
func (r *reader) buffered() int {
	if r.br == nil {
		return 0
	}
	return r.br.Buffered()
}

// wait waits until the connection has something to read (or fails, or
// its read deadline passes). With nothing buffered, the read buffer goes
// back to a pool first: an idle connection holds no buffer, and waits in
// a shallow frame of its goroutine's stack.
func (r *reader) wait() error {
	if r.rc == nil || r.buffered() > 0 {
		return nil
	}
	r.release()
	return waitReadable(r)
}

// release gives an empty buffer back to the pool.
func (r *reader) release() {
	if r.br != nil {
		r.br.Reset(nil)
		readers.Put(r.br)
		r.br = nil
	}
}

// take makes sure the reader has its buffer.
func (r *reader) take() {
	if r.br == nil {
		r.br = readers.Get().(*bufio.Reader)
		r.br.Reset(r.src)
	}
}

// line reads one line without its EOL (\n or \r\n), of at most
// MaxHeaderBytes.
func (r *reader) line(what string) ([]byte, error) {
	b, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// Longer than the buffer: gather it, up to the limit.
		var long []byte
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(b) > r.lim.MaxHeaderBytes+2 {
				return nil, perr(CodeHeaderTooLarge, "%s is longer than %d bytes", what, r.lim.MaxHeaderBytes)
			}
			if cerr := r.charge(int64(len(b)), budgetStep); cerr != nil {
				return nil, cerr
			}
			long = append(long, b...)
			b, err = r.br.ReadSlice('\n')
		}
		if err == nil {
			if cerr := r.charge(int64(len(b)), budgetStep); cerr != nil {
				return nil, cerr
			}
		}
		b = append(long, b...)
	} else if err == nil {
		if cerr := r.charge(int64(len(b)), budgetStep); cerr != nil {
			return nil, cerr
		}
	}
	if err != nil {
		return nil, err
	}
	if len(b) > r.lim.MaxHeaderBytes+2 {
		return nil, perr(CodeHeaderTooLarge, "%s is longer than %d bytes", what, r.lim.MaxHeaderBytes)
	}
	b = b[:len(b)-1]
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b, nil
}

// read returns the next frame, or nil for a heart-beat (an empty line).
func (r *reader) read() (*frame.Frame, error) {
	r.take()
	defer r.endFrame()
	cmd, err := r.line("the command line")
	if err != nil {
		return nil, err
	}
	if len(cmd) == 0 {
		return nil, nil
	}
	command := string(cmd)
	accept := r.accept
	if accept == nil {
		accept = commands
	}
	if !accept[command] {
		if len(command) > 32 {
			command = command[:32] + "..."
		}
		return nil, perr(CodeUnknownCommand, "unknown command %q", command)
	}
	f := &frame.Frame{Command: command}
	pairs := r.pairs[:0]
	defer func() { clear(pairs); r.pairs = pairs[:0] }()
	escaped := command != frame.CONNECT && command != frame.STOMP && command != frame.CONNECTED
	for n := 0; ; n++ {
		h, err := r.line("a header line")
		if err != nil {
			return nil, err
		}
		if len(h) == 0 {
			break
		}
		if n == r.lim.MaxHeaders {
			return nil, perr(CodeTooManyHeaders, "more than %d headers", r.lim.MaxHeaders)
		}
		i := bytes.IndexByte(h, ':')
		if i < 0 {
			return nil, perr(CodeMalformedFrame, "header line without a colon")
		}
		if i == 0 {
			// STOMP's header-name is one octet or more; clients (go-stomp)
			// fail a frame holding an empty one.
			return nil, perr(CodeMalformedFrame, "header line without a name")
		}
		k, v := string(h[:i]), string(h[i+1:])
		if escaped {
			if k, err = unescape(k, r.version); err == nil {
				v, err = unescape(v, r.version)
			}
			if err != nil {
				return nil, err
			}
		}
		if err := checkHeaderText(k); err != nil {
			return nil, err
		}
		if err := checkHeaderText(v); err != nil {
			return nil, err
		}
		pairs = append(pairs, k, v)
	}
	f.Header = frame.NewHeader(pairs...)
	body, err := r.body(f)
	if err != nil {
		return nil, err
	}
	f.Body = body
	return f, nil
}

func (r *reader) body(f *frame.Frame) ([]byte, error) {
	if cl, ok := f.Header.Contains(frame.ContentLength); ok {
		n, err := strconv.Atoi(strings.TrimSpace(cl))
		if err != nil || n < 0 {
			return nil, perr(CodeMalformedFrame, "content-length %q is not a length", cl)
		}
		if n > r.lim.MaxBodyBytes {
			return nil, perr(CodeFrameTooLarge, "body of %d bytes is over the %d-byte limit", n, r.lim.MaxBodyBytes)
		}
		if err := r.charge(int64(n)+1, 0); err != nil {
			return nil, err
		}
		body := make([]byte, n+1)
		if _, err := io.ReadFull(r.br, body); err != nil {
			return nil, err
		}
		if body[n] != 0 {
			return nil, perr(CodeMalformedFrame, "no NUL after the %d-byte body", n)
		}
		return body[:n:n], nil
	}
	var body []byte
	for {
		chunk, err := r.br.ReadSlice(0)
		if len(body)+len(chunk) > r.lim.MaxBodyBytes+1 {
			return nil, perr(CodeFrameTooLarge, "body is over the %d-byte limit", r.lim.MaxBodyBytes)
		}
		if err := r.charge(int64(len(chunk)), budgetStep); err != nil {
			return nil, err
		}
		body = append(body, chunk...)
		if err == nil {
			return body[:len(body)-1], nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

// checkHeaderText refuses a header name or value (as decoded) that holds a
// NUL byte or is not UTF-8, as STOMP requires: a NUL ends a frame for some
// readers, and what is not UTF-8 reads differently in each client.
func checkHeaderText(s string) error {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == 0:
			return perr(CodeBadHeader, "a header holds a NUL byte (at byte %d)", i)
		case c >= utf8.RuneSelf:
			if !utf8.ValidString(s[i:]) {
				return perr(CodeBadHeader, "a header is not valid UTF-8")
			}
			if strings.IndexByte(s[i:], 0) >= 0 {
				return perr(CodeBadHeader, "a header holds a NUL byte")
			}
			return nil
		}
	}
	return nil
}

// deliverable reports whether a header can reach a client of version
// intact. STOMP 1.2 escapes everything that matters. 1.1 has no escape for
// a carriage return, which readers strip before a line feed. 1.0 has no
// escapes at all: a line feed would end the header (and let one client
// forge headers, or a whole frame, for another), a colon in a name would
// end the name, and a carriage return would be stripped. Such headers are
// not delivered to those clients (see README, "Headers across versions").
func deliverable(k, v, version string) bool {
	switch version {
	case "1.2":
		return true
	case "1.1":
		return strings.IndexByte(k, '\r') < 0 && strings.IndexByte(v, '\r') < 0
	}
	return !strings.ContainsAny(k, "\n\r:") && !strings.ContainsAny(v, "\n\r")
}

// unescape decodes a header's escapes. STOMP 1.0 has none: a backslash
// is itself, in and out.
func unescape(s, version string) (string, error) {
	if version == "1.0" || !strings.ContainsRune(s, '\\') {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i++; i == len(s) {
			return "", perr(CodeMalformedFrame, "header ends with a backslash")
		}
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 'c':
			b.WriteByte(':')
		case '\\':
			b.WriteByte('\\')
		case 'r':
			if version == "1.1" {
				return "", perr(CodeMalformedFrame, `\r is not an escape in STOMP 1.1`)
			}
			b.WriteByte('\r')
		default:
			return "", perr(CodeMalformedFrame, "invalid escape \\%c in a header", s[i])
		}
	}
	return b.String(), nil
}

var escaper = strings.NewReplacer("\\", "\\\\", "\n", "\\n", ":", "\\c", "\r", "\\r")
var escaper11 = strings.NewReplacer("\\", "\\\\", "\n", "\\n", ":", "\\c")

// writeHeader writes one header line, escaped for version (escape false:
// as is). The common case, nothing to escape, copies the strings straight.
func writeHeader(w *bufio.Writer, k, v, version string, escape bool) {
	if escape && needsEscape(k) {
		k = escaperFor(version).Replace(k)
	}
	if escape && needsEscape(v) {
		v = escaperFor(version).Replace(v)
	}
	w.WriteString(k)
	w.WriteByte(':')
	w.WriteString(v)
	w.WriteByte('\n')
}

// needsEscape reports whether s holds a byte STOMP escapes in headers. (A
// plain loop: strings.ContainsAny builds a set on every call, and this runs
// for every header of every MESSAGE.)
func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\', '\n', ':', '\r':
			return true
		}
	}
	return false
}

func escaperFor(version string) *strings.Replacer {
	if version == "1.1" {
		return escaper11
	}
	return escaper
}

// writeFrame encodes f into w (a buffered writer the caller flushes once
// per burst). Header values are escaped for the session's version, except
// in CONNECTED.
func writeFrame(w *bufio.Writer, f *frame.Frame, version string) {
	w.WriteString(f.Command)
	w.WriteByte('\n')
	esc := f.Command != frame.CONNECTED && version != "1.0"
	for i := 0; i < f.Header.Len(); i++ {
		k, v := f.Header.GetAt(i)
		writeHeader(w, k, v, version, esc)
	}
	w.WriteByte('\n')
	w.Write(f.Body)
	w.WriteByte(0)
}

// serverCommands are the frames a broker sends.
var serverCommands = map[string]bool{frame.CONNECTED: true, frame.MESSAGE: true, frame.RECEIPT: true, frame.ERROR: true}

// FrameReader reads what a STOMP 1.2 broker sends (CONNECTED, MESSAGE,
// RECEIPT, ERROR) with the listener's own reader: limits checked before
// allocating, and a fraction of go-stomp's frame.Reader's allocations. The
// gateway tier's upstream links read with it.
type FrameReader struct{ r *reader }

// NewFrameReader reads frames from src within lim.
func NewFrameReader(src io.Reader, lim Limits) *FrameReader {
	lim.fill()
	r := newReader(src, lim)
	r.accept = serverCommands
	return &FrameReader{r: r}
}

// Read returns the next frame, or nil for a heart-beat.
func (fr *FrameReader) Read() (*frame.Frame, error) { return fr.r.read() }
