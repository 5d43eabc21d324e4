package source

import (
	"strings"
	"testing"
)

func TestParseCondition(t *testing.T) {
	for _, tc := range []struct {
		in             string
		canary, stable float64
		holds          bool
		err            string
	}{
		{in: "< 0.8", canary: 0.5, holds: true},
		{in: "<0.8", canary: 0.8, holds: false},
		{in: "<= 0.8", canary: 0.8, holds: true},
		{in: ">= 99.5", canary: 99.4, holds: false},
		{in: "> -1", canary: 0, holds: true},
		{in: "== 0", canary: 0, holds: true},
		{in: "!= 0", canary: 0, holds: false},
		{in: "<= stable * 1.2", canary: 1.2, stable: 1, holds: true},
		{in: "<= stable * 1.2", canary: 1.21, stable: 1, holds: false},
		{in: "<= stable + 0.05", canary: 0.15, stable: 0.1, holds: true},
		{in: "< stable - 1", canary: 9, stable: 10, holds: false},
		{in: "< stable", canary: 9, stable: 10, holds: true},
		{in: "<= stable * 1.1 + 0.05", canary: 1.15, stable: 1, holds: true},
		{in: "<= stable*1.1-0.05", canary: 1.06, stable: 1, holds: false},
		{in: "<= stable * 1e-1 + 1", canary: 1.1, stable: 1, holds: true},
		{in: ">= stable * 0.9 - 1", canary: 8, stable: 10, holds: true},
		{in: "< stable * 2 +", err: "after stable * F want"},
		{in: "< stable * 2 + x", err: `"x" is not a number`},
		{in: "about 0.8", err: "want an operator"},
		{in: "< lots", err: `"lots" is not a number or stable`},
		{in: "< NaN", err: "is not a number"},
		{in: "< stable / 2", err: "after stable want"},
		{in: "< stable * x", err: `"x" is not a number`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			c, err := ParseCondition(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Holds(tc.canary, c.Limit(tc.stable)); got != tc.holds {
				t.Errorf("Holds(%v, stable %v) = %v", tc.canary, tc.stable, got)
			}
		})
	}
}

func FuzzParseCondition(f *testing.F) {
	for _, s := range []string{"< 0.8", "<= stable * 1.2", "!= stable - 3", ">"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCondition(s)
		if err == nil && c.Op == "" {
			t.Fatalf("%q parsed without an operator", s)
		}
	})
}

func TestLookup(t *testing.T) {
	doc := map[string]any{"data": map[string]any{"count": 3.0, "s": "2.5", "ok": true, "nil": nil,
		"items": []any{map[string]any{"v": 7.0}}}}
	for _, tc := range []struct {
		path string
		want float64
		err  string
	}{
		{path: "data.count", want: 3},
		{path: "$.data.s", want: 2.5},
		{path: "data.ok", want: 1},
		{path: "data.items[0].v", want: 7},
		{path: "data.items.0.v", want: 7},
		{path: "data.missing", err: "no data"},
		{path: "data.items[3].v", err: "outside a list of 1"},
		{path: "data.nil", err: "null"},
		{path: "data.items.x", err: "not an index"},
		{path: "data", err: "not a number"},
		{path: "data..count", err: "empty step"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			got, err := Lookup(doc, tc.path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("= %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
