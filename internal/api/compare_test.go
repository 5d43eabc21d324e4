package api

import (
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/release"
	"github.com/canaryd/canaryd/internal/release/source"
	"github.com/canaryd/canaryd/internal/store"
)

// A gauge or counter check carries its sequential evidence into compare:
// the bounds, the e-value and what it is held to, not only the readings.
func TestComparisonCarriesSequentialEvidence(t *testing.T) {
	stable := 0.50
	st := release.Status{Release: store.Release{ID: "r", Service: "api", Build: "2"}, Checks: []source.Result{
		{Name: "cpu", Outcome: source.Inconclusive, Canary: 0.52, Stable: &stable, Message: "cpu: not yet bounded",
			Evidence: &source.Evidence{Kind: "gauge", Estimate: 0.02, Lower: -1e300, Upper: 0.06, Tolerance: 0.05, EValue: 3.5, Threshold: 1000, Samples: 12}},
		{Name: "issues", Outcome: source.Pass, Canary: 0, Limit: 1},
	}}
	cmp := comparisonOf(st, time.Now())
	var cpu, issues *int
	for i := range cmp.Metrics {
		switch cmp.Metrics[i].Metric {
		case "cpu":
			cpu = &i
		case "issues":
			issues = &i
		}
	}
	if cpu == nil || issues == nil {
		t.Fatalf("metrics %+v: want cpu and issues", cmp.Metrics)
	}
	m := cmp.Metrics[*cpu]
	if m.Estimate != 0.02 || m.Upper != 0.06 || m.Limit != 0.05 || m.EValue != 3.5 || m.Threshold != 1000 || m.Samples != 12 ||
		m.Stable != 0.5 || m.Difference < 0.0199 || m.Difference > 0.0201 || m.Result != "inconclusive" {
		t.Errorf("gauge metric = %+v", m)
	}
	if m := cmp.Metrics[*issues]; m.EValue != 0 || m.Limit != 1 || m.Result != "pass" {
		t.Errorf("threshold metric = %+v", m)
	}
}

// A release's load test reaches the API with what it sent and how it ended.
func TestReleaseCarriesLoadTest(t *testing.T) {
	st := release.Status{Release: store.Release{ID: "r", Service: "api", Build: "2"},
		LoadTest: &release.LoadStatus{Step: 1, Traffic: 10, Target: "http://127.0.0.1:8080/ping", Rate: 20, Sent: 600, Dropped: 2,
			Classes: map[string]uint64{"2xx": 598}, Builds: map[string]uint64{"1": 540, "2": 58}, Done: true, Why: "stopped"}}
	got := releaseOf(st, time.Now()).LoadTest
	if got == nil || got.Sent != 600 || got.Dropped != 2 || got.Traffic != 10 || got.Classes["2xx"] != 598 || got.Builds["2"] != 58 ||
		!got.Done || got.Why != "stopped" || got.Target != "http://127.0.0.1:8080/ping" {
		t.Fatalf("load test = %+v", got)
	}
	if releaseOf(release.Status{Release: st.Release}, time.Now()).LoadTest != nil {
		t.Fatal("a release without a load test shows one")
	}
}
