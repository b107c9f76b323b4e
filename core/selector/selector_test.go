// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package selector_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairnmq/cairn/core/selector"
)

type msg map[string]string

func (m msg) Header(name string) (string, bool) { v, ok := m[name]; return v, ok }

func TestMatch(t *testing.T) {
	m := msg{"type": "order", "region": "eu", "amount": "120", "price": "9.5", "name": "a_b%c", "flag": "true", "JMSPriority": "7"}
	for _, c := range []struct {
		sel  string
		want bool
	}{
		{"type = 'order'", true}, {"type <> 'order'", false}, {"TYPE = 'order'", false}, // identifiers are case-sensitive
		{"type = 'order' AND amount > 100", true}, {"amount > 100 AND amount < 120", false},
		{"amount >= 120 and amount <= 120", true}, {"amount = 120.0", true}, {"price < 10", true}, {"price * 2 = 19", true},
		{"amount / 7 > 17", true}, {"amount / 0 = 1", false}, {"-amount < 0", true}, {"amount + 1 = 121", true}, {"amount - 20 = 100", true},
		{"region IN ('us', 'eu')", true}, {"region NOT IN ('us', 'eu')", false}, {"missing IN ('x')", false}, {"NOT missing IN ('x')", false},
		{"amount BETWEEN 100 AND 200", true}, {"amount NOT BETWEEN 100 AND 200", false},
		{"name LIKE 'a%'", true}, {"name LIKE 'a\\_b\\%c' ESCAPE '\\'", true}, {"name LIKE 'a\\_c%' ESCAPE '\\'", false},
		{"name LIKE '_\\_%' ESCAPE '\\'", true}, {"name NOT LIKE '%x%'", true}, {"region LIKE 'e_'", true}, {"region LIKE '%u%'", true},
		{"missing IS NULL", true}, {"type IS NOT NULL", true}, {"type IS NULL", false},
		{"missing = 'x'", false}, {"NOT (missing = 'x')", false}, {"missing = 'x' OR type = 'order'", true},
		{"missing = 'x' AND type = 'nope'", false}, {"flag", true}, {"flag = TRUE", true}, {"NOT flag", false},
		{"type > 5", false}, {"JMSPriority > 4", true}, {"(type = 'order' OR region = 'us') AND NOT amount < 50", true},
		{"'it''s' = 'it''s'", true}, {"amount = 0x78", true}, {"price > 9.4e0", true}, {"TRUE", true}, {"FALSE OR NULL", false},
	} {
		s, err := selector.Parse(c.sel)
		if err != nil {
			t.Errorf("%q: %v", c.sel, err)
			continue
		}
		if got := s.Match(m); got != c.want {
			t.Errorf("%q = %t, want %t", c.sel, got, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		sel string
		pos int
	}{
		{"", 1}, {"type = ", 8}, {"type = 'unterminated", 8}, {"a = 1 AND", 10}, {"a IN (1, 2)", 7},
		{"a LIKE 5", 8}, {"a NOT = 1", 7}, {"(a = 1", 7}, {"a = 1)", 6}, {"a # 1", 3}, {"a BETWEEN 1 2", 13},
		{"'x'", 1}, {"5", 1}, {"a LIKE 'x' ESCAPE 'ab'", 19},
	} {
		_, err := selector.Parse(c.sel)
		var pe *selector.Error
		if !errors.As(err, &pe) {
			t.Errorf("%q: %v, want a parse error", c.sel, err)
			continue
		}
		if pe.Pos+1 != c.pos {
			t.Errorf("%q: %v, want position %d", c.sel, err, c.pos)
		}
	}
	if _, err := selector.Parse(strings.Repeat("(", 100) + "a=1" + strings.Repeat(")", 100)); err == nil {
		t.Error("nesting past MaxDepth parsed")
	}
	if _, err := selector.Parse(strings.Repeat("NOT ", 100) + "a=1"); err == nil {
		t.Error("NOT nesting past MaxDepth parsed")
	}
}

// TestLikeNoBlowUp: a pattern built to backtrack matches in bounded time.
func TestLikeNoBlowUp(t *testing.T) {
	s, err := selector.Parse("v LIKE '" + strings.Repeat("%a", 40) + "%b'")
	if err != nil {
		t.Fatal(err)
	}
	if s.Match(msg{"v": strings.Repeat("a", 10000)}) {
		t.Fatal("matched")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"type = 'order' AND amount > 100", "a LIKE '%x_' ESCAPE '!'", "a IN ('x','y') OR NOT b IS NULL",
		"x BETWEEN -1 AND 2.5e3", "((a))", "a + b * c / d - -e >= 0x1F"} {
		f.Add(s)
	}
	m := msg{"a": "1", "b": "x", "type": "order", "amount": "5"}
	f.Fuzz(func(t *testing.T, src string) {
		s, err := selector.Parse(src)
		if err != nil {
			var pe *selector.Error
			if !errors.As(err, &pe) || pe.Pos < 0 || pe.Pos > len(src) {
				t.Fatalf("%q: bad error %v", src, err)
			}
			return
		}
		s.Match(m)
		s.Match(msg{})
	})
}

func BenchmarkMatchThreeClauses(b *testing.B) {
	s, err := selector.Parse("type = 'order' AND amount > 100 AND region IN ('eu', 'us')")
	if err != nil {
		b.Fatal(err)
	}
	m := msg{"type": "order", "amount": "120", "region": "eu"}
	b.ReportAllocs()
	for b.Loop() {
		if !s.Match(m) {
			b.Fatal("no match")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "evals/s")
}
