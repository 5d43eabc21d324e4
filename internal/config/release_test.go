package config

import (
	"os"
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
