// Package sim is a virtual-clock simulator that drives synthetic traffic
// through the real judge (package judge, the same code the release
// controller runs) following the protocol of JUDGE.md, next to the
// baselines of the field (a Flagger-style rule, Argo Rollouts' documented
// example, a Kayenta-style Mann–Whitney test, a naive z-test) fed the same
// traffic. It is deterministic for a seed.
//
// Traffic is drawn per one-second bin, not per event where it can be
// avoided: in per-request mode the counts of failed and successful requests
// of each build are independent Poisson variates (Poisson splitting), and
// each request's latency is one O(1) draw of its histogram bucket from the
// exact bucket probabilities of the lognormal. Sticky mode draws every
// request (its user, outcome and latency), because users are the unit.
package sim

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/canaryd/canaryd/internal/judge"
)

// Fault is what is wrong with the canary, from t = 0.
type Fault struct {
	// ErrDelta is added to the canary's per-request failure probability.
	ErrDelta float64
	// LatencyFactor multiplies every canary latency (0 or 1: none).
	LatencyFactor float64
	// TailFactor multiplies the canary latencies that are above stable's
	// true p99 (a p99-only regression; 0 or 1: none).
	TailFactor float64
}

// Scenario is one cell of the protocol.
type Scenario struct {
	Name string
	Mode judge.Mode // "" = per request
	// Rate is the total randomised requests per second; Share the canary's
	// share at t = 0 and, if ShareEnd > 0, ramping linearly (updated each
	// minute) to ShareEnd at the end.
	Rate, Share, ShareEnd float64
	// BaseErr is both builds' failure probability, drifting linearly to
	// BaseErrEnd when that is > 0.
	BaseErr, BaseErrEnd float64
	// Bursts multiplies both builds' failure probability by 10 for 30 s
	// every 10 minutes (from minute 5).
	Bursts bool
	// Clustered users (sticky mode): request rates Pareto(α = 1.2), 1 % of
	// users "bad clients" failing half their requests on both builds, a
	// per-user latency factor lognormal(σ = 0.5).
	Clustered bool
	// UserEvery is the mean seconds between one user's requests in sticky
	// mode (default 10).
	UserEvery float64
	Fault     Fault
	// Duration of the run (default 60 min).
	Duration time.Duration
	// Policy handed to the judge (Mode is set from the scenario).
	Policy judge.Policy
}

// Method names in a Result.
const (
	MethodJudge           = "judge"
	MethodJudgePerRequest = "judge per-request" // sticky traffic judged per request: what not to do
	MethodFlagger         = "flagger"
	MethodArgo            = "argo"
	MethodKayenta         = "kayenta"
	MethodZTest           = "z-test"
)

// Methods lists the methods in report order, the order of a Result.
func Methods() [6]string {
	return [6]string{MethodJudge, MethodJudgePerRequest, MethodFlagger, MethodArgo, MethodKayenta, MethodZTest}
}

// Detection is what one method did in one run.
type Detection struct {
	Ran    bool          // the method was run on this scenario
	Failed bool          // it rolled back
	At     time.Duration // when (virtual time since the start)
	// Harm is the excess failed canary requests (those due to the fault)
	// before the rollback, or over the whole run without one.
	Harm float64
	// Passed and PassAt: the judge's first Pass verdict (judge only),
	// asked every 30 s after the bake time with the whole run as one step.
	Passed bool
	PassAt time.Duration
	Why    string // the judge's first failing metric
}

// Result holds every method's Detection for one run, indexed like Methods.
type Result [6]Detection

// DefaultPolicy is the policy the tables use: basic.yaml's analysis with a
// 2-minute bake, and the count-based guardrails (max_errors,
// max_users_harmed) off, because they are absolute counts that any
// release with traffic and a base error rate reaches (see docs/analysis.md).
func DefaultPolicy() judge.Policy {
	return judge.Policy{
		Interval:            10 * time.Second,
		MaxErrorRateDelta:   0.01,
		MaxLatencyP99:       time.Second,
		MaxLatencyDeviation: 0.3,
		MinSamples:          100,
		BakeTime:            2 * time.Minute,
	}
}

