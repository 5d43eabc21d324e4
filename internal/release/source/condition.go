// Package source reads custom metrics for the release controller: a
// PromQL query through Prometheus' HTTP API, or a number at a JSON path of
// any HTTP endpoint (an error tracker's "new issues in this release"), and
// holds each to a condition such as "< 0.8" or "<= stable * 1.2".
//
// Results are data (Result, with the numbers behind the outcome): a check
// that cannot be read is Inconclusive, never Pass, so an unreachable source
// can hold a release but never let a bad one through.
package source

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Condition is what a metric's canary value must satisfy: Op against a
// constant (Value), or against stable's value of the same metric
// (Stable), scaled as stable·Factor + Offset.
//
// Written as text: "< 0.8", ">= 99.5", "<= stable * 1.2", "<= stable + 0.05",
// "<= stable * 1.1 + 0.02", "< stable". The zero value is not valid; use ParseCondition.
type Condition struct {
	Op     string  // <, <=, >, >=, ==, !=
	Value  float64 // the constant, when !Stable
	Stable bool    // compare with stable's value
	Factor float64 // stable's multiplier (1 unless "* F")
	Offset float64 // added to stable·Factor ("+ X" or "- X")
	text   string
}

// ParseCondition parses a condition's text. Errors quote the text and say
// what is expected.
func ParseCondition(s string) (Condition, error) {
	c := Condition{Factor: 1, text: strings.Join(strings.Fields(s), " ")}
	rest := strings.TrimSpace(s)
	for _, op := range []string{"<=", ">=", "==", "!=", "<", ">"} {
		if strings.HasPrefix(rest, op) {
			c.Op, rest = op, strings.TrimSpace(rest[len(op):])
			break
		}
	}
	if c.Op == "" {
		return c, fmt.Errorf("condition %q: want an operator (<, <=, >, >=, ==, !=) then a number or stable, e.g. \"< 0.8\" or \"<= stable * 1.2\"", s)
	}
	if !strings.HasPrefix(rest, "stable") {
		v, err := strconv.ParseFloat(rest, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return c, fmt.Errorf("condition %q: %q is not a number or stable", s, rest)
		}
		c.Value = v
		return c, nil
	}
	c.Stable = true
	rest = strings.TrimSpace(strings.TrimPrefix(rest, "stable"))
	if rest == "" {
		return c, nil
	}
	if len(rest) < 2 {
		return c, fmt.Errorf("condition %q: after stable want * F, + X or - X", s)
	}
	// "* F", "+ X", "- X", or "* F" then "+ X" / "- X".
	if rest[0] == '*' {
		num, tail := strings.TrimSpace(rest[1:]), ""
		for i := 1; i < len(num); i++ {
			if (num[i] == '+' || num[i] == '-') && num[i-1] != 'e' && num[i-1] != 'E' {
				num, tail = strings.TrimSpace(num[:i]), strings.TrimSpace(num[i:])
				break
			}
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return c, fmt.Errorf("condition %q: %q is not a number", s, num)
		}
		c.Factor = v
		if tail == "" {
			return c, nil
		}
		rest = tail
		if len(rest) < 2 {
			return c, fmt.Errorf("condition %q: after stable * F want + X or - X", s)
		}
	}
	op, num := rest[0], strings.TrimSpace(rest[1:])
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return c, fmt.Errorf("condition %q: %q is not a number", s, num)
	}
	switch op {
	case '+':
		c.Offset = v
	case '-':
		c.Offset = -v
	default:
		return c, fmt.Errorf("condition %q: after stable want * F, + X or - X", s)
	}
	return c, nil
}

// String returns the condition as written (whitespace normalised).
func (c Condition) String() string { return c.text }

// Limit returns the value the canary is compared with, given stable's.
func (c Condition) Limit(stable float64) float64 {
	if !c.Stable {
		return c.Value
	}
	return stable*c.Factor + c.Offset
}

// Holds reports whether canary satisfies the condition against limit.
func (c Condition) Holds(canary, limit float64) bool {
	switch c.Op {
	case "<":
		return canary < limit
	case "<=":
		return canary <= limit
	case ">":
		return canary > limit
	case ">=":
		return canary >= limit
	case "==":
		return canary == limit
	case "!=":
		return canary != limit
	}
	return false
}
