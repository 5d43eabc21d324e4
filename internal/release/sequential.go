package release

import (
	"fmt"
	"math"
	"strconv"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/judge"
	"github.com/canaryd/canaryd/internal/release/source"
)

// SequentialThreshold is the e-value at which a gauge or counter metric
// fails the release: JUDGE.md gives custom metrics 0.1 % of the release's
// false-rollback budget.
const SequentialThreshold = 1000

// seqState is the evidence of one gauge or counter metric, kept for the
// whole release in the release record (so a restarted controller resumes
// it) like the judge's own e-processes. It is tied to the kind and
// condition it was gathered under: a config reload that changes either
// starts it afresh, since differences against one limit say nothing about
// another.
type seqState struct {
	Kind      string `json:"kind"`
	Condition string `json:"condition"`
	// Gauge holds a gauge's differences.
	Gauge *judge.Gauge `json:"gauge,omitempty"`
	// Counter holds a counter's events, fed with the canary's share
	// transformed so that it tests "ratio ≤ F" (see counterShare).
	Counter *judge.Mixture `json:"counter,omitempty"`
	// Canary, Stable and Share are a counter's previous cumulative
	// readings and the share they were taken at; Read is false until the
	// first reading.
	Read   bool    `json:"read,omitempty"`
	Canary float64 `json:"canary,omitempty"`
	Stable float64 `json:"stable,omitempty"`
	Share  float64 `json:"share,omitempty"`
	// Failed is final, as the judge's fail is.
	Failed bool `json:"failed,omitempty"`
}

// sequential turns one evaluation r of a gauge or counter metric (its
// canary and stable readings) into evidence, and r's outcome into the
// sequential verdict: fail at e ≥ SequentialThreshold, pass only when the
// upper confidence bound is inside the condition, inconclusive otherwise.
// share is the canary's traffic share now; alpha the pass budget.
func sequential(states map[string]*seqState, kind string, cond source.Condition, r source.Result, share, alpha float64) source.Result {
	st := states[r.Name]
	if st == nil || st.Kind != kind || st.Condition != cond.String() {
		st = &seqState{Kind: kind, Condition: cond.String()}
		states[r.Name] = st
	}
	read := r.Outcome != source.Inconclusive && r.Stable != nil
	var note string
	switch kind {
	case config.MetricGauge:
		if st.Gauge == nil {
			st.Gauge = &judge.Gauge{}
		}
		if read {
			d, _ := gaugeDifference(cond, r.Canary, *r.Stable)
			st.Gauge.Observe(d)
		}
	case config.MetricCounter:
		if st.Counter == nil {
			st.Counter = &judge.Mixture{}
		}
		if read {
			note = st.count(cond, r.Canary, *r.Stable, share)
		}
	}
	ev, verdict := st.evidence(cond, alpha)
	r.Evidence = &ev
	switch {
	case !read:
		// The source did not answer: no data point; the message says
		// why, and the evidence so far stands.
		r.Outcome = source.Inconclusive
		if st.Failed {
			r.Outcome = source.Fail
		}
		r.Message = fmt.Sprintf("%s; %s", r.Message, verdict)
		return r
	case ev.EValue >= SequentialThreshold || st.Failed:
		st.Failed = true
		r.Outcome = source.Fail
	case ev.Upper <= ev.Tolerance:
		r.Outcome = source.Pass
	default:
		r.Outcome = source.Inconclusive
	}
	r.Message = fmt.Sprintf("%s: %s", r.Name, verdict)
	if note != "" {
		r.Message += "; " + note
	}
	return r
}

// gaugeDifference orients a gauge reading so that bigger is worse: for
// "<= stable·F + O" it is canary − stable·F held to the tolerance O; for
// ">= stable·F + O" (bigger is better) stable·F − canary held to −O.
func gaugeDifference(cond source.Condition, canary, stable float64) (d, tol float64) {
	if cond.Op == ">" || cond.Op == ">=" {
		return stable*cond.Factor - canary, -cond.Offset
	}
	return canary - stable*cond.Factor, cond.Offset
}

