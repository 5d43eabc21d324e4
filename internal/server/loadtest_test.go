package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/store"
)

// loadTestConfig is a sticky service whose only traffic is its release's
// load test, which targets the gateway's own listener by default.
const loadTestConfig = `
listen: 127.0.0.1:0
services:
  - name: api
    expose_build: true
    builds:
      - {id: "1", state: stable, endpoints: [%s]}
      - {id: "2", state: canary, traffic: 20, endpoints: [%s]}
    release:
      steps: [20, 50, 100]
      step_duration: 1s
      max_step_duration: 60s
      analysis: {min_samples: 50, max_error_rate_delta: 10%%, max_latency_deviation: 500%%}
      load_test:
        rate: 200
        users: 300
        path: /ping
`

// End to end: a gateway whose service gets no traffic but its release's
// load test promotes a healthy canary. The generated requests go through
// the real data plane (sticky cohorts by X-User-ID), are judged like real
// ones, reach both builds, and stop with the release.
func TestLoadTestPromotesWithoutTraffic(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]map[string]bool{"stable": {}, "canary": {}} // users per build
	served := 0
	build := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[name][r.Header.Get("X-User-ID")] = true
			served++
			mu.Unlock()
			fmt.Fprintf(w, "%s ok", name)
		}))
		t.Cleanup(s.Close)
		return s
	}
	stable, canary := build("stable"), build("canary")
	srv, _ := start(t, loadTestConfig, addr(stable), addr(canary))
	waitBuildState(t, srv, "2", store.StateStable, 60*time.Second) // promoted on load-test traffic alone
	waitRecord(t, srv, store.ReleasePromoted)
	// Sticky cohorts: each synthetic user stays on one build until the
	// promotion, and both builds saw a share of them.
	mu.Lock()
	nc, ns := len(seen["canary"]), len(seen["stable"])
	mu.Unlock()
	if nc < 30 || ns < 100 {
		t.Fatalf("synthetic users on canary %d, on stable %d; want both well represented", nc, ns)
	}
	// Stopped with the release (at the controller's next tick).
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return served
	}
	time.Sleep(1500 * time.Millisecond)
	n := count()
	time.Sleep(500 * time.Millisecond)
	if m := count(); m != n {
		t.Fatalf("%d requests after the promotion", m-n)
	}
}