const (
	medianLatency = 50 * time.Millisecond
	sigmaLatency  = 0.5
)

// p99 of the base latency distribution.
var baseP99 = time.Duration(float64(medianLatency) * math.Exp(2.3263478740408408*sigmaLatency))

func (s Scenario) withDefaults() Scenario {
	if s.Mode == "" {
		s.Mode = judge.PerRequest
	}
	if s.Duration == 0 {
		s.Duration = time.Hour
	}
	if s.UserEvery == 0 {
		s.UserEvery = 10
	}
	if s.Policy == (judge.Policy{}) {
		s.Policy = DefaultPolicy()
	}
	s.Policy.Mode = s.Mode
	return s
}

func (s Scenario) share(sec int) float64 {
	if s.ShareEnd <= 0 {
		return s.Share
	}
	m := float64(sec/60*60) / s.Duration.Seconds()
	return s.Share + (s.ShareEnd-s.Share)*m
}

func (s Scenario) baseErr(sec int) float64 {
	p := s.BaseErr
	if s.BaseErrEnd > 0 {
		p += (s.BaseErrEnd - s.BaseErr) * float64(sec) / s.Duration.Seconds()
	}
	if s.Bursts && sec%600 >= 300 && sec%600 < 330 {
		p = min(10*p, 0.5)
	}
	return p
}

type users struct {
	pick   *alias // user index by request rate
	bad    []bool
	factor []float64 // log latency shift
	bucket []float64 // cohort position in [0, 1): canary when < share
	hash   []uint64
}

func newUsers(r *rand.Rand, s Scenario) *users {
	n := max(int(s.Rate*s.UserEvery), 1)
	u := &users{bad: make([]bool, n), factor: make([]float64, n), bucket: make([]float64, n), hash: make([]uint64, n)}
	rates := make([]float64, n)
	for i := range n {
		rates[i] = 1
		if s.Clustered {
			rates[i] = math.Pow(1-r.Float64(), -1/1.2) // Pareto(α = 1.2), scale cancels
			u.bad[i] = r.Float64() < 0.01
			u.factor[i] = 0.5 * r.NormFloat64()
		}
		u.bucket[i] = r.Float64()
		u.hash[i] = r.Uint64()
	}
	u.pick = newAlias(rates)
	return u
}

func (a *alias) index(r *rand.Rand) int {
	u := r.Uint64()
	m := uint64(len(a.prob))
	i := (u >> 32) * m >> 32
	if float64(u&0xffffffff)/(1<<32) >= a.prob[i] {
		i = uint64(a.alias[i])
	}
	return int(i)
}

