// Package judge is canaryd's statistics: per-second samples of two builds in,
// a Verdict out. It compares the canary with stable concurrently using
// anytime-valid e-processes (see ../../../shared/JUDGE.md and
// docs/analysis.md), one per metric family for the whole release, so it may
// be looked at every second within a fixed false-rollback budget. It does no
// I/O and keeps no clock: time comes in with the data.
package judge

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/canaryd/canaryd/internal/latency"
)

// quantiles are the stable quantiles whose exceedances the latency
// e-process counts (p75, p90, p99), in the order of Sample.FirstExceed and
// Judge.Thresholds.
var quantiles = [3]float64{0.75, 0.90, 0.99}

// Sample is what one build did during one bin. Only randomised traffic
// belongs here: requests placed by overrides, allow/deny lists or segment
// rules, and stable retries of failed canary requests, are samples of
// neither build (the failed canary attempt itself counts for the canary).
type Sample struct {
	Requests uint64            `json:"requests"`
	Errors   uint64            `json:"errors"`
	Latency  latency.Histogram `json:"latency"`
	// FirstErrors is the number of users whose first failed request in the
	// release happened in this bin on this build (from a Tracker). Used as
	// the error unit in Sticky mode and for the users-harmed guardrail in
	// both modes.
	FirstErrors uint64 `json:"first_errors"`
	// FirstExceed is the number of users whose first request slower than
	// Thresholds()[k] happened in this bin on this build (Sticky mode).
	FirstExceed [3]uint64 `json:"first_exceed"`
}

// Bin is one second (or any short, regular period) of both builds.
type Bin struct {
	// Time is the end of the bin; bins must arrive in increasing Time.
	Time time.Time `json:"time"`
	// Share is the canary's probability π during the bin: the router's
	// per-request probability (PerRequest) or the cohort window's share of
	// eligible users (Sticky). It must come from the routing state, not
	// from the observed counts. Bins with Share 0 or 1 test nothing.
	Share  float64 `json:"share"`
	Stable Sample  `json:"stable"`
	Canary Sample  `json:"canary"`
}

const (
	recentLen    = 60                   // bins kept for guardrails (seconds)
	chunkSecs    = 10                   // one chunk of the 5-minute latency windows
	chunks       = 30                   // 30 × 10 s = 5 minutes
	minQuantile  = 50                   // stable requests in the window before thresholds exist
	minDeviation = 1000                 // stable requests in the window before the deviation ceiling applies
	harmWindow   = 30                   // bins of the HarmRate guardrail
	maxHistory   = 48*360 + historyFine // points of History: 48 h at one per 10 s, plus the recent ones
	historyStep  = 10                   // seconds between History points older than historyFine
	historyFine  = 600                  // the last 10 minutes keep a point per bin, so a step's samples count from its start
)

// window is a sliding 5-minute histogram made of 10-second chunks.
type window struct {
	Chunks [chunks]latency.Histogram `json:"chunks"`
	IDs    [chunks]int64             `json:"ids"`
	Sum    latency.Histogram         `json:"sum"`
}

func (w *window) add(t time.Time, h *latency.Histogram) {
	id := t.Unix() / chunkSecs
	for i := range w.Chunks {
		if w.IDs[i] <= id-chunks && w.Chunks[i].Total > 0 {
			w.subtract(i)
		}
	}
	i := int(((id % chunks) + chunks) % chunks)
	if w.IDs[i] != id {
		w.subtract(i)
		w.IDs[i] = id
	}
	if h.Total == 0 {
		return
	}
	w.Chunks[i].Merge(h)
	w.Sum.Merge(h)
}

// windowJSON is a window's sparse encoding: per chunk, its id and its
// non-empty buckets as [index, count] pairs. Sum is recomputed on decode.
type windowJSON struct {
	IDs    [chunks]int64       `json:"ids"`
	Chunks [chunks][][2]uint64 `json:"chunks"`
}

// MarshalJSON encodes the window sparsely: about 2 kB instead of 60 kB.
func (w *window) MarshalJSON() ([]byte, error) {
	var v windowJSON
	v.IDs = w.IDs
	for i := range w.Chunks {
		for b, n := range w.Chunks[i].Counts {
			if n > 0 {
				v.Chunks[i] = append(v.Chunks[i], [2]uint64{uint64(b), n})
			}
		}
	}
	return json.Marshal(v)
}

