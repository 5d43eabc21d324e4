package release

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/release/source"
)

// jsonValues is a real HTTP JSON source on 127.0.0.1: GET /v/{build}
// answers {"value": V} with the value the test set for the build.
type jsonValues struct {
	mu sync.Mutex
	v  map[string]float64
}

func (j *jsonValues) set(canary, stable float64) {
	j.mu.Lock()
	j.v["2"], j.v["1"] = canary, stable
	j.mu.Unlock()
}

func newJSONCheck(t *testing.T, name, kind, condition string) (*jsonValues, source.Check) {
	t.Helper()
	j := &jsonValues{v: map[string]float64{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.mu.Lock()
		x, ok := j.v[strings.TrimPrefix(r.URL.Path, "/v/")]
		j.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]float64{"value": x})
	}))
	t.Cleanup(srv.Close)
	cond, err := source.ParseCondition(condition)
	if err != nil {
		t.Fatal(err)
	}
	return j, source.Check{Name: name, Source: &source.HTTPJSON{URL: srv.URL + "/v/{{build}}", Path: "value"}, Condition: cond}
}

// evaluate reads both builds through the real source and feeds the
// reading to the metric's evidence, as runChecks does.
func evaluate(ctx context.Context, chk source.Check, kind string, states map[string]*seqState, share float64) source.Result {
	r := chk.Evaluate(ctx, "api", "2", "1", 10*time.Second, time.Unix(1700000000, 0))
	return sequential(states, kind, chk.Condition, r, share, 0.05)
}

// Identical gauges (CPU 0.5 with sd 0.05 on both builds, one reading per
// 10 s interval) held to "<= stable * 1.1": 50 seeded releases of 120
// evaluations each (20 minutes) through the real HTTP JSON source never
// fail (the budget, 0.1 % per release, expects 0.05 fails in 50), and at
// least 45 of the 50 reach a pass: the upper bound of canary − 1.1×stable
// (true mean −0.05, sd 0.074) falls below 0 after a few dozen readings.
func TestGaugeIdenticalNeverFails(t *testing.T) {
	vals, chk := newJSONCheck(t, "cpu", config.MetricGauge, "<= stable * 1.1")
	ctx := context.Background()
	const runs, evals = 50, 120
	passed := 0
	for run := range runs {
		rng := rand.New(rand.NewPCG(42, uint64(run)))
		states := map[string]*seqState{}
		seenPass := false
		for k := range evals {
			vals.set(0.5+0.05*rng.NormFloat64(), 0.5+0.05*rng.NormFloat64())
			r := evaluate(ctx, chk, config.MetricGauge, states, 0.2)
			if r.Outcome == source.Fail {
				t.Fatalf("run %d: identical gauges failed at evaluation %d: %s", run, k+1, r.Message)
			}
			if r.Outcome == source.Pass {
				seenPass = true
			}
			if k < 10 && r.Outcome != source.Inconclusive {
				t.Fatalf("run %d: %s at evaluation %d, during the warm-up: %s", run, r.Outcome, k+1, r.Message)
			}
		}
		if seenPass {
			passed++
		}
	}
	if passed < 45 {
		t.Fatalf("only %d of %d identical releases reached a pass in %d evaluations", passed, runs, evals)
	}
	t.Logf("%d of %d identical releases passed, none failed", passed, runs)
}

// A clearly worse canary (CPU 0.7 against 0.5, sd 0.05) fails within 40
// evaluations (30 after the 10 that set the scale; a self-normalised test
// needs a couple of dozen whatever the shift) in each of 20 seeded runs, and the result carries the
// numbers: estimate, bound, e-value, samples.
func TestGaugeWorseCanaryFails(t *testing.T) {
	vals, chk := newJSONCheck(t, "cpu", config.MetricGauge, "<= stable * 1.1")
	ctx := context.Background()
	for run := range 20 {
		rng := rand.New(rand.NewPCG(7, uint64(run)))
		states := map[string]*seqState{}
		var r source.Result
		k := 0
		for k = 1; k <= 40; k++ {
			vals.set(0.7+0.05*rng.NormFloat64(), 0.5+0.05*rng.NormFloat64())
			if r = evaluate(ctx, chk, config.MetricGauge, states, 0.2); r.Outcome == source.Fail {
				break
			}
		}
		if r.Outcome != source.Fail {
			t.Fatalf("run %d: worse canary not failed in 40 evaluations: %s", run, r.Message)
		}
		ev := r.Evidence
		if ev == nil || ev.Kind != "gauge" || ev.EValue < 1000 || ev.Threshold != 1000 || ev.Samples != uint64(k) ||
			math.Abs(ev.Estimate-0.15) > 0.05 || ev.Upper < ev.Estimate {
			t.Fatalf("run %d: evidence %+v after %d evaluations", run, ev, k)
		}
		if !strings.Contains(r.Message, "cpu: canary − 1.1×stable averages +0.1") || !strings.Contains(r.Message, "fails at 1000") ||
			!strings.Contains(r.Message, "canary worse than the condition allows") {
			t.Fatalf("message %q", r.Message)
		}
		// A fail is final, even if the next readings look fine or the
		// source stops answering.
		vals.set(0.5, 0.5)
		if r := evaluate(ctx, chk, config.MetricGauge, states, 0.2); r.Outcome != source.Fail {
			t.Fatalf("fail not final: %+v", r)
		}
	}
}

