package release_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/release"
	"github.com/canaryd/canaryd/internal/release/source"
	"github.com/canaryd/canaryd/internal/route"
	"github.com/canaryd/canaryd/internal/store"
)

// noisy serves {"value": mean + sd·N(0,1)} at /value/{build}, a fresh
// seeded draw per request, like a CPU gauge averaged over an interval.
func noisy(t *testing.T, seed uint64, means map[string]float64, sd float64) *httptest.Server {
	t.Helper()
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 1))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mean, ok := means[strings.TrimPrefix(r.URL.Path, "/value/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		x := mean + sd*rng.NormFloat64()
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]float64{"value": x})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func gaugeRelease(url, condition string) string {
	return fmt.Sprintf(`      steps: [20, 50, 100]
      step_duration: 3s
      max_step_duration: 60s
      analysis:
        min_samples: 50
        max_error_rate_delta: 10%%
        max_latency_deviation: 500%%
        metrics:
          - name: cpu
            kind: gauge
            http: {url: "%s/value/{{build}}", path: value}
            condition: "%s"
            interval: 1s`, url, condition)
}

// checkOf returns the latest result of the named metric.
func checkOf(st release.Status, name string) *source.Result {
	for i := range st.Checks {
		if st.Checks[i].Name == name {
			return &st.Checks[i]
		}
	}
	return nil
}

// A gauge metric through the controller: a clearly worse canary is rolled
// back on the e-value with the numbers in the reason; an identical one
// (held to a 20 % margin) is promoted once the bound is inside; neither
// passes a step during the first 10 readings, which only set the scale.
func TestGaugeMetricRelease(t *testing.T) {
	for _, tc := range []struct {
		name   string
		canary float64
		want   store.ReleaseStatus
		reason string
		words  string
	}{
		{"worse canary rolls back", 0.8, store.ReleaseRolledBack, "metric check: cpu: canary − 1.2×stable averages +0.2", "canary worse than the condition allows"},
		{"identical canary promotes", 0.5, store.ReleasePromoted, "cpu: canary − 1.2×stable averages -0.", "bounded inside the condition"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := noisy(t, 3, map[string]float64{"1": 0.5, "2": tc.canary}, 0.02)
			h := newHarness(t, gaugeRelease(srv.URL, "<= stable * 1.2"))
			h.start(20)
			h.run(9, func() bool { return false })
			if tr := h.service().Traffic; tr != 20 {
				t.Fatalf("step passed at %v%% within the gauge's warm-up", tr)
			}
			if !h.run(120, h.ended()) {
				t.Fatalf("release did not end:\n%s", h.story())
			}
			rec := h.records()[0]
			if rec.Status != tc.want || !strings.Contains(rec.Reason, tc.reason) || !strings.Contains(rec.Reason, tc.words) {
				t.Fatalf("record %s %q; want %s with %q\n%s", rec.Status, rec.Reason, tc.want, tc.reason, h.story())
			}
		})
	}
}

// The gauge's e-process lives in the release record: a new controller (a
// restart, or another replica taking the lease) goes on with the readings
// gathered before, instead of starting a new warm-up.
func TestGaugeMetricSurvivesRestart(t *testing.T) {
	srv := noisy(t, 5, map[string]float64{"1": 0.5, "2": 0.5}, 0.02)
	// A condition with no room to pass holds the first step, so the
	// release is still running at the restart.
	h := newHarness(t, gaugeRelease(srv.URL, "<= stable * 1.0001"))
	h.start(20)
	h.run(20, func() bool { return false })
	before := checkOf(mustStatus(t, h), "cpu")
	if before == nil || before.Evidence == nil || before.Evidence.Samples < 15 {
		t.Fatalf("before the restart: %+v", before)
	}
	h.ctl = release.New(release.Options{Plane: h.plane, Config: h.ctl2cfg(), Judged: h.judged, Analysis: func(s string) *route.Analysis {
		if h.analysis[s] == nil {
			h.analysis[s] = &route.Analysis{}
		}
		return h.analysis[s]
	}, Holder: "test", Now: func() time.Time { return h.now }})
	h.run(1, func() bool { return false })
	after := checkOf(mustStatus(t, h), "cpu")
	// The record is saved at least every 5 s: at most 5 readings are lost.
	if after == nil || after.Evidence == nil || after.Evidence.Samples+5 < before.Evidence.Samples+1 {
		t.Fatalf("after the restart %d readings, before %d: the e-process was not resumed", after.Evidence.Samples, before.Evidence.Samples)
	}
}

func mustStatus(t *testing.T, h *harness) release.Status {
	t.Helper()
	st, ok := h.ctl.Status("api")
	if !ok {
		t.Fatalf("no release running:\n%s", h.story())
	}
	return st
}

// A counter metric through the controller: a canary with 4× stable's
// business errors (per unit of traffic) is rolled back on the e-value.
func TestCounterMetricRelease(t *testing.T) {
	var mu sync.Mutex
	counts := map[string]float64{"1": 0, "2": 0}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		x := counts[strings.TrimPrefix(r.URL.Path, "/value/")]
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]float64{"value": x})
	}))
	t.Cleanup(srv.Close)
	block := strings.Replace(strings.Replace(gaugeRelease(srv.URL, "<= stable * 1.5"), "kind: gauge", "kind: counter", 1), "name: cpu", "name: checkout-errors", 1)
	h := newHarness(t, block)
	h.start(20)
	for i := 0; i < 120 && h.service().Canary != ""; i++ {
		// Per second: stable's share (80 %) makes 8 errors, the canary's
		// (20 %) 8 too: 4× its fair share of 2.
		mu.Lock()
		counts["1"] += 8
		counts["2"] += 8
		mu.Unlock()
		h.second()
	}
	rec := h.records()[0]
	if rec.Status != store.ReleaseRolledBack || !strings.Contains(rec.Reason, "metric check: checkout-errors: events canary") || !strings.Contains(rec.Reason, "against ratio ≤ 1.5") {
		t.Fatalf("record %s %q\n%s", rec.Status, rec.Reason, h.story())
	}
}
