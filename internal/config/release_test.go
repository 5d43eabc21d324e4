package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// Gates, manual gates and custom metrics load with their defaults.
func TestReleaseChecksValues(t *testing.T) {
	data, err := os.ReadFile("testdata/release-checks.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, "release-checks", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Services[0].Release
	if len(r.ManualGates) != 1 || r.ManualGates[0] != 50 {
		t.Errorf("manual gates %v", r.ManualGates)
	}
	if g := r.Gates[0]; g.Secret != "s3cret-token-value" || len(g.At) != 3 || g.OnDeny != "pause" || g.Timeout.D() != 10*time.Second {
		t.Errorf("gate[0] %+v", g)
	}
	if printed := fmt.Sprintf("%v %+v", r.Gates[0].Secret, r.Gates[0]); strings.Contains(printed, "s3cret-token-value") {
		t.Errorf("a gate's secret prints in clear: %s", printed)
	}
	if g := r.Gates[1]; g.OnDeny != "rollback" || g.Timeout.D() != 3*time.Second || len(g.At) != 0 {
		t.Errorf("gate[1] %+v", g)
	}
	ms := r.Analysis.Metrics
	if m := ms[0]; m.Prometheus == nil || m.Interval.D() != 30*time.Second || m.Timeout.D() != 5*time.Second || m.FailureLimit != 1 {
		t.Errorf("metric[0] %+v", m)
	}
	if m := ms[1]; m.FailureLimit != 3 {
		t.Errorf("metric[1] %+v", m)
	}
	if m := ms[2]; m.HTTP == nil || m.HTTP.Headers["Authorization"] != "Bearer s3cret-token-value" || m.Interval.D() != time.Minute || m.Timeout.D() != 2*time.Second {
		t.Errorf("metric[2] %+v", m)
	}
}

// Metric kinds and the load-test gate load with their defaults.
func TestSequentialMetricsAndLoadTestValues(t *testing.T) {
	data, err := os.ReadFile("testdata/sequential-metrics.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, "sequential-metrics", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Services[0].Release
	var kinds []string
	for _, m := range r.Analysis.Metrics {
		kinds = append(kinds, m.Kind)
	}
	if strings.Join(kinds, ",") != "gauge,gauge,counter,threshold" {
		t.Errorf("kinds %v; the last is unset and must default to threshold", kinds)
	}
	lt := r.LoadTest
	if lt == nil {
		t.Fatal("load_test not loaded")
	}
	// The user header is the service's first header source (jwt_claim
	// comes first), the path is as written, and a step is bounded by
	// rate × max_step_duration = 20 × 600.
	if lt.UserHeader != "X-User-ID" || lt.Method != "GET" || lt.Path != "/api/ping" || lt.Users != 500 ||
		lt.Concurrency != 64 || lt.Timeout.D() != 5*time.Second || lt.MaxRequests != 12000 || lt.Headers["Accept"] != "application/json" {
		t.Errorf("load_test %+v", *lt)
	}
	if c.Services[0].Release.LoadTest.Target != "" {
		t.Errorf("target defaults to the gateway's listener, left empty; got %q", lt.Target)
	}
}

// Without a load_test nothing is filled in: the gate is off.
func TestLoadTestOffByDefault(t *testing.T) {
	data, _ := os.ReadFile("testdata/minimal.good.yaml")
	c, err := Parse(data, "minimal", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Services[0].Release.LoadTest != nil {
		t.Errorf("load_test %+v in a config without one", c.Services[0].Release.LoadTest)
	}
}

// A load test without users gets enough that its first step holds about
// 50 of them, never fewer than 100.
func TestLoadTestDefaultUsers(t *testing.T) {
	for _, tc := range []struct {
		steps []Percent
		want  int
	}{{[]Percent{5, 10, 100}, 1000}, {[]Percent{1, 100}, 5000}, {[]Percent{20, 100}, 250}, {[]Percent{50, 100}, 100}, {[]Percent{0.001, 100}, 100_000}} {
		if got := loadTestUsers(tc.steps); got != tc.want {
			t.Errorf("steps %v: %d users, want %d", tc.steps, got, tc.want)
		}
	}
}
