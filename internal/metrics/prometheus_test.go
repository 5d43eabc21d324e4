package metrics

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/latency"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// promtool is where Debian's `prometheus` package installs promtool.
const promtool = "/usr/bin/promtool"

// scrape serves h on a loopback server and returns one scrape of it.
func scrape(t *testing.T, h http.Handler) []byte {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain") // the text format promtool checks
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s: %s", resp.Status, body)
	}
	return body
}

// series finds the metric of family f whose labels include all of want.
func series(t *testing.T, fams map[string]*dto.MetricFamily, f string, want map[string]string) *dto.Metric {
	t.Helper()
	fam := fams[f]
	if fam == nil {
		t.Fatalf("no family %s", f)
	}
next:
	for _, m := range fam.GetMetric() {
		for k, v := range want {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	t.Fatalf("no %s series with labels %v", f, want)
	return nil
}

func TestPrometheusExposition(t *testing.T) {
	r := New(Options{Now: newClock().Now}) // runtime collectors included: promtool checks them too
	stable := r.Build("api", "41")
	stable.SetState("stable")
	canary := r.Build("api", "42")
	canary.SetState("canary")
	for i := range 100 {
		stable.Begin()
		stable.End(Outcome{Status: 200, Duration: 3 * time.Millisecond, BytesIn: 10, BytesOut: 100, User: uint64(i + 1)})
	}
	for _, o := range []Outcome{
		{Status: 200, Duration: 700 * time.Microsecond, User: 1},
		{Status: 503, Duration: 40 * time.Millisecond, User: 2},
		{ConnErr: true, Duration: 2 * time.Minute, User: 3}, // beyond the last bound: only +Inf
		{Status: 999, Duration: time.Millisecond},
	} {
		canary.Begin()
		canary.End(o)
	}
	canary.Begin()
	gone := r.Build("api", "40")
	gone.Begin()
	gone.End(Outcome{Status: 200})
	r.Forget("api", "40")

	body := scrape(t, r.Handler())

	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse exposition: %v\n%s", err, body)
	}
	for name, fam := range fams {
		if !strings.HasPrefix(name, "canaryd_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("unexpected family %s", name)
		}
		if strings.HasPrefix(name, "canaryd_") {
			for _, m := range fam.GetMetric() {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "build" && lp.GetValue() == "40" {
						t.Errorf("forgotten build 40 still exposed in %s", name)
					}
				}
			}
		}
	}
	s := map[string]string{"service": "api", "build": "41", "state": "stable"}
	cy := map[string]string{"service": "api", "build": "42", "state": "canary"}
	with := func(l map[string]string, k, v string) map[string]string {
		o := map[string]string{k: v}
		for a, b := range l {
			o[a] = b
		}
		return o
	}
	for _, tc := range []struct {
		family string
		labels map[string]string
		want   float64
	}{
		{"canaryd_requests_total", with(s, "class", "2xx"), 100},
		{"canaryd_requests_total", with(s, "class", "5xx"), 0},
		{"canaryd_requests_total", with(cy, "class", "2xx"), 1},
		{"canaryd_requests_total", with(cy, "class", "5xx"), 1},
		{"canaryd_requests_total", with(cy, "class", "conn_error"), 1},
		{"canaryd_requests_total", with(cy, "class", "other"), 1},
		{"canaryd_request_bytes_total", s, 1000},
		{"canaryd_response_bytes_total", s, 10000},
		{"canaryd_requests_in_flight", cy, 1},
		{"canaryd_requests_in_flight", s, 0},
		{"canaryd_distinct_users", s, 100},
		{"canaryd_users_harmed", s, 0},
		{"canaryd_distinct_users", cy, 3},
		{"canaryd_users_harmed", cy, 2},
	} {
		m := series(t, fams, tc.family, tc.labels)
		var got float64
		switch {
		case m.Counter != nil:
			got = m.GetCounter().GetValue()
		case m.Gauge != nil:
			got = m.GetGauge().GetValue()
		}
		if got < tc.want-0.5 || got > tc.want+0.5 { // distinct-user gauges are estimates
			t.Errorf("%s%v = %v, want %v", tc.family, tc.labels, got, tc.want)
		}
	}
	if m := series(t, fams, "canaryd_requests_total", with(s, "class", "2xx")); m.GetCounter() == nil {
		t.Error("canaryd_requests_total is not a counter")
	}

	// The canary histogram: 0.7 ms, 1 ms, 40 ms, 2 min.
	h := series(t, fams, "canaryd_request_duration_seconds", cy).GetHistogram()
	if h == nil {
		t.Fatal("canaryd_request_duration_seconds is not a histogram")
	}
	if h.GetSampleCount() != 4 {
		t.Errorf("sample count %d, want 4", h.GetSampleCount())
	}
	if want := (2*time.Minute + 40*time.Millisecond + 1700*time.Microsecond).Seconds(); h.GetSampleSum() < want-1e-9 || h.GetSampleSum() > want+1e-9 {
		t.Errorf("sample sum %v, want %v", h.GetSampleSum(), want)
	}
	cum := map[float64]uint64{}
	var prev uint64
	for _, b := range h.GetBucket() {
		if b.GetCumulativeCount() < prev {
			t.Errorf("bucket le=%v count %d below the previous %d", b.GetUpperBound(), b.GetCumulativeCount(), prev)
		}
		prev = b.GetCumulativeCount()
		cum[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	for le, want := range map[float64]uint64{.0005: 0, .001: 1, .0025: 2, .025: 2, .05: 3, 60: 3} {
		if cum[le] != want {
			t.Errorf("bucket le=%v holds %d, want %d", le, cum[le], want)
		}
	}

	checkWithPromtool(t, body)
}

// checkWithPromtool runs `promtool check metrics` over an exposition. CI
// installs promtool (Debian package `prometheus`), so its absence fails.
func checkWithPromtool(t *testing.T, body []byte) {
	t.Helper()
	if _, err := os.Stat(promtool); err != nil {
		t.Fatalf("%s not found (%v): install Debian's prometheus package (apt-get install -y prometheus) to run this test", promtool, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s\n--- exposition ---\n%s", err, out, body)
	}
}

// TestBucketMapping checks the conversion of the internal layout to the
// Prometheus bounds: an internal bucket goes under the first bound at or
// above its upper edge, never under a bound it may exceed, and never more
// than one internal bucket too high.
func TestBucketMapping(t *testing.T) {
	c := newCollector(New(Options{NoRuntimeMetrics: true}))
	for i := range latency.NumBuckets {
		lo, hi := latency.Bounds(i)
		j := c.le[i]
		if j < len(latencyBuckets) && hi.Seconds() > latencyBuckets[j] {
			t.Fatalf("bucket %d [%v, %v) counted under le=%v", i, lo, hi, latencyBuckets[j])
		}
		if j > 0 && hi.Seconds() <= latencyBuckets[j-1] {
			t.Fatalf("bucket %d [%v, %v) counted under le=%v, fits under le=%v", i, lo, hi, latencyBuckets[j], latencyBuckets[j-1])
		}
	}
}
