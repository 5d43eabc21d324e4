package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/store"
)

// flaky answers 500 to a share of requests.
func flaky(t *testing.T, name string, errRate float64) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rand.Float64() < errRate {
			http.Error(w, name+" failed", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s ok", name)
	}))
	t.Cleanup(s.Close)
	return s
}

const releaseConfig = `
listen: 127.0.0.1:0
services:
  - name: api
    routing: weighted
    retries: {stable_fallback: false}
    builds:
      - {id: "1", state: stable, endpoints: [%s]}
      - {id: "2", state: canary, traffic: 20, endpoints: [%s]}
    release:
      steps: [20, 50, 100]
      step_duration: 1s
      max_step_duration: 60s
      analysis: {min_samples: 50, max_error_rate_delta: 10%%, max_latency_deviation: 500%%}
`

func events(t *testing.T, srv *Server) []event.Event {
	t.Helper()
	var evs []event.Event
	err := srv.Plane().Store().View(context.Background(), func(r store.Reader) error {
		var err error
		evs, err = r.ListEvents(context.Background(), store.EventQuery{Service: "api", Limit: 500})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// waitBuildState waits up to limit for build id of service api to reach
// want on srv, and fails with the event log (why it did not) otherwise.
func waitBuildState(t *testing.T, srv *Server, id string, want store.BuildState, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for stateOf(t, srv, id) != want {
		if time.Now().After(deadline) {
			var lines []string
			for _, ev := range events(t, srv) {
				lines = append(lines, fmt.Sprintf("%s %s %s", ev.Type, ev.Actor, ev.Reason))
			}
			t.Fatalf("build %s not %s within %s; events:\n%s", id, want, limit, strings.Join(lines, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitRecord waits for the one release record of api to be closed with want.
func waitRecord(t *testing.T, srv *Server, want store.ReleaseStatus) {
	t.Helper()
	waitFor(t, func() bool {
		var recs []store.Release
		_ = srv.Plane().Store().View(context.Background(), func(r store.Reader) error {
			var err error
			recs, err = r.ListReleases(context.Background(), store.ReleaseFilter{Service: "api"})
			return err
		})
		return len(recs) == 1 && recs[0].Status == want
	})
}

func stateOf(t *testing.T, srv *Server, id string) store.BuildState {
	var st store.BuildState
	_ = srv.Plane().Store().View(context.Background(), func(r store.Reader) error {
		b, err := r.GetBuild(context.Background(), "api", id)
		st = b.State
		return err
	})
	return st
}

// A canary failing 30 % of requests against a healthy stable is rolled
// back by the controller, with the judge's reason in the event log.
func TestReleaseRollsBackAFaultyCanary(t *testing.T) {
	srv, url := start(t, releaseConfig, addr(flaky(t, "stable", 0.002)), addr(flaky(t, "canary", 0.3)))
	stop := make(chan struct{})
	wg := hammer(url, 500, 40000, time.Millisecond, stop, func(int, string, error) {})
	defer func() { close(stop); wg.Wait() }()
	waitBuildState(t, srv, "2", store.StateDeployed, 30*time.Second) // the faulty canary is rolled back
	var rb *event.Event
	for _, ev := range events(t, srv) {
		if ev.Type == event.RolledBack {
			rb = &ev
		}
	}
	if rb == nil || rb.Actor != "controller" || !strings.Contains(rb.Reason, "judge:") {
		t.Fatalf("rollback event = %+v", rb)
	}
	// Routing follows the store's change feed within moments.
	waitFor(t, func() bool { return srv.Routes().Load().Service("api").Canary == nil })
}

// A healthy canary goes through every step and is promoted.
func TestReleasePromotesAHealthyCanary(t *testing.T) {
	srv, url := start(t, releaseConfig, addr(flaky(t, "stable", 0)), addr(flaky(t, "canary", 0)))
	stop := make(chan struct{})
	wg := hammer(url, 500, 200000, time.Millisecond, stop, func(int, string, error) {})
	defer func() { close(stop); wg.Wait() }()
	waitBuildState(t, srv, "2", store.StateStable, 60*time.Second) // promoted
	var traffic []string
	for _, ev := range events(t, srv) {
		if ev.Type == event.TrafficChanged {
			traffic = append(traffic, ev.Details["traffic"])
		}
	}
	if strings.Join(traffic, ",") != "50%,100%" {
		t.Fatalf("traffic steps %v, want 50%%,100%%", traffic)
	}
	// The record is closed just after the promotion it reports.
	waitRecord(t, srv, store.ReleasePromoted)
}
