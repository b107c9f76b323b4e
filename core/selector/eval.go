// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package selector

import (
	"strings"
	"unicode/utf8"
)

func literal(v value) typed {
	return typed{fn: func(Message) value { return v }, kind: v.kind}
}

// ident reads a header: a string, or null if the message has none.
func ident(name string) typed {
	return typed{fn: func(m Message) value {
		s, ok := m.Header(name)
		if !ok {
			return null
		}
		return value{kind: kStr, s: s}
	}}
}

// truth reads v as a condition: booleans, and the strings "true" and
// "false" (a header used as a condition); anything else is unknown.
func truth(v value) value {
	switch {
	case v.kind == kBool:
		return v
	case v.kind == kStr && strings.EqualFold(v.s, "true"):
		return boolean(true)
	case v.kind == kStr && strings.EqualFold(v.s, "false"):
		return boolean(false)
	}
	return null
}

func and(l, r typed) typed {
	return typed{kind: kBool, fn: func(m Message) value {
		a := truth(l.fn(m))
		if a.kind == kBool && !a.b {
			return a // false AND anything is false
		}
		b := truth(r.fn(m))
		switch {
		case b.kind == kBool && !b.b:
			return b
		case a.kind == kNull || b.kind == kNull:
			return null
		}
		return boolean(true)
	}}
}

func or(l, r typed) typed {
	return typed{kind: kBool, fn: func(m Message) value {
		a := truth(l.fn(m))
		if a.kind == kBool && a.b {
			return a // true OR anything is true
		}
		b := truth(r.fn(m))
		switch {
		case b.kind == kBool && b.b:
			return b
		case a.kind == kNull || b.kind == kNull:
			return null
		}
		return boolean(false)
	}}
}

func not(e typed) typed {
	return typed{kind: kBool, fn: func(m Message) value {
		v := truth(e.fn(m))
		if v.kind == kNull {
			return null
		}
		return boolean(!v.b)
	}}
}

func isNull(e typed, negate bool) typed {
	return typed{kind: kBool, fn: func(m Message) value {
		return boolean((e.fn(m).kind == kNull) != negate)
	}}
}

// compare compares two values: numbers as numbers (a string compared with a
// number is read as one, or the comparison is unknown), strings and
// booleans as themselves. Unknown if either side is null.
func compare(op string, l, r typed) typed {
	return typed{kind: kBool, fn: func(m Message) value {
		a, b := l.fn(m), r.fn(m)
		if a.kind == kNull || b.kind == kNull {
			return null
		}
		if a.kind == kNum || b.kind == kNum {
			x, ok1 := a.num()
			y, ok2 := b.num()
			if !ok1 || !ok2 {
				return null
			}
			c := 0
			if x.isInt && y.isInt {
				c = cmp3(x.i < y.i, x.i > y.i)
			} else {
				c = cmp3(x.f < y.f, x.f > y.f)
			}
			return boolean(holds(op, c))
		}
		if a.kind == kBool || b.kind == kBool {
			x, y := truth(a), truth(b)
			if x.kind != kBool || y.kind != kBool || op != "=" && op != "<>" {
				return null
			}
			return boolean((x.b == y.b) == (op == "="))
		}
		return boolean(holds(op, strings.Compare(a.s, b.s)))
	}}
}

func cmp3(less, greater bool) int {
	switch {
	case less:
		return -1
	case greater:
		return 1
	}
	return 0
}

func holds(op string, c int) bool {
	switch op {
	case "=":
		return c == 0
	case "<>":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	}
	return c >= 0 // ">="
}

// arith is + - * / on numbers (strings read as numbers); unknown if a side
// is not a number, or on division by zero.
func arith(op string, l, r typed) typed {
	return typed{kind: kNum, fn: func(m Message) value {
		x, ok1 := l.fn(m).num()
		y, ok2 := r.fn(m).num()
		if !ok1 || !ok2 {
			return null
		}
		if x.isInt && y.isInt {
			switch op {
			case "+":
				return intValue(x.i + y.i)
			case "-":
				return intValue(x.i - y.i)
			case "*":
				return intValue(x.i * y.i)
			}
			if y.i == 0 {
				return null
			}
			if x.i%y.i == 0 {
				return intValue(x.i / y.i)
			}
		}
		var f float64
		switch op {
		case "+":
			f = x.f + y.f
		case "-":
			f = x.f - y.f
		case "*":
			f = x.f * y.f
		default:
			if y.f == 0 {
				return null
			}
			f = x.f / y.f
		}
		return value{kind: kNum, f: f}
	}}
}

func intValue(i int64) value { return value{kind: kNum, isInt: true, i: i, f: float64(i)} }

// in is membership of a string in a list; unknown for a missing header.
func in(e typed, set []string) typed {
	return typed{kind: kBool, fn: func(m Message) value {
		v := e.fn(m)
		if v.kind == kNull {
			return null
		}
		if v.kind != kStr {
			return boolean(false)
		}
		for _, s := range set {
			if s == v.s {
				return boolean(true)
			}
		}
		return boolean(false)
	}}
}

// like matches a string against a pattern: % any run, _ any one character,
// escape (if not 0) makes the next character literal.
func like(e typed, pattern string, escape byte) typed {
	pat := compileLike(pattern, escape)
	return typed{kind: kBool, fn: func(m Message) value {
		v := e.fn(m)
		if v.kind == kNull {
			return null
		}
		if v.kind != kStr {
			return boolean(false)
		}
		return boolean(pat.match(v.s))
	}}
}

// likePattern is a compiled LIKE pattern: literal bytes, '_' (any one
// character) and '%' (any run). It matches in O(len(s) * len(pattern)) at
// worst, with no backtracking blow-up, whatever the pattern.
type likePattern []likeTok

type likeTok struct {
	kind byte // 0: the literal byte b; '_': one character; '%': any run
	b    byte
}

func compileLike(p string, escape byte) likePattern {
	var out likePattern
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case escape != 0 && c == escape && i+1 < len(p):
			i++
			out = append(out, likeTok{b: p[i]})
		case c == '%':
			if len(out) == 0 || out[len(out)-1].kind != '%' {
				out = append(out, likeTok{kind: '%'})
			}
		case c == '_':
			out = append(out, likeTok{kind: '_'})
		default:
			out = append(out, likeTok{b: c})
		}
	}
	return out
}

func (p likePattern) match(s string) bool {
	i, j := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		if j < len(p) {
			switch t := p[j]; {
			case t.kind == '_':
				_, n := utf8.DecodeRuneInString(s[i:])
				i += n
				j++
				continue
			case t.kind == 0 && t.b == s[i]:
				i++
				j++
				continue
			case t.kind == '%':
				star, mark = j, i
				j++
				continue
			}
		}
		if star < 0 {
			return false
		}
		// Let the last % take one more character and try again from there.
		_, n := utf8.DecodeRuneInString(s[mark:])
		mark += n
		i, j = mark, star+1
	}
	for j < len(p) && p[j].kind == '%' {
		j++
	}
	return j == len(p)
}