// UnmarshalJSON decodes what MarshalJSON wrote.
func (w *window) UnmarshalJSON(b []byte) error {
	var v windowJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*w = window{IDs: v.IDs}
	for i, pairs := range v.Chunks {
		for _, p := range pairs {
			if p[0] >= latency.NumBuckets {
				return fmt.Errorf("latency window chunk %d: bucket %d out of range", i, p[0])
			}
			w.Chunks[i].Counts[p[0]] += p[1]
			w.Chunks[i].Total += p[1]
		}
		w.Sum.Merge(&w.Chunks[i])
	}
	return nil
}

func (w *window) subtract(i int) {
	c := &w.Chunks[i]
	if c.Total == 0 {
		return
	}
	for b, n := range c.Counts {
		w.Sum.Counts[b] -= n
	}
	w.Sum.Total -= c.Total
	c.Reset()
}

type recentBin struct {
	T          int64  `json:"t"`
	CReq       uint64 `json:"c_req"`
	CErr       uint64 `json:"c_err"`
	SReq       uint64 `json:"s_req"`
	SErr       uint64 `json:"s_err"`
	CFirstErr  uint64 `json:"c_first_err"`
	CAboveAbs  uint64 `json:"c_above_abs"`
	CAboveDev  uint64 `json:"c_above_dev"`
	DevDefined bool   `json:"dev_defined"`
}

// histPoint is the canary's cumulative counts before the bin that started
// at T; one is kept every historyStep seconds.
type histPoint struct {
	T    int64  `json:"t"` // unix seconds
	CReq uint64 `json:"c_req"`
	CErr uint64 `json:"c_err"`
}

type totals struct {
	Requests    uint64 `json:"requests"`
	Errors      uint64 `json:"errors"`
	FirstErrors uint64 `json:"first_errors"`
}

// state is everything the judge remembers; JSON-encodable for resumption.
type state struct {
	Errors      Mixture              `json:"errors"`
	Latency     [3]Mixture           `json:"latency"`
	Thresholds  [3]time.Duration     `json:"thresholds"`
	NextRefresh int64                `json:"next_refresh"`
	StableWin   window               `json:"stable_window"`
	CanaryWin   window               `json:"canary_window"`
	Last        int64                `json:"last"`
	WarmUntil   int64                `json:"warm_until"`
	Canary      totals               `json:"canary"`
	Stable      totals               `json:"stable"`
	Recent      [recentLen]recentBin `json:"recent"`
	History     []histPoint          `json:"history"`
	Bins        uint64               `json:"bins"`
	FailedAt    int64                `json:"failed_at"`
	FailReasons []Reason             `json:"fail_reasons,omitempty"`
}

// Judge holds one release's evidence, from the first canary traffic to
// promotion or rollback: it is never reset between steps. Not safe for
// concurrent use: one goroutine (the release controller) calls Observe once
// a second and Verdict whenever it wants a decision. A Judge is large
// (about 600 kB: two 5-minute latency windows) and should be reused through
// the release, not copied.
type Judge struct {
	p  Policy
	st state
}

// New returns a judge for one release under p (zero statistical settings
// take their defaults).
func New(p Policy) (*Judge, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Judge{p: p.withDefaults()}, nil
}

// Policy returns the policy in force, defaults filled in.
func (j *Judge) Policy() Policy { return j.p }

// MarkHealthy tells the judge the canary endpoints turned healthy at t:
// bins ending before t + WarmUp feed stable's latency window but are not
// judged.
func (j *Judge) MarkHealthy(t time.Time) {
	j.st.WarmUntil = t.Add(j.p.WarmUp).UnixNano()
}

// Thresholds returns the latency thresholds in force (stable's p75, p90,
// p99 over the 5 minutes before the last refresh), zero until stable has
// enough requests. In Sticky mode the controller hands them to the Tracker
// after every Observe so first exceedances are counted against them.
func (j *Judge) Thresholds() [3]time.Duration { return j.st.Thresholds }

