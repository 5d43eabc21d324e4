package judge

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// traffic describes deterministic per-second traffic for a build.
type traffic struct {
	req, errs   uint64
	firstErrs   uint64
	latencyMult float64 // latencies 10–109 ms × this
	slowEvery   uint64  // if > 0, every slowEvery-th request takes 2 s
}

func (tr traffic) fill(s *Sample) {
	s.Requests, s.Errors, s.FirstErrors = tr.req, tr.errs, tr.firstErrs
	m := tr.latencyMult
	if m == 0 {
		m = 1
	}
	for i := range tr.req {
		d := time.Duration(float64(10*time.Millisecond+time.Duration(i%100)*time.Millisecond) * m)
		if tr.slowEvery > 0 && i%tr.slowEvery == 0 {
			d = 2 * time.Second
		}
		s.Latency.Record(d)
	}
}

// feed gives j seconds [from, to) of traffic at share pi.
func feed(t *testing.T, j *Judge, from, to int, pi float64, stable, canary traffic) {
	t.Helper()
	for s := from; s < to; s++ {
		b := &Bin{Time: t0.Add(time.Duration(s+1) * time.Second), Share: pi}
		stable.fill(&b.Stable)
		canary.fill(&b.Canary)
		if err := j.Observe(b); err != nil {
			t.Fatal(err)
		}
	}
}

func newJudge(t *testing.T, p Policy) *Judge {
	t.Helper()
	j, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func reason(v Verdict, metric string) (Reason, bool) {
	for _, r := range v.Reasons {
		if r.Metric == metric {
			return r, true
		}
	}
	return Reason{}, false
}

var (
	healthyStable = traffic{req: 900, errs: 9}
	healthyCanary = traffic{req: 100, errs: 1}
)

func TestVerdictHealthyCanaryPassesAfterBake(t *testing.T) {
	j := newJudge(t, Policy{BakeTime: 2 * time.Minute, MinSamples: 1000})
	feed(t, j, 0, 60, 0.1, healthyStable, healthyCanary)
	v := j.Verdict(t0.Add(60*time.Second), t0)
	if v.Outcome != Inconclusive {
		t.Fatalf("after 60 s: %s, want inconclusive while baking", v.Outcome)
	}
	if r, _ := reason(v, MetricErrors); !strings.Contains(r.Message, "baking 1m0s of 2m0s") {
		t.Fatalf("errors reason %q does not say it is baking", r.Message)
	}
	feed(t, j, 60, 600, 0.1, healthyStable, healthyCanary)
	v = j.Verdict(t0.Add(600*time.Second), t0)
	if v.Outcome != Pass {
		t.Fatalf("after 10 min: %s, want pass; reasons %+v", v.Outcome, v.Reasons)
	}
	er, ok := reason(v, MetricErrors)
	if !ok || er.Outcome != Pass || er.CanarySamples != 60000 || er.StableSamples != 540000 ||
		er.StepSamples != 60000 || !(er.Upper < 0.01) || !(er.EValue < 1) || er.Threshold != 200 {
		t.Fatalf("errors reason %+v", er)
	}
	if !strings.Contains(er.Message, "bounded inside the tolerance") || !strings.Contains(er.Message, "e-value") {
		t.Fatalf("errors message %q lacks its numbers or conclusion", er.Message)
	}
	lr, ok := reason(v, MetricLatency)
	if !ok || lr.Outcome != Pass || lr.Threshold != 250 || !(lr.Lower <= 1 && 1 <= lr.Upper) {
		t.Fatalf("latency reason %+v", lr)
	}
	// A new step starts: its own samples and bake time count.
	v = j.Verdict(t0.Add(610*time.Second), t0.Add(600*time.Second))
	if v.Outcome != Inconclusive {
		t.Fatalf("10 s into a new step: %s, want inconclusive", v.Outcome)
	}
	if r, _ := reason(v, MetricErrors); r.StepSamples != 0 {
		t.Fatalf("step samples %d before the step's first bin, want 0", r.StepSamples)
	}
	feed(t, j, 600, 610, 0.1, healthyStable, healthyCanary)
	v = j.Verdict(t0.Add(610*time.Second), t0.Add(600*time.Second))
	if r, _ := reason(v, MetricErrors); r.StepSamples != 1000 {
		t.Fatalf("step samples %d after 10 s at 100 req/s, want 1000", r.StepSamples)
	}
	if _, err := json.Marshal(v); err != nil {
		t.Fatalf("verdict does not encode: %v", err)
	}
}

func TestVerdictFails(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy Policy
		mode   Mode
		pi     float64
		stable traffic
		canary traffic
		secs   int
		metric []string // any of these
		within time.Duration
	}{
		{name: "+10 pp errors", pi: 0.1, stable: healthyStable, canary: traffic{req: 100, errs: 11}, secs: 60, metric: []string{MetricErrors}, within: 10 * time.Second},
		{name: "latency ×2", pi: 0.1, stable: healthyStable, canary: traffic{req: 100, errs: 1, latencyMult: 2}, secs: 60, metric: []string{MetricLatency}, within: 15 * time.Second},
		{name: "all canary requests fail, tiny share", pi: 0.001, stable: traffic{req: 1000, errs: 5}, canary: traffic{req: 1, errs: 1}, secs: 60, metric: []string{GuardHarmRate, MetricErrors}, within: 10 * time.Second},
		{name: "users harmed", policy: Policy{MaxUsersHarmed: 50}, pi: 0.1, stable: healthyStable, canary: traffic{req: 100, errs: 1, firstErrs: 1}, secs: 60, metric: []string{GuardUsersHarmed}, within: 50 * time.Second},
		{name: "max errors per interval", policy: Policy{MaxErrors: 10}, pi: 0.1, stable: healthyStable, canary: traffic{req: 100, errs: 2}, secs: 60, metric: []string{GuardMaxErrors}, within: 6 * time.Second},
		{name: "p99 above ceiling", policy: Policy{MaxLatencyP99: time.Second}, pi: 0.5, stable: traffic{req: 100}, canary: traffic{req: 100, slowEvery: 20}, secs: 60, metric: []string{GuardLatencyP99}, within: 5 * time.Second},
		{name: "sticky: newly harmed users", mode: Sticky, pi: 0.1, stable: traffic{req: 900, errs: 9, firstErrs: 9}, canary: traffic{req: 100, errs: 1, firstErrs: 4}, secs: 60, metric: []string{MetricErrors}, within: 20 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.policy
			p.Mode = tc.mode
			j := newJudge(t, p)
			feed(t, j, 0, tc.secs, tc.pi, tc.stable, tc.canary)
			failed, at := j.Failed()
			if !failed {
				t.Fatalf("not failed after %d s: %+v", tc.secs, j.Verdict(t0.Add(time.Duration(tc.secs)*time.Second), t0).Reasons)
			}
			if at.Sub(t0) > tc.within {
				t.Errorf("failed after %v, want within %v", at.Sub(t0), tc.within)
			}
			v := j.Verdict(t0.Add(time.Duration(tc.secs)*time.Second), t0)
			if v.Outcome != Fail || !v.FailedAt.Equal(at) {
				t.Fatalf("verdict %s at %v, want fail at %v", v.Outcome, v.FailedAt, at)
			}
			if r := v.Reasons[0]; !slices.Contains(tc.metric, r.Metric) || r.Outcome != Fail || r.Message == "" {
				t.Fatalf("first reason %+v, want a failing %v", r, tc.metric)
			}
			if _, err := json.Marshal(v); err != nil {
				t.Fatalf("verdict does not encode: %v", err)
			}
		})
	}
}