// Run simulates one release of scenario s with seed and returns what every
// method did. A run ends when every method has rolled back or the
// scenario's duration is over.
func Run(s Scenario, seed uint64) Result {
	s = s.withDefaults()
	r := newRand(seed)
	var res Result
	jd, err := judge.New(s.Policy)
	if err != nil {
		panic(err) // the tables' policies are constants
	}
	sticky := s.Mode == judge.Sticky
	var (
		jpr  *judge.Judge
		tr   *judge.Tracker
		pop  *users
		base = newAlias(lognormalBuckets(medianLatency, sigmaLatency, 1, 0))
		can  = base
	)
	if f := s.Fault; f.LatencyFactor > 0 && f.LatencyFactor != 1 {
		can = newAlias(lognormalBuckets(medianLatency, sigmaLatency, f.LatencyFactor, 0))
	} else if f.TailFactor > 0 && f.TailFactor != 1 {
		can = newAlias(lognormalBuckets(medianLatency, sigmaLatency, f.TailFactor, baseP99))
	}
	for i := range res {
		res[i].Ran = Methods()[i] != MethodJudgePerRequest || sticky
	}
	if sticky {
		p := s.Policy
		p.Mode = judge.PerRequest
		jpr, _ = judge.New(p)
		tr = judge.NewTracker(1)
		pop = newUsers(r, s)
	}
	var bl baselines
	bin := new(judge.Bin)
	start := time.Unix(1_800_000_000, 0).UTC()
	secs := int(s.Duration / time.Second)
	var harm float64
	passEvery := 30
	bake := int(s.Policy.BakeTime / time.Second)
	mu := math.Log(float64(medianLatency))
	for sec := 0; sec < secs; sec++ {
		pi, p := s.share(sec), s.baseErr(sec)
		*bin = judge.Bin{Time: start.Add(time.Duration(sec+1) * time.Second), Share: pi}
		if !sticky {
			lc, ls := s.Rate*pi, s.Rate*(1-pi)
			d := min(s.Fault.ErrDelta, 1-p)
			ecBase, ecEx := poisson(r, lc*p), poisson(r, lc*d)
			okC := poisson(r, lc*(1-p-d))
			es, okS := poisson(r, ls*p), poisson(r, ls*(1-p))
			bin.Canary.Errors, bin.Canary.Requests = ecBase+ecEx, ecBase+ecEx+okC
			bin.Stable.Errors, bin.Stable.Requests = es, es+okS
			harm += float64(ecEx)
			can.draw(r, bin.Canary.Requests, &bin.Canary.Latency)
			base.draw(r, bin.Stable.Requests, &bin.Stable.Latency)
		} else {
			harm += simulateUsers(r, s, pop, tr, bin, pi, p, mu)
			tr.Drain(bin)
		}
		elapsed := time.Duration(sec+1) * time.Second
		if err := jd.Observe(bin); err != nil {
			panic(err)
		}
		if tr != nil {
			tr.SetThresholds(jd.Thresholds())
		}
		if d := &res[0]; !d.Failed {
			if f, _ := jd.Failed(); f {
				d.Failed, d.At, d.Harm = true, elapsed, harm
				d.Why = jd.Verdict(bin.Time, start).Reasons[0].Metric
			} else if !d.Passed && sec+1 >= bake && (sec+1)%passEvery == 0 {
				if v := jd.Verdict(bin.Time, start); v.Outcome == judge.Pass {
					d.Passed, d.PassAt = true, elapsed
				}
			}
		}
		if jpr != nil && !res[1].Failed {
			_ = jpr.Observe(bin)
			if f, _ := jpr.Failed(); f {
				res[1] = Detection{Ran: true, Failed: true, At: elapsed, Harm: harm}
			}
		}
		for i, failed := range bl.observe(sec+1, bin) {
			if d := &res[2+i]; failed && !d.Failed {
				d.Failed, d.At, d.Harm = true, elapsed, harm
			}
		}
		done := true
		for i := range res {
			if res[i].Ran && !res[i].Failed {
				done = false
			}
		}
		if done {
			break
		}
	}
	for i := range res {
		if res[i].Ran && !res[i].Failed {
			res[i].Harm = harm
		}
	}
	return res
}

// simulateUsers draws one second of sticky traffic request by request and
// returns the excess (fault-caused) canary failures.
func simulateUsers(r *rand.Rand, s Scenario, pop *users, tr *judge.Tracker, bin *judge.Bin, pi, p, mu float64) float64 {
	var harm float64
	k := poisson(r, s.Rate)
	f := s.Fault
	for ; k > 0; k-- {
		i := pop.pick.index(r)
		canary := pop.bucket[i] < pi
		pf := p
		if pop.bad[i] {
			pf = 0.5
		}
		d := 0.0
		if canary {
			d = min(f.ErrDelta, 1-pf)
		}
		u := r.Float64()
		failed := u < pf+d
		if failed && u >= pf {
			harm++
		}
		lb := math.Exp(mu + sigmaLatency*r.NormFloat64())
		if canary && f.TailFactor > 0 && lb >= float64(baseP99) {
			lb *= f.TailFactor
		}
		lat := lb * math.Exp(pop.factor[i])
		if canary && f.LatencyFactor > 0 {
			lat *= f.LatencyFactor
		}
		dur := time.Duration(lat)
		smp, b := &bin.Stable, judge.Stable
		if canary {
			smp, b = &bin.Canary, judge.Canary
		}
		smp.Requests++
		if failed {
			smp.Errors++
		}
		smp.Latency.Record(dur)
		tr.Observe(pop.hash[i], b, failed, dur)
	}
	return harm
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