// Failed reports whether the release has failed, and when.
func (j *Judge) Failed() (bool, time.Time) {
	if j.st.FailedAt == 0 {
		return false, time.Time{}
	}
	return true, time.Unix(0, j.st.FailedAt).UTC()
}

// Observe adds one bin. Bins must come in increasing Time; an earlier or
// equal Time, or a Share outside [0, 1], is an error and the bin is
// dropped. After a failure bins are still recorded (the numbers keep being
// reported) but the release stays failed.
func (j *Judge) Observe(b *Bin) error {
	t := b.Time.UnixNano()
	if t <= j.st.Last && j.st.Bins > 0 {
		return fmt.Errorf("judge: bin at %v is not after the previous one at %v", b.Time, time.Unix(0, j.st.Last).UTC())
	}
	if !(b.Share >= 0 && b.Share <= 1) {
		return fmt.Errorf("judge: bin at %v: share %v outside [0, 1]", b.Time, b.Share)
	}
	binStart := b.Time.Add(-time.Second).Unix()
	if j.st.Bins > 0 {
		binStart = time.Unix(0, j.st.Last).Unix()
	}
	j.st.Last = t
	j.st.Bins++

	// Thresholds come from stable's data before this bin.
	if t >= j.st.NextRefresh {
		j.st.NextRefresh = t + int64(j.p.Refresh)
		if w := &j.st.StableWin.Sum; w.Total >= minQuantile {
			for k, q := range quantiles {
				j.st.Thresholds[k] = w.Quantile(q)
			}
		}
	}
	thr := j.st.Thresholds
	defer j.st.StableWin.add(b.Time, &b.Stable.Latency)
	if t < j.st.WarmUntil {
		return nil
	}
	j.st.CanaryWin.add(b.Time, &b.Canary.Latency)

	c, s := &b.Canary, &b.Stable
	j.appendHistory(binStart)
	j.st.Canary.add(c)
	j.st.Stable.add(s)

	// The e-processes.
	pi := b.Share
	if j.p.Mode == Sticky {
		j.st.Errors.Update(c.FirstErrors, s.FirstErrors, pi)
		if thr[0] > 0 {
			for k := range thr {
				j.st.Latency[k].Update(c.FirstExceed[k], s.FirstExceed[k], pi)
			}
		}
	} else {
		j.st.Errors.Update(c.Errors, s.Errors, pi)
		if thr[0] > 0 {
			for k, d := range thr {
				j.st.Latency[k].Update(c.Latency.CountAbove(d), s.Latency.CountAbove(d), pi)
			}
		}
	}

	// Guardrail inputs for this bin.
	rb := recentBin{T: b.Time.Unix(), CReq: c.Requests, CErr: c.Errors, SReq: s.Requests, SErr: s.Errors, CFirstErr: c.FirstErrors}
	if j.p.MaxLatencyP99 > 0 {
		rb.CAboveAbs = c.Latency.CountAbove(j.p.MaxLatencyP99)
	}
	// The deviation ceiling needs a stable p99 estimated from at least ten
	// exceedances.
	if j.p.MaxLatencyDeviation > 0 && thr[2] > 0 && j.st.StableWin.Sum.Total >= minDeviation {
		rb.CAboveDev = c.Latency.CountAbove(time.Duration(float64(thr[2]) * (1 + j.p.MaxLatencyDeviation)))
		rb.DevDefined = true
	}
	j.st.Recent[j.st.Bins%recentLen] = rb

	if j.st.FailedAt == 0 {
		if rs := j.failures(); len(rs) > 0 {
			j.st.FailedAt = t
			for _, r := range rs {
				j.st.FailReasons = append(j.st.FailReasons, r.sanitized())
			}
		}
	}
	return nil
}

func (t *totals) add(s *Sample) {
	t.Requests += s.Requests
	t.Errors += s.Errors
	t.FirstErrors += s.FirstErrors
}