func TestVerdictNoFailOnHealthyTraffic(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy Policy
		stable traffic
		canary traffic
	}{
		{"per request", Policy{MaxLatencyP99: time.Second, MaxLatencyDeviation: 0.3}, healthyStable, healthyCanary},
		// Heavy users failing on the canary's side inflate its request
		// error rate, but they were harmed once: sticky mode counts users.
		{"sticky, clustered failures", Policy{Mode: Sticky}, traffic{req: 900, errs: 9, firstErrs: 9}, traffic{req: 100, errs: 15, firstErrs: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJudge(t, tc.policy)
			feed(t, j, 0, 1800, 0.1, tc.stable, tc.canary)
			if f, at := j.Failed(); f {
				t.Fatalf("failed at %v: %+v", at, j.Verdict(at, t0).Reasons)
			}
		})
	}
}

func TestWarmUpIgnoresBins(t *testing.T) {
	j := newJudge(t, Policy{WarmUp: 30 * time.Second})
	j.MarkHealthy(t0)
	feed(t, j, 0, 29, 0.1, healthyStable, traffic{req: 100, errs: 100})
	if f, _ := j.Failed(); f {
		t.Fatal("failed on warm-up traffic")
	}
	v := j.Verdict(t0.Add(29*time.Second), t0)
	if r, _ := reason(v, MetricErrors); r.CanarySamples != 0 {
		t.Fatalf("warm-up requests counted: %+v", r)
	}
	if j.Thresholds()[0] == 0 {
		t.Fatal("stable's warm-up traffic did not feed the latency thresholds")
	}
}

func TestObserveRejectsBadBins(t *testing.T) {
	j := newJudge(t, Policy{})
	if err := j.Observe(&Bin{Time: t0, Share: 0.1}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		bin  Bin
		want string
	}{
		{"same time", Bin{Time: t0, Share: 0.1}, "not after"},
		{"earlier", Bin{Time: t0.Add(-time.Second), Share: 0.1}, "not after"},
		{"share above 1", Bin{Time: t0.Add(time.Second), Share: 1.5}, "share 1.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := j.Observe(&tc.bin); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Observe = %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Policy
		want string
	}{
		{"zero is fine", Policy{}, ""},
		{"basic.yaml", Policy{Mode: Sticky, MaxErrors: 10, MaxErrorRateDelta: 0.01, MaxLatencyP99: time.Second, MaxLatencyDeviation: 0.3, MaxUsersHarmed: 50}, ""},
		{"mode", Policy{Mode: "random"}, `mode random`},
		{"delta", Policy{MaxErrorRateDelta: 1.5}, "max_error_rate_delta 1.5"},
		{"threshold", Policy{ErrorThreshold: 0.5}, "error_threshold 0.5"},
		{"several", Policy{PassAlpha: 2, HarmRate: -1}, "harm_rate -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestJSONResumesExactly(t *testing.T) {
	p := Policy{BakeTime: time.Minute, MaxLatencyP99: time.Second}
	a := newJudge(t, p)
	feed(t, a, 0, 400, 0.1, healthyStable, traffic{req: 100, errs: 2})
	blob, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var b Judge
	if err := json.Unmarshal(blob, &b); err != nil {
		t.Fatal(err)
	}
	feed(t, a, 400, 500, 0.1, healthyStable, traffic{req: 100, errs: 2})
	feed(t, &b, 400, 500, 0.1, healthyStable, traffic{req: 100, errs: 2})
	va, vb := a.Verdict(t0.Add(500*time.Second), t0), b.Verdict(t0.Add(500*time.Second), t0)
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	if string(ja) != string(jb) {
		t.Fatalf("resumed judge differs:\n%s\n%s", ja, jb)
	}
	if err := json.Unmarshal([]byte(`{"policy":{"mode":"x"}}`), &b); err == nil {
		t.Fatal("bad policy in state accepted")
	}
}
