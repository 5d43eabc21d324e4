package release_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/control"
	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/metrics"
	"github.com/canaryd/canaryd/internal/release"
	"github.com/canaryd/canaryd/internal/route"
	"github.com/canaryd/canaryd/internal/store"
	"github.com/canaryd/canaryd/internal/store/sqlite"
)

// harness runs the real controller over a real SQLite store and control
// plane with a fake clock: each second it records synthetic judged
// traffic on both builds, seals the metric bins and steps the controller.
type harness struct {
	t        *testing.T
	ctx      context.Context
	now      time.Time
	st       store.Store
	plane    *control.Plane
	judged   *metrics.Registry
	analysis map[string]*route.Analysis
	cfg      *config.Config
	ctl      *release.Controller

	// Per second: total requests and error rates of each build.
	rps                  int
	canaryErr, stableErr float64
	canaryLat, stableLat time.Duration
	errCarryC, errCarryS float64
}

// baseConfig is service api (weighted routing: per-request judging) with
// stable 1 and deployed 2; %s is the release block.
const baseConfig = `
listen: 127.0.0.1:0
services:
  - name: api
    routing: weighted
    builds:
      - {id: "1", version: 1.0.0, state: stable, endpoints: [127.0.0.1:9001]}
      - {id: "2", version: 1.1.0, endpoints: [127.0.0.1:9002]}
    release:
%s
`

func newHarness(t *testing.T, releaseBlock string) *harness {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "r.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cfg, err := config.Parse([]byte(fmt.Sprintf(baseConfig, releaseBlock)), "test.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ctx: ctx, now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC), st: s, cfg: cfg,
		analysis: map[string]*route.Analysis{}, rps: 400, canaryLat: 10 * time.Millisecond, stableLat: 10 * time.Millisecond}
	h.plane = control.New(s, control.Options{Now: func() time.Time { return h.now }})
	if err := h.plane.Sync(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	h.judged = metrics.New(metrics.Options{NoRuntimeMetrics: true, Now: func() time.Time { return h.now }})
	h.ctl = h.controller("test")
	return h
}

// controller returns a controller of the harness's store and clock that
// holds the lease as holder.
func (h *harness) controller(holder string) *release.Controller {
	return release.New(release.Options{
		Plane:  h.plane,
		Config: func() *config.Config { return h.cfg },
		Judged: h.judged,
		Analysis: func(service string) *route.Analysis {
			if h.analysis[service] == nil {
				h.analysis[service] = &route.Analysis{}
			}
			return h.analysis[service]
		},
		Holder: holder,
		Now:    func() time.Time { return h.now },
	})
}

// start makes build 2 the canary at traffic.
func (h *harness) start(traffic float64) {
	h.t.Helper()
	if _, err := h.plane.StartCanary(h.ctx, "alice", "api", "2", control.StartOptions{Traffic: traffic}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) service() store.Service {
	h.t.Helper()
	var svc store.Service
	err := h.st.View(h.ctx, func(r store.Reader) error {
		var err error
		svc, err = r.GetService(h.ctx, "api")
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return svc
}

// second records one second of traffic split by the service's current
// share, then ticks the metrics and steps the controller.
func (h *harness) second() {
	h.t.Helper()
	svc := h.service()
	share := 0.0
	if svc.Canary != "" {
		share = svc.Traffic / 100
	}
	nc := int(float64(h.rps) * share)
	ns := h.rps - nc
	record := func(build string, n int, rate float64, carry *float64, lat time.Duration) {
		bm := h.judged.Build("api", build)
		*carry += rate * float64(n)
		errs := int(*carry)
		*carry -= float64(errs)
		for i := range n {
			status := 200
			if i < errs {
				status = 500
			}
			bm.Begin()
			bm.End(metrics.Outcome{Status: status, Duration: lat, User: uint64(i + 1)})
		}
	}
	record("1", ns, h.stableErr, &h.errCarryS, h.stableLat)
	if svc.Canary != "" {
		record(svc.Canary, nc, h.canaryErr, &h.errCarryC, h.canaryLat)
	}
	h.now = h.now.Add(time.Second)
	h.judged.Tick(h.now)
	if err := h.ctl.Step(h.ctx); err != nil {
		h.t.Fatalf("controller step at %v: %v", h.now, err)
	}
}

// run calls second up to max times, until done returns true.
func (h *harness) run(max int, done func() bool) bool {
	h.t.Helper()
	for range max {
		h.second()
		if done() {
			return true
		}
	}
	return false
}

func (h *harness) records() []store.Release {
	h.t.Helper()
	var recs []store.Release
	err := h.st.View(h.ctx, func(r store.Reader) error {
		var err error
		recs, err = r.ListReleases(h.ctx, store.ReleaseFilter{Service: "api"})
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return recs
}

func (h *harness) events() []event.Event {
	h.t.Helper()
	var evs []event.Event
	err := h.st.View(h.ctx, func(r store.Reader) error {
		var err error
		evs, err = r.ListEvents(h.ctx, store.EventQuery{Service: "api", Limit: 1000})
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

// story is the event log in one line per event, for failure messages.
func (h *harness) story() string {
	var b strings.Builder
	for _, ev := range h.events() {
		fmt.Fprintf(&b, "  %s %s %s: %s\n", ev.Type, ev.Actor, ev.Details["traffic"], ev.Reason)
	}
	return b.String()
}

// trafficSteps lists the traffic values the controller set.
func (h *harness) trafficSteps() []string {
	var out []string
	for _, ev := range h.events() {
		if ev.Type == event.TrafficChanged && ev.Actor == string(release.Actor) {
			out = append(out, ev.Details["traffic"])
		}
	}
	return out
}

func (h *harness) ended() func() bool {
	return func() bool { return h.service().Canary == "" }
}

func (h *harness) ctl2cfg() func() *config.Config { return func() *config.Config { return h.cfg } }