func (j *Judge) appendHistory(start int64) {
	h := &j.st.History
	if len(*h) > 0 && start <= (*h)[len(*h)-1].T {
		return
	}
	if len(*h) >= maxHistory {
		*h = append((*h)[:0], (*h)[len(*h)/2:]...)
	}
	*h = append(*h, histPoint{T: start, CReq: j.st.Canary.Requests, CErr: j.st.Canary.Errors})
	// Once a minute, thin the points older than historyFine to one per
	// historyStep: a step's start is then found to the second while it is
	// recent, and the saved state stays small over a long release.
	if start%60 == 0 {
		kept := (*h)[:0]
		var last int64 = -historyStep
		for _, p := range *h {
			if p.T >= start-historyFine || p.T-last >= historyStep {
				kept = append(kept, p)
				last = p.T
			}
		}
		*h = kept
	}
}

// errorE and latencyE are the current e-values.
func (j *Judge) errorE() float64 { return j.st.Errors.E() }

func (j *Judge) latencyE() float64 {
	return (j.st.Latency[0].E() + j.st.Latency[1].E() + j.st.Latency[2].E()) / 3
}

// recentSums adds the last n bins (by time) of the guardrail ring.
func (j *Judge) recentSums(n int) (r recentBin) {
	cut := time.Unix(0, j.st.Last).Unix() - int64(n)
	for _, b := range j.st.Recent {
		if b.T > cut && b.T != 0 {
			r.CReq += b.CReq
			r.CErr += b.CErr
			r.SReq += b.SReq
			r.SErr += b.SErr
			r.CFirstErr += b.CFirstErr
			r.CAboveAbs += b.CAboveAbs
			if b.DevDefined {
				r.CAboveDev += b.CAboveDev
				r.DevDefined = true
			}
		}
	}
	return r
}

// failures returns the reasons to fail now, if any.
func (j *Judge) failures() []Reason {
	var rs []Reason
	base := Reason{Outcome: Fail, CanarySamples: j.st.Canary.Requests, StableSamples: j.st.Stable.Requests, UsersHarmed: j.st.Canary.FirstErrors}
	if e := j.errorE(); e >= j.p.ErrorThreshold {
		rs = append(rs, j.errorReason(time.Unix(0, j.st.Last), time.Time{}, false))
	}
	if e := j.latencyE(); e >= j.p.LatencyThreshold {
		rs = append(rs, j.latencyReason(time.Unix(0, j.st.Last), time.Time{}, false))
	}
	if m := j.p.MaxUsersHarmed; m > 0 && j.st.Canary.FirstErrors >= m {
		r := base
		r.Metric, r.Estimate, r.Limit = GuardUsersHarmed, float64(j.st.Canary.FirstErrors), float64(m)
		r.Message = fmt.Sprintf("%d distinct users saw a failed canary request (limit %d)", j.st.Canary.FirstErrors, m)
		rs = append(rs, r)
	}
	h := j.recentSums(harmWindow)
	cLo, _ := Wilson(h.CErr, h.CReq, 4)
	sRate := rate(h.SErr, h.SReq)
	if cLo > j.p.HarmRate && sRate < j.p.HarmRate/4 && (j.p.Mode != Sticky || h.CFirstErr >= 3) {
		r := base
		_, cHi := Wilson(h.CErr, h.CReq, 4)
		r.Metric, r.Estimate, r.Lower, r.Upper, r.Limit = GuardHarmRate, rate(h.CErr, h.CReq), cLo, cHi, j.p.HarmRate
		r.Message = fmt.Sprintf("canary failed %d of %d requests in the last %d s (%.1f %%, lower bound %.1f %%) above %.0f %% while stable failed %.2f %%",
			h.CErr, h.CReq, harmWindow, 100*rate(h.CErr, h.CReq), 100*cLo, 100*j.p.HarmRate, 100*sRate)
		rs = append(rs, r)
	}
	iv := j.recentSums(int(j.p.Interval / time.Second))
	if m := j.p.MaxErrors; m > 0 && iv.CErr > m {
		r := base
		r.Metric, r.Estimate, r.Limit = GuardMaxErrors, float64(iv.CErr), float64(m)
		r.Message = fmt.Sprintf("canary failed %d requests in the last %v (limit %d)", iv.CErr, j.p.Interval, m)
		rs = append(rs, r)
	}
	// Latency ceilings count requests, so in sticky mode one slow heavy
	// user would fail a healthy canary: there they only block a pass, and
	// the user-level latency e-process fails a slow canary.
	if j.p.Mode == Sticky {
		return rs
	}
	// Latency ceilings: fail only when clearly more than 1 % of canary
	// requests in the interval are above the ceiling: the binomial
	// probability of so many at exactly 1 % is ≤ ceilingP. This is checked
	// every bin; ceilingP is small enough that an hour of looks at a canary
	// whose p99 sits exactly at the ceiling fails it with probability
	// < 0.1 %, and one much below the ceiling practically never.
	if j.p.MaxLatencyP99 > 0 {
		if pv := binomialTail(iv.CAboveAbs, iv.CReq, 0.01); pv <= ceilingP {
			r := base
			lo, hi := Wilson(iv.CAboveAbs, iv.CReq, 3)
			r.Metric, r.Estimate, r.Lower, r.Upper, r.Limit = GuardLatencyP99, rate(iv.CAboveAbs, iv.CReq), lo, hi, 0.01
			r.Message = fmt.Sprintf("%d of %d canary requests in the last %v slower than %v (%.1f %%; P = %.1g if only 1 %% were): p99 above max_latency_p99",
				iv.CAboveAbs, iv.CReq, j.p.Interval, j.p.MaxLatencyP99, 100*rate(iv.CAboveAbs, iv.CReq), pv)
			rs = append(rs, r)
		}
	}
	if j.p.MaxLatencyDeviation > 0 && iv.DevDefined {
		if pv := binomialTail(iv.CAboveDev, iv.CReq, 0.01); pv <= ceilingP {
			lim := time.Duration(float64(j.st.Thresholds[2]) * (1 + j.p.MaxLatencyDeviation))
			r := base
			lo, hi := Wilson(iv.CAboveDev, iv.CReq, 3)
			r.Metric, r.Estimate, r.Lower, r.Upper, r.Limit = GuardLatencyDeviance, rate(iv.CAboveDev, iv.CReq), lo, hi, 0.01
			r.Message = fmt.Sprintf("%d of %d canary requests in the last %v slower than %v (stable p99 %v + %.0f %%; P = %.1g if only 1 %% were)",
				iv.CAboveDev, iv.CReq, j.p.Interval, lim, j.st.Thresholds[2], 100*j.p.MaxLatencyDeviation, pv)
			rs = append(rs, r)
		}
	}
	return rs
}