// Bigger is better: a cache hit ratio held to ">= stable - 0.02" fails
// when the canary's is 0.1 lower, and passes when both are the same.
func TestGaugeBiggerIsBetter(t *testing.T) {
	vals, chk := newJSONCheck(t, "hits", config.MetricGauge, ">= stable - 0.02")
	ctx := context.Background()
	for _, tc := range []struct {
		canary float64
		want   source.Outcome
	}{{0.8, source.Fail}, {0.9, source.Pass}} {
		rng := rand.New(rand.NewPCG(9, 9))
		states := map[string]*seqState{}
		var r source.Result
		for range 100 {
			vals.set(tc.canary+0.01*rng.NormFloat64(), 0.9+0.01*rng.NormFloat64())
			if r = evaluate(ctx, chk, config.MetricGauge, states, 0.2); r.Outcome != source.Inconclusive {
				break
			}
		}
		if r.Outcome != tc.want || !strings.Contains(r.Message, "stable − canary") {
			t.Fatalf("canary %v: %s %q; want %s", tc.canary, r.Outcome, r.Message, tc.want)
		}
	}
}

// An unreadable source adds no data point and holds (inconclusive), with
// the evidence so far in the message.
func TestGaugeUnreadableHolds(t *testing.T) {
	vals, chk := newJSONCheck(t, "cpu", config.MetricGauge, "<= stable + 0.1")
	states := map[string]*seqState{}
	vals.set(0.5, 0.5)
	evaluate(context.Background(), chk, config.MetricGauge, states, 0.2)
	vals.mu.Lock()
	delete(vals.v, "1")
	vals.mu.Unlock()
	r := evaluate(context.Background(), chk, config.MetricGauge, states, 0.2)
	if r.Outcome != source.Inconclusive || !strings.Contains(r.Message, "stable 1: http check: HTTP 404") || r.Evidence.Samples != 1 {
		t.Fatalf("%+v", r)
	}
}

