package metrics_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/metrics"
)

// The proxy takes a handle per build when it builds its routing snapshot,
// then calls Begin and End per request; the judge reads bins.
func Example() {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	now := t0
	reg := metrics.New(metrics.Options{Now: func() time.Time { return now }, NoRuntimeMetrics: true})

	// Snapshot build time: one handle per build, kept in the snapshot.
	canary := reg.Build("api", "42")
	canary.SetState("canary")

	// Request path.
	canary.Begin()
	canary.End(metrics.Outcome{Status: 503, Duration: 12 * time.Millisecond, BytesOut: 80, User: 0xfeed})

	// Every second (Run does this with the real clock).
	now = now.Add(time.Second)
	reg.Tick(now)

	// Judge.
	for _, b := range canary.Window(t0) {
		h := b.Latency.Histogram()
		fmt.Printf("%s +%v: %d requests, %d errors, max %v, harmed %.0f\n",
			b.Start.Format(time.TimeOnly), b.Duration(), b.Requests, b.Errors, h.Quantile(1), b.Harmed)
	}

	// Prometheus.
	rec := httptest.NewRecorder()
	reg.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "canaryd_requests_total") && strings.Contains(line, `class="5xx"`) ||
			strings.HasPrefix(line, "canaryd_users_harmed") ||
			strings.HasPrefix(line, "canaryd_request_duration_seconds_bucket") && strings.Contains(line, `le="0.025"`) {
			fmt.Println(line)
		}
	}
	// Output:
	// 12:00:00 +1s: 1 requests, 1 errors, max 12.288ms, harmed 1
	// canaryd_request_duration_seconds_bucket{build="42",service="api",state="canary",le="0.025"} 1
	// canaryd_requests_total{build="42",class="5xx",service="api",state="canary"} 1
	// canaryd_users_harmed{build="42",service="api",state="canary"} 1.0000241666629792
}