// ceilingP is the per-look p-value at which a latency ceiling fails.
const ceilingP = 1e-7

// binomialTail returns P(X ≥ x) for X ~ Binomial(n, p).
func binomialTail(x, n uint64, p float64) float64 {
	if x == 0 {
		return 1
	}
	if x > n {
		return 0
	}
	fn := float64(n)
	lg := func(k float64) float64 {
		a, _ := math.Lgamma(fn + 1)
		b, _ := math.Lgamma(k + 1)
		c, _ := math.Lgamma(fn - k + 1)
		return a - b - c + k*math.Log(p) + (fn-k)*math.Log1p(-p)
	}
	var s float64
	first := lg(float64(x))
	for k := x; k <= n; k++ {
		t := math.Exp(lg(float64(k)) - first)
		s += t
		if t < 1e-12*s {
			break
		}
	}
	return min(1, math.Exp(first)*s)
}

func rate(x, n uint64) float64 {
	if n == 0 {
		return 0
	}
	return float64(x) / float64(n)
}

// stepSamples returns the canary requests and errors since stepStart,
// counted from the first History point at or after it: up to historyStep
// seconds of the step's start are left out, never data from before it.
func (j *Judge) stepSamples(stepStart time.Time) (req, errs uint64) {
	h := j.st.History
	s := stepStart.Unix()
	i := sort.Search(len(h), func(i int) bool { return h[i].T >= s })
	if i == len(h) {
		return 0, 0
	}
	return j.st.Canary.Requests - h[i].CReq, j.st.Canary.Errors - h[i].CErr
}

