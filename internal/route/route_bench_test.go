package route

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/route/cohort"
)

func benchTable(b *testing.B) *Table {
	b.Helper()
	src := `
listen: 127.0.0.1:0
services:
  - {name: other, match: {path_prefix: /other}, builds: [{id: "1", state: stable, endpoints: [127.0.0.1:9000]}]}
  - name: api
    match: {path_prefix: /api}
    user: {header: X-User-ID}
    overrides: {allow: [tester]}
    builds:
      - {id: "1", state: stable, endpoints: [127.0.0.1:9001, 127.0.0.1:9002, 127.0.0.1:9003]}
      - {id: "2", state: canary, traffic: 10, endpoints: [127.0.0.1:9004]}
`
	cfg, err := config.Parse([]byte(src), "bench", func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	t, err := (&Builder{}).Build(cfg, StatesFromConfig(cfg))
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// BenchmarkRoutingDecision is the whole per-request routing decision:
// request → service → user key → bucket → build → endpoint (and its
// in-flight accounting). The aim is ≤ 100 ns/op and 0 allocs/op.
func BenchmarkRoutingDecision(b *testing.B) {
	t := benchTable(b)
	reqs := make([]*http.Request, 1024)
	for i := range reqs {
		r := httptest.NewRequest("GET", "http://gw/api/items", nil)
		r.Header.Set("X-User-ID", "user-"+strconv.Itoa(i))
		reqs[i] = r
	}
	client := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := reqs[i&1023]
		i++
		svc := t.Match(r.Host, r.URL.Path)
		key, _ := cohort.UserKey(r, svc.Sources, "")
		d := svc.Rules.Decide(r, key, client, svc.Canary != nil)
		build := svc.Stable
		if d.Canary {
			build = svc.Canary
		}
		ep, _ := build.Endpoints.Pick(nil)
		ep.Begin()
		ep.End(true)
	}
}
