// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package selector

import (
	"fmt"
	"strconv"
	"strings"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tOp      // = <> < <= > >= + - * / ( ) ,
	tKeyword // AND OR NOT LIKE ESCAPE IN BETWEEN IS NULL TRUE FALSE
)

type token struct {
	kind tokKind
	text string // as written (keywords upper-cased; strings unquoted)
	pos  int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of selector"
	case tString:
		return fmt.Sprintf("string '%s'", t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

var keywords = map[string]bool{"AND": true, "OR": true, "NOT": true, "LIKE": true, "ESCAPE": true, "IN": true,
	"BETWEEN": true, "IS": true, "NULL": true, "TRUE": true, "FALSE": true}

type lexer struct {
	src string
	pos int
}

func (l *lexer) next() (token, *Error) {
	for l.pos < len(l.src) && strings.IndexByte(" \t\r\n", l.src[l.pos]) >= 0 {
		l.pos++
	}
	start := l.pos
	if l.pos >= len(l.src) {
		return token{kind: tEOF, pos: start}, nil
	}
	c := l.src[l.pos]
	switch {
	case c == '\'':
		var b strings.Builder
		l.pos++
		for {
			if l.pos >= len(l.src) {
				return token{}, &Error{Pos: start, Msg: "unterminated string"}
			}
			if l.src[l.pos] == '\'' {
				if l.pos+1 < len(l.src) && l.src[l.pos+1] == '\'' { // '' is a quote
					b.WriteByte('\'')
					l.pos += 2
					continue
				}
				l.pos++
				return token{kind: tString, text: b.String(), pos: start}, nil
			}
			b.WriteByte(l.src[l.pos])
			l.pos++
		}
	case c >= '0' && c <= '9' || c == '.' && l.pos+1 < len(l.src) && l.src[l.pos+1] >= '0' && l.src[l.pos+1] <= '9':
		for l.pos < len(l.src) && (isDigit(l.src[l.pos]) || strings.IndexByte(".eExXabcdefABCDEFlL", l.src[l.pos]) >= 0 ||
			(l.src[l.pos] == '+' || l.src[l.pos] == '-') && (l.src[l.pos-1] == 'e' || l.src[l.pos-1] == 'E')) {
			l.pos++
		}
		return token{kind: tNumber, text: l.src[start:l.pos], pos: start}, nil
	case isIdentStart(c):
		for l.pos < len(l.src) && isIdentPart(l.src[l.pos]) {
			l.pos++
		}
		w := l.src[start:l.pos]
		if up := strings.ToUpper(w); keywords[up] {
			return token{kind: tKeyword, text: up, pos: start}, nil
		}
		return token{kind: tIdent, text: w, pos: start}, nil
	}
	for _, op := range []string{"<>", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "(", ")", ","} {
		if strings.HasPrefix(l.src[l.pos:], op) {
			l.pos += len(op)
			return token{kind: tOp, text: op, pos: start}, nil
		}
	}
	return token{}, &Error{Pos: start, Msg: fmt.Sprintf("unexpected character %q", c)}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}
func isIdentPart(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '.' }

type parser struct {
	lx    lexer
	tok   token
	err   *Error
	depth int
}

func (p *parser) next() {
	if p.err != nil {
		return
	}
	t, err := p.lx.next()
	if err != nil {
		p.err = err
		p.tok = token{kind: tEOF, pos: err.Pos}
		return
	}
	p.tok = t
}

func (p *parser) errorf(format string, args ...any) error {
	if p.err != nil {
		return p.err
	}
	return &Error{Pos: p.tok.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) is(kind tokKind, text string) bool { return p.tok.kind == kind && p.tok.text == text }

func (p *parser) expect(kind tokKind, text string) error {
	if !p.is(kind, text) {
		return p.errorf("expected %q, found %s", text, p.tok)
	}
	p.next()
	return nil
}

// orExpr: andExpr { OR andExpr }
func (p *parser) orExpr() (typed, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > MaxDepth {
		return typed{}, p.errorf("nested deeper than %d", MaxDepth)
	}
	l, err := p.andExpr()
	for err == nil && p.is(tKeyword, "OR") {
		p.next()
		var r typed
		if r, err = p.andExpr(); err == nil {
			l = or(l, r)
		}
	}
	return l, err
}

// andExpr: notExpr { AND notExpr }
func (p *parser) andExpr() (typed, error) {
	l, err := p.notExpr()
	for err == nil && p.is(tKeyword, "AND") {
		p.next()
		var r typed
		if r, err = p.notExpr(); err == nil {
			l = and(l, r)
		}
	}
	return l, err
}

// notExpr: NOT notExpr | comparison
func (p *parser) notExpr() (typed, error) {
	if p.is(tKeyword, "NOT") {
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > MaxDepth {
			return typed{}, p.errorf("nested deeper than %d", MaxDepth)
		}
		p.next()
		e, err := p.notExpr()
		if err != nil {
			return typed{}, err
		}
		return not(e), nil
	}
	return p.comparison()
}

// comparison: sum [ (= <> < <= > >=) sum | [NOT] LIKE str [ESCAPE str] |
// [NOT] IN (literals) | [NOT] BETWEEN sum AND sum | IS [NOT] NULL ]
func (p *parser) comparison() (typed, error) {
	l, err := p.sum()
	if err != nil {
		return typed{}, err
	}
	if p.tok.kind == tOp {
		switch op := p.tok.text; op {
		case "=", "<>", "<", "<=", ">", ">=":
			p.next()
			r, err := p.sum()
			if err != nil {
				return typed{}, err
			}
			return compare(op, l, r), nil
		}
	}
	negate := false
	if p.is(tKeyword, "NOT") {
		negate = true
		p.next()
		if !p.is(tKeyword, "LIKE") && !p.is(tKeyword, "IN") && !p.is(tKeyword, "BETWEEN") {
			return typed{}, p.errorf("expected LIKE, IN or BETWEEN after NOT, found %s", p.tok)
		}
	}
	var e typed
	switch {
	case p.is(tKeyword, "LIKE"):
		p.next()
		if p.tok.kind != tString {
			return typed{}, p.errorf("LIKE needs a string pattern, found %s", p.tok)
		}
		pattern, escape := p.tok.text, byte(0)
		p.next()
		if p.is(tKeyword, "ESCAPE") {
			p.next()
			if p.tok.kind != tString || len(p.tok.text) != 1 {
				return typed{}, p.errorf("ESCAPE needs a one-character string, found %s", p.tok)
			}
			escape = p.tok.text[0]
			p.next()
		}
		e = like(l, pattern, escape)
	case p.is(tKeyword, "IN"):
		p.next()
		if err := p.expect(tOp, "("); err != nil {
			return typed{}, err
		}
		var set []string
		for {
			if p.tok.kind != tString {
				return typed{}, p.errorf("IN takes a list of strings, found %s", p.tok)
			}
			set = append(set, p.tok.text)
			p.next()
			if p.is(tOp, ",") {
				p.next()
				continue
			}
			if err := p.expect(tOp, ")"); err != nil {
				return typed{}, err
			}
			break
		}
		e = in(l, set)
	case p.is(tKeyword, "BETWEEN"):
		p.next()
		lo, err := p.sum()
		if err != nil {
			return typed{}, err
		}
		if err := p.expect(tKeyword, "AND"); err != nil {
			return typed{}, err
		}
		hi, err := p.sum()
		if err != nil {
			return typed{}, err
		}
		e = and(compare(">=", l, lo), compare("<=", l, hi))
	case p.is(tKeyword, "IS") && !negate:
		p.next()
		not := false
		if p.is(tKeyword, "NOT") {
			not = true
			p.next()
		}
		if err := p.expect(tKeyword, "NULL"); err != nil {
			return typed{}, err
		}
		return isNull(l, not), nil
	default:
		return l, nil
	}
	if negate {
		e = not(e)
	}
	return e, nil
}

// sum: product { (+|-) product }
func (p *parser) sum() (typed, error) {
	l, err := p.product()
	for err == nil && p.tok.kind == tOp && (p.tok.text == "+" || p.tok.text == "-") {
		op := p.tok.text
		p.next()
		var r typed
		if r, err = p.product(); err == nil {
			l = arith(op, l, r)
		}
	}
	return l, err
}

// product: unary { (*|/) unary }
func (p *parser) product() (typed, error) {
	l, err := p.unary()
	for err == nil && p.tok.kind == tOp && (p.tok.text == "*" || p.tok.text == "/") {
		op := p.tok.text
		p.next()
		var r typed
		if r, err = p.unary(); err == nil {
			l = arith(op, l, r)
		}
	}
	return l, err
}

// unary: (+|-) unary | primary
func (p *parser) unary() (typed, error) {
	if p.tok.kind == tOp && (p.tok.text == "-" || p.tok.text == "+") {
		op := p.tok.text
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > MaxDepth {
			return typed{}, p.errorf("nested deeper than %d", MaxDepth)
		}
		p.next()
		e, err := p.unary()
		if err != nil {
			return typed{}, err
		}
		if op == "-" {
			return arith("-", literal(value{kind: kNum, isInt: true}), e), nil
		}
		return e, nil
	}
	return p.primary()
}

// primary: literal | identifier | ( orExpr )
func (p *parser) primary() (typed, error) {
	t := p.tok
	switch t.kind {
	case tString:
		p.next()
		return literal(value{kind: kStr, s: t.text}), nil
	case tNumber:
		v, ok := parseNumber(t.text)
		if !ok {
			return typed{}, p.errorf("bad number %q", t.text)
		}
		p.next()
		return literal(v), nil
	case tKeyword:
		switch t.text {
		case "TRUE", "FALSE":
			p.next()
			return literal(boolean(t.text == "TRUE")), nil
		case "NULL":
			p.next()
			return literal(null), nil
		}
	case tIdent:
		p.next()
		return ident(t.text), nil
	case tOp:
		if t.text == "(" {
			p.next()
			e, err := p.orExpr()
			if err != nil {
				return typed{}, err
			}
			if err := p.expect(tOp, ")"); err != nil {
				return typed{}, err
			}
			return e, nil
		}
	}
	return typed{}, p.errorf("unexpected %s", t)
}

func parseNumber(s string) (value, bool) {
	t := strings.TrimRight(s, "lL")
	if i, err := strconv.ParseInt(t, 0, 64); err == nil {
		return value{kind: kNum, isInt: true, i: i, f: float64(i)}, true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return value{kind: kNum, f: f}, true
	}
	return null, false
}