// poisson draws a Poisson count (Knuth; the means here are small).
func poisson(rng *rand.Rand, mean float64) float64 {
	l, k, p := math.Exp(-mean), 0.0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// counterRun serves cumulative event counts of both builds, where each
// interval brings Poisson(rate) events spread by the canary's share π and
// the canary's events are ratio times as likely, and returns the outcome
// of each evaluation.
func counterRun(t *testing.T, chk source.Check, vals *jsonValues, rng *rand.Rand, pi, rate, ratio float64, evals int) []source.Result {
	t.Helper()
	states := map[string]*seqState{}
	var cc, cs float64
	var out []source.Result
	for range evals {
		cc += poisson(rng, rate*pi*ratio)
		cs += poisson(rng, rate*(1-pi))
		vals.set(cc, cs)
		out = append(out, evaluate(context.Background(), chk, config.MetricCounter, states, pi))
	}
	return out
}

// Identical counters (business errors, 5 per interval in all, canary
// share 20 %) held to "<= stable * 1.5": 50 seeded releases of 200
// evaluations never fail (budget 0.1 % per release: 0.05 expected), and
// at least 45 pass within them.
func TestCounterIdenticalNeverFails(t *testing.T) {
	vals, chk := newJSONCheck(t, "checkout-errors", config.MetricCounter, "<= stable * 1.5")
	passed := 0
	for run := range 50 {
		rs := counterRun(t, chk, vals, rand.New(rand.NewPCG(11, uint64(run))), 0.2, 5, 1, 200)
		seen := false
		for k, r := range rs {
			if r.Outcome == source.Fail {
				t.Fatalf("run %d: identical counters failed at evaluation %d: %s", run, k+1, r.Message)
			}
			seen = seen || r.Outcome == source.Pass
		}
		if seen {
			passed++
		}
	}
	if passed < 45 {
		t.Fatalf("only %d of 50 identical releases passed", passed)
	}
	t.Logf("%d of 50 identical counter releases passed, none failed", passed)
}

// A canary with 3× stable's event rate fails within 100 evaluations in
// each of 20 seeded runs, with the events and the ratio in the result.
func TestCounterWorseCanaryFails(t *testing.T) {
	vals, chk := newJSONCheck(t, "checkout-errors", config.MetricCounter, "<= stable * 1.5")
	for run := range 20 {
		rs := counterRun(t, chk, vals, rand.New(rand.NewPCG(13, uint64(run))), 0.2, 5, 3, 100)
		var fail *source.Result
		for i := range rs {
			if rs[i].Outcome == source.Fail {
				fail = &rs[i]
				break
			}
		}
		if fail == nil {
			t.Fatalf("run %d: 3× canary not failed: %s", run, rs[len(rs)-1].Message)
		}
		ev := fail.Evidence
		if ev.Kind != "counter" || ev.EValue < 1000 || ev.CanaryEvents == 0 || ev.Samples != ev.CanaryEvents+ev.StableEvents || ev.Estimate < 1.5 {
			t.Fatalf("run %d: evidence %+v", run, ev)
		}
		if !strings.Contains(fail.Message, "against ratio ≤ 1.5") {
			t.Fatalf("message %q", fail.Message)
		}
	}
}

// A counter's first reading, a reset and a change of share only set the
// baseline: no events are fed whose share is unknown.
func TestCounterBaselines(t *testing.T) {
	cond, _ := source.ParseCondition("<= stable * 2")
	states := map[string]*seqState{}
	feed := func(c, s, share float64) string {
		stable := s
		r := sequential(states, config.MetricCounter, cond, source.Result{Name: "x", Outcome: source.Pass, Canary: c, Stable: &stable}, share, 0.05)
		return r.Message
	}
	for _, step := range []struct {
		c, s, share float64
		note        string
		events      uint64
	}{
		{100, 400, 0.2, "first reading: baseline", 0},
		{103, 410, 0.2, "", 13},
		{1, 2, 0.2, "a counter went down (reset): new baseline", 13},
		{5, 6, 0.5, "traffic changed since the last reading: new baseline", 13},
		{9, 10, 0.5, "", 21},
	} {
		msg := feed(step.c, step.s, step.share)
		c, s := states["x"].Counter.Counts()
		if (step.note != "") != strings.Contains(msg, "baseline") || (step.note != "" && !strings.Contains(msg, step.note)) || c+s != step.events {
			t.Fatalf("after %+v: %q with %d events", step, msg, c+s)
		}
	}
}

// The evidence survives the release record: a state written to JSON and
// read back (as a restarted controller does) goes on exactly as the one
// that never stopped.
func TestSequentialStateJSONRoundTrip(t *testing.T) {
	gcond, _ := source.ParseCondition("<= stable * 1.1")
	ccond, _ := source.ParseCondition("<= stable * 1.5")
	// Pre-drawn readings, so both continuations see the same data.
	rng := rand.New(rand.NewPCG(21, 22))
	type reading struct{ gc, gs, cc, cs float64 }
	var rs []reading
	var cc, cs float64
	for range 70 {
		cc += poisson(rng, 2)
		cs += poisson(rng, 8)
		rs = append(rs, reading{0.55 + 0.05*rng.NormFloat64(), 0.5 + 0.05*rng.NormFloat64(), cc, cs})
	}
	feed := func(states map[string]*seqState, rs []reading) (g, c source.Result) {
		for _, x := range rs {
			g = sequential(states, config.MetricGauge, gcond, source.Result{Name: "cpu", Outcome: source.Pass, Canary: x.gc, Stable: &x.gs}, 0.2, 0.05)
			c = sequential(states, config.MetricCounter, ccond, source.Result{Name: "errs", Outcome: source.Pass, Canary: x.cc, Stable: &x.cs}, 0.2, 0.05)
		}
		return g, c
	}
	live := map[string]*seqState{}
	feed(live, rs[:40])
	b, err := json.Marshal(persisted{Sequential: live})
	if err != nil {
		t.Fatal(err)
	}
	var back persisted
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	g1, c1 := feed(live, rs[40:])
	g2, c2 := feed(back.Sequential, rs[40:])
	if *g1.Evidence != *g2.Evidence || *c1.Evidence != *c2.Evidence || g1.Message != g2.Message || c1.Message != c2.Message {
		t.Fatalf("after a JSON round trip:\n%+v\n%+v\nnot the same as\n%+v\n%+v", g2.Evidence, c2.Evidence, g1.Evidence, c1.Evidence)
	}
	if g1.Evidence.Samples != 70 || c1.Evidence.Samples == 0 {
		t.Fatalf("gauge samples %d (want 70), counter events %d", g1.Evidence.Samples, c1.Evidence.Samples)
	}
}

// A changed condition (a config reload) starts the evidence afresh.
func TestSequentialConditionChangeRestarts(t *testing.T) {
	a, _ := source.ParseCondition("<= stable * 1.1")
	b, _ := source.ParseCondition("<= stable * 1.3")
	states := map[string]*seqState{}
	s := 1.0
	for range 5 {
		sequential(states, config.MetricGauge, a, source.Result{Name: "cpu", Outcome: source.Pass, Canary: 1, Stable: &s}, 0.2, 0.05)
	}
	r := sequential(states, config.MetricGauge, b, source.Result{Name: "cpu", Outcome: source.Pass, Canary: 1, Stable: &s}, 0.2, 0.05)
	if r.Evidence.Samples != 1 {
		t.Fatalf("samples %d after a condition change, want 1", r.Evidence.Samples)
	}
}
