package release_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/canaryd/canaryd/internal/release/source"
	"github.com/canaryd/canaryd/internal/store"
)

// values serves {"data": {"value": V}} at /value/{build}, V per build.
type values struct {
	mu sync.Mutex
	v  map[string]any
}

func (v *values) set(build string, x any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.v[build] = x
}

func newValues(t *testing.T) (*values, *httptest.Server) {
	v := &values{v: map[string]any{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		build := strings.TrimPrefix(r.URL.Path, "/value/")
		v.mu.Lock()
		x, ok := v.v[build]
		v.mu.Unlock()
		if !ok {
			http.Error(w, "no such build", http.StatusNotFound)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"value": x}})
	}))
	t.Cleanup(srv.Close)
	return v, srv
}

func checkRelease(url, condition string) string {
	return fmt.Sprintf(`      steps: [20, 50, 100]
      step_duration: 3s
      max_step_duration: 8s
      analysis:
        min_samples: 50
        max_error_rate_delta: 10%%
        max_latency_deviation: 500%%
        metrics:
          - name: new-issues
            http: {url: "%s/value/{{build}}", path: data.value}
            condition: "%s"
            interval: 2s`, url, condition)
}

// A custom metric that fails its condition rolls the release back with
// the numbers in the reason; one that holds lets it promote.
func TestMetricCheck(t *testing.T) {
	for _, tc := range []struct {
		name, condition string
		canary, stable  any
		want            store.ReleaseStatus
		reason          string
	}{
		{"absolute fails", "<= 0", 7, 0, store.ReleaseRolledBack, "new-issues: canary 7 is not <= 0"},
		{"absolute holds", "<= 0", "0", 3, store.ReleasePromoted, ""},
		{"against stable fails", "<= stable * 1.2", 1.5, 1.0, store.ReleaseRolledBack, "canary 1.5 is not <= 1.2 (<= stable * 1.2 with stable 1)"},
		{"against stable holds", "<= stable * 1.2", 1.1, 1.0, store.ReleasePromoted, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, srv := newValues(t)
			v.set("2", tc.canary)
			v.set("1", tc.stable)
			h := newHarness(t, checkRelease(srv.URL, tc.condition))
			h.start(20)
			if !h.run(120, h.ended()) {
				t.Fatalf("release did not end:\n%s", h.story())
			}
			rec := h.records()[0]
			if rec.Status != tc.want || !strings.Contains(rec.Reason, tc.reason) {
				t.Fatalf("record %s %q; want %s with %q\n%s", rec.Status, rec.Reason, tc.want, tc.reason, h.story())
			}
		})
	}
}

// A check that cannot be read is inconclusive: the step never passes, and
// after max_step_duration the release pauses.
func TestMetricCheckUnreachableHolds(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	h := newHarness(t, checkRelease(url, "<= 0"))
	h.start(20)
	if !h.run(30, func() bool { return h.service().Paused }) {
		t.Fatalf("not paused:\n%s", h.story())
	}
	if tr := h.service().Traffic; tr != 20 {
		t.Fatalf("traffic %v; an unreadable check let a step pass", tr)
	}
	st, _ := h.ctl.Status("api")
	if len(st.Checks) != 1 || st.Checks[0].Outcome != source.Inconclusive || !strings.Contains(st.Checks[0].Message, "unreachable") {
		t.Fatalf("checks %+v", st.Checks)
	}
	evs := h.events()
	if last := evs[len(evs)-1]; !strings.Contains(last.Reason, "still inconclusive") || !strings.Contains(last.Reason, "new-issues") {
		t.Errorf("pause reason %q", last.Reason)
	}
}

// failure_limit: the release fails only after that many failed
// evaluations in a row, and the reason says so.
func TestMetricCheckFailureLimit(t *testing.T) {
	v, srv := newValues(t)
	v.set("2", 7)
	v.set("1", 0)
	h := newHarness(t, checkRelease(srv.URL, "<= 0")+"\n            failure_limit: 3")
	h.start(20)
	h.run(3, func() bool { return false }) // evaluations at 1 s and 3 s
	if h.service().Canary == "" {
		t.Fatalf("rolled back before the third failed evaluation:\n%s", h.story())
	}
	if !h.run(10, h.ended()) {
		t.Fatalf("not rolled back:\n%s", h.story())
	}
	if rec := h.records()[0]; rec.Status != store.ReleaseRolledBack || !strings.Contains(rec.Reason, "(3 evaluations in a row)") {
		t.Fatalf("record %s %q", rec.Status, rec.Reason)
	}
}