// count feeds a counter's increments since the previous reading. The
// first reading, a counter that went down (a restart reset it) and an
// interval during which the share changed only set the baseline: events
// whose share is unknown cannot be fed without breaking the test.
func (st *seqState) count(cond source.Condition, canary, stable, share float64) string {
	prev := *st
	st.Read, st.Canary, st.Stable, st.Share = true, canary, stable, share
	dc, ds := math.Round(canary-prev.Canary), math.Round(stable-prev.Stable)
	switch {
	case !prev.Read:
		return "first reading: baseline"
	case dc < 0 || ds < 0:
		return "a counter went down (reset): new baseline"
	case share != prev.Share:
		return "traffic changed since the last reading: new baseline"
	case !(share > 0 && share < 1):
		return "no traffic split to compare"
	}
	st.Counter.Update(uint64(dc), uint64(ds), counterShare(share, cond.Factor))
	return ""
}

// counterShare maps the canary's share π to the share under which "the
// canary's event rate is F times stable's" is the plain null of the
// binomial mixture: an event lands on the canary with probability
// Fπ/(Fπ + 1 − π). The mixture then tests "ratio ≤ F" exactly, and its
// ratio bounds are in units of F.
func counterShare(pi, f float64) float64 { return f * pi / (f*pi + 1 - pi) }

// evidence summarises st against cond, and says it in words.
func (st *seqState) evidence(cond source.Condition, alpha float64) (source.Evidence, string) {
	ev := source.Evidence{Kind: st.Kind, Threshold: SequentialThreshold}
	var words string
	switch st.Kind {
	case config.MetricGauge:
		g := st.Gauge
		_, tol := gaugeDifference(cond, 0, 0) // the tolerance only
		ev.Estimate, ev.Tolerance, ev.EValue, ev.Samples = g.Mean, tol, g.E(tol), uint64(g.N)
		ev.Upper, ev.Lower = g.Upper(alpha), math.Inf(-1)
		what := "canary − stable"
		if cond.Op == ">" || cond.Op == ">=" {
			what = "stable − canary"
		}
		if cond.Factor != 1 {
			what = "canary − " + num(cond.Factor) + "×stable"
			if cond.Op == ">" || cond.Op == ">=" {
				what = num(cond.Factor) + "×stable − canary"
			}
		}
		words = fmt.Sprintf("%s averages %s over %d evaluations (upper bound %s, tolerance %s); e-value %.3g (fails at %d)",
			what, signed(ev.Estimate), g.N, bound(ev.Upper), signed(tol), ev.EValue, SequentialThreshold)
		if g.N <= 10 {
			words += fmt.Sprintf("; the first 10 evaluations only set the scale of the test (%d so far)", g.N)
		}
	case config.MetricCounter:
		m := st.Counter
		f := cond.Factor
		lo, hi := m.RatioBounds(alpha)
		c, s := m.Counts()
		ev.Estimate, ev.Lower, ev.Upper, ev.Tolerance = m.RatioEstimate()*f, lo*f, hi*f, f
		ev.EValue, ev.Samples, ev.CanaryEvents, ev.StableEvents = m.E(), c+s, c, s
		est := "none yet"
		if c+s > 0 {
			est = bound(ev.Estimate)
		}
		words = fmt.Sprintf("events canary %d, stable %d; rate ratio %s in [%s, %s] (tolerance %s); e-value %.3g against ratio ≤ %s (fails at %d)",
			c, s, est, bound(ev.Lower), bound(ev.Upper), num(f), ev.EValue, num(f), SequentialThreshold)
	}
	switch {
	case st.Failed || ev.EValue >= SequentialThreshold:
		words += ": canary worse than the condition allows"
	case ev.Upper <= ev.Tolerance:
		words += ": bounded inside the condition"
	default:
		words += ": not yet bounded inside the condition"
	}
	ev.Estimate, ev.Lower, ev.Upper = source.Finite(ev.Estimate), source.Finite(ev.Lower), source.Finite(ev.Upper)
	ev.EValue = source.Finite(ev.EValue)
	return ev, words
}

func num(x float64) string { return strconv.FormatFloat(x, 'g', 4, 64) }

func signed(x float64) string {
	if x >= 0 {
		return "+" + num(x)
	}
	return num(x)
}

func bound(x float64) string {
	switch {
	case math.IsInf(x, 1) || math.IsNaN(x):
		return "unbounded"
	case math.IsInf(x, -1):
		return "-unbounded"
	}
	return num(x)
}
