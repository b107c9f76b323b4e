// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// Package selector parses and evaluates JMS message selectors, the SQL-92
// subset ActiveMQ accepts in a SUBSCRIBE's selector header: comparisons
// (= <> < <= > >=), AND, OR, NOT, arithmetic (+ - * /), LIKE with ESCAPE,
// IN, BETWEEN, IS [NOT] NULL, string, numeric and boolean literals, and
// identifiers that name message headers.
//
// Evaluation follows SQL's three-valued logic: a comparison with a missing
// header is unknown, and a message matches only if the selector is true.
// STOMP headers are strings; as ActiveMQ does for STOMP (it prefixes every
// STOMP selector with convert_string_expressions:), a string compared with
// a number, or used in arithmetic, is read as a number when it is one.
//
// A Selector is compiled once into a tree of closures and is safe for
// concurrent use; Match allocates nothing for the usual selectors.
package selector

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Message is what a selector reads: a header by name (ok false when the
// message has none).
type Message interface {
	Header(name string) (value string, ok bool)
}

// Selector is a compiled selector.
type Selector struct {
	src  string
	root expr
}

// String returns the selector's text.
func (s *Selector) String() string { return s.src }

// Match reports whether m satisfies the selector (true, not false or
// unknown).
func (s *Selector) Match(m Message) bool {
	v := truth(s.root(m))
	return v.kind == kBool && v.b
}

// Error is a parse error: what was wrong, and where (a byte offset).
type Error struct {
	Pos int
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("selector: %s at position %d", e.Msg, e.Pos+1) }

// MaxLength bounds a selector's text; MaxDepth its nesting.
const (
	MaxLength = 4096
	MaxDepth  = 64
)

// Parse compiles a selector. An empty selector (only blanks) is an error:
// a subscription without one has no selector.
func Parse(src string) (*Selector, error) {
	if len(src) > MaxLength {
		return nil, &Error{Pos: MaxLength, Msg: fmt.Sprintf("longer than %d bytes", MaxLength)}
	}
	p := &parser{lx: lexer{src: src}}
	p.next()
	if p.tok.kind == tEOF {
		return nil, &Error{Pos: 0, Msg: "empty selector"}
	}
	e, err := p.orExpr()
	if err != nil {
		return nil, err
	}
	if p.err != nil {
		return nil, p.err
	}
	if p.tok.kind != tEOF {
		return nil, p.errorf("unexpected %s", p.tok)
	}
	if e.kind == kNum || e.kind == kStr {
		return nil, &Error{Pos: 0, Msg: "a selector must be a condition, not a value"}
	}
	return &Selector{src: src, root: e.fn}, nil
}

// value is the result of evaluating an expression.
type value struct {
	kind  kind
	b     bool
	isInt bool
	i     int64
	f     float64
	s     string
}

type kind uint8

const (
	kNull kind = iota // unknown
	kBool
	kNum
	kStr
)

var null = value{}

func boolean(b bool) value { return value{kind: kBool, b: b} }

// num reads v as a number: numbers as they are, strings that parse as one
// (convert_string_expressions). ok false otherwise.
func (v value) num() (value, bool) {
	switch v.kind {
	case kNum:
		return v, true
	case kStr:
		s := strings.TrimSpace(v.s)
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return value{kind: kNum, isInt: true, i: i, f: float64(i)}, true
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) {
			return value{kind: kNum, f: f}, true
		}
	}
	return null, false
}

type expr func(m Message) value

// typed is a compiled expression with its static kind where known (kNull:
// known only at run time).
type typed struct {
	fn   expr
	kind kind
}