// errorReason judges errors. With pass = false it only describes (used when
// failing, where the bounds are not needed).
func (j *Judge) errorReason(now, stepStart time.Time, pass bool) Reason {
	c, s := j.st.Canary, j.st.Stable
	rc, rs := rate(c.Errors, c.Requests), rate(s.Errors, s.Requests)
	e := j.errorE()
	r := Reason{
		Metric: MetricErrors, Estimate: rc - rs, EValue: e, Threshold: j.p.ErrorThreshold,
		Ratio: j.st.Errors.RatioEstimate(), Limit: j.p.MaxErrorRateDelta,
		CanarySamples: c.Requests, StableSamples: s.Requests, UsersHarmed: c.FirstErrors,
		Lower: math.Inf(-1), Upper: math.Inf(1),
	}
	unit := "failed requests"
	if j.p.Mode == Sticky {
		unit = "newly harmed users"
	}
	ec, es := j.st.Errors.Counts()
	head := fmt.Sprintf("canary %.2f %% (%d/%d) vs stable %.2f %% (%d/%d), %+.2f pp; %s canary %d, stable %d; %d users harmed; e-value %.3g",
		100*rc, c.Errors, c.Requests, 100*rs, s.Errors, s.Requests, 100*(rc-rs), unit, ec, es, c.FirstErrors, e)
	if e >= j.p.ErrorThreshold {
		r.Outcome = Fail
		r.Message = fmt.Sprintf("%s ≥ %.0f: canary fails more than stable", head, j.p.ErrorThreshold)
		return r
	}
	r.Outcome = Inconclusive
	if !pass {
		r.Message = head
		return r
	}
	// Pass needs an upper bound of the excess below tolerance: the smaller
	// of (ratio upper bound − 1) × stable's rate upper bound and the
	// canary's own rate upper bound (the excess cannot exceed it), with the
	// pass budget split three ways.
	a := j.p.PassAlpha / 3
	lo, hi := j.st.Errors.RatioBounds(a)
	sUp := RateUpper(s.Errors, s.Requests, a)
	cUp := RateUpper(c.Errors, c.Requests, a)
	up := cUp
	if hi < 1 {
		up = 0
	} else if v := (hi - 1) * sUp; v < up {
		up = v
	}
	r.Upper = min(up, 1)
	r.Lower = max((lo-1)*rs, -1)
	stepReq, _ := j.stepSamples(stepStart)
	r.StepSamples = stepReq
	bound := fmt.Sprintf("%s; rate ratio %.3g in [%.3g, %s], excess upper bound %+.2f pp (tolerance %.2f pp)",
		head, r.Ratio, lo, fmtBound(hi), 100*r.Upper, 100*j.p.MaxErrorRateDelta)
	switch {
	case now.Sub(stepStart) < j.p.BakeTime:
		r.Message = fmt.Sprintf("%s; baking %v of %v", bound, now.Sub(stepStart).Round(time.Second), j.p.BakeTime)
	case stepReq < j.p.MinSamples:
		r.Message = fmt.Sprintf("%s; %d canary requests this step, need %d", bound, stepReq, j.p.MinSamples)
	case r.Upper >= j.p.MaxErrorRateDelta:
		r.Message = fmt.Sprintf("%s; not yet bounded inside the tolerance", bound)
	default:
		r.Outcome = Pass
		r.Message = fmt.Sprintf("%s; bounded inside the tolerance", bound)
	}
	return r
}

func fmtBound(x float64) string {
	if math.IsInf(x, 1) {
		return "unbounded"
	}
	return fmt.Sprintf("%.3g", x)
}

// latencyReason judges latency.
func (j *Judge) latencyReason(now, stepStart time.Time, pass bool) Reason {
	e := j.latencyE()
	thr := j.st.Thresholds
	m := &j.st.Latency[1]
	r := Reason{
		Metric: MetricLatency, EValue: e, Threshold: j.p.LatencyThreshold,
		Estimate: m.RatioEstimate(), Ratio: m.RatioEstimate(), Lower: 0, Upper: math.Inf(1),
		CanarySamples: j.st.Canary.Requests, StableSamples: j.st.Stable.Requests, UsersHarmed: j.st.Canary.FirstErrors,
	}
	cp99, sp99 := j.st.CanaryWin.Sum.Quantile(0.99), j.st.StableWin.Sum.Quantile(0.99)
	var ex [3][2]uint64
	for k := range ex {
		ex[k][0], ex[k][1] = j.st.Latency[k].Counts()
	}
	head := fmt.Sprintf("stable p75/p90/p99 %v/%v/%v; exceedances canary/stable %d/%d, %d/%d, %d/%d; p99 (5 min) canary %v vs stable %v; e-value %.3g",
		thr[0], thr[1], thr[2], ex[0][0], ex[0][1], ex[1][0], ex[1][1], ex[2][0], ex[2][1], cp99, sp99, e)
	if e >= j.p.LatencyThreshold {
		r.Outcome = Fail
		r.Message = fmt.Sprintf("%s ≥ %.0f: canary slower than stable", head, j.p.LatencyThreshold)
		return r
	}
	r.Outcome = Inconclusive
	if !pass {
		r.Message = head
		return r
	}
	r.Lower, r.Upper = m.RatioBounds(j.p.PassAlpha)
	stepReq, _ := j.stepSamples(stepStart)
	r.StepSamples = stepReq
	switch {
	case thr[0] == 0:
		r.Message = fmt.Sprintf("%s; stable has too few requests for thresholds", head)
	case now.Sub(stepStart) < j.p.BakeTime:
		r.Message = fmt.Sprintf("%s; baking %v of %v", head, now.Sub(stepStart).Round(time.Second), j.p.BakeTime)
	case stepReq < j.p.MinSamples:
		r.Message = fmt.Sprintf("%s; %d canary requests this step, need %d", head, stepReq, j.p.MinSamples)
	case j.p.MaxLatencyP99 > 0 && cp99 > j.p.MaxLatencyP99:
		r.Message = fmt.Sprintf("%s; canary p99 above max_latency_p99 %v", head, j.p.MaxLatencyP99)
	case j.p.MaxLatencyDeviation > 0 && float64(cp99) > float64(sp99)*(1+j.p.MaxLatencyDeviation):
		r.Message = fmt.Sprintf("%s; canary p99 more than %.0f %% above stable's", head, 100*j.p.MaxLatencyDeviation)
	default:
		r.Outcome = Pass
		r.Message = fmt.Sprintf("%s; no evidence of a slower canary, p99 inside the ceilings", head)
	}
	return r
}

// Verdict judges the release at now for the step that started at
// stepStart. Fail is final: once any e-process or guardrail has failed, every
// later Verdict fails with the reasons recorded at that moment first. Pass
// needs the step's bake time, MinSamples canary requests in the step, errors
// bounded inside MaxErrorRateDelta by the confidence sequence, and no
// latency evidence. Cost: a few hundred logarithms; call it once a second at
// most.
func (j *Judge) Verdict(now, stepStart time.Time) Verdict {
	v := Verdict{At: now}
	er := j.errorReason(now, stepStart, true)
	lr := j.latencyReason(now, stepStart, true)
	if j.st.FailedAt != 0 {
		v.Outcome = Fail
		v.FailedAt = time.Unix(0, j.st.FailedAt).UTC()
		// The reasons recorded when it failed come first; the current
		// account of the metrics that did not fail follows.
		v.Reasons = append(v.Reasons, j.st.FailReasons...)
		for _, r := range []Reason{er, lr} {
			if !slices.ContainsFunc(v.Reasons, func(f Reason) bool { return f.Metric == r.Metric }) {
				v.Reasons = append(v.Reasons, r.sanitized())
			}
		}
		return v
	}
	v.Reasons = []Reason{er.sanitized(), lr.sanitized()}
	switch {
	case er.Outcome == Pass && lr.Outcome == Pass:
		v.Outcome = Pass
	default:
		v.Outcome = Inconclusive
	}
	return v
}

// MarshalJSON encodes the judge's policy and state so a controller can
// persist it and resume after a crash with UnmarshalJSON.
func (j *Judge) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Policy Policy `json:"policy"`
		State  *state `json:"state"`
	}{j.p, &j.st})
}

// UnmarshalJSON restores a judge written by MarshalJSON.
func (j *Judge) UnmarshalJSON(b []byte) error {
	var v struct {
		Policy Policy `json:"policy"`
		State  state  `json:"state"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("judge: decode state: %w", err)
	}
	if err := v.Policy.Validate(); err != nil {
		return err
	}
	j.p, j.st = v.Policy.withDefaults(), v.State
	return nil
}
