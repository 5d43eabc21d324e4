package judge

import (
	"math"
)

// Gauge is the judge for a custom gauge metric (CPU, memory, a business
// ratio) where bigger is worse: a one-sided e-process on the differences
// canary − stable, one per interval, against "the mean difference is at most
// tol". It is self-normalised: with x_i = d_i − tol, the half-normal mixture
// over λ ≥ 0 of exp(λ·Σx_i − λ²·Σx_i²/2), a supermartingale whenever the
// differences are symmetric about a mean ≤ tol (de la Peña's inequality) —
// the case of two builds that read alike, whatever the tails — so no
// variance has to be estimated and one wild reading cannot fake evidence.
// The first 10 differences only fix the mixture's scale (predictable: set
// before the e-process starts). Measured (TestGaugeFalseAlarmsAtCustomThreshold,
// 4 000 null runs of an hour of 10 s intervals, fail at 1000): Gaussian,
// lognormal-difference and Student t(3) differences alike keep the 0.1 %
// budget; a plug-in normal mixture, its predecessor, crossed in 2.7 % of the
// heavy-tailed runs. The price is power: a one-sd shift takes about 44
// intervals instead of 34. Feed roughly independent differences (interval
// averages, 10 s or longer), not raw per-second samples of a smooth gauge.
// The release controller holds one per gauge metric
// (internal/release/sequential.go).
//
// The zero value is ready to use. Not safe for concurrent use. Fields are
// exported for JSON state only.
type Gauge struct {
	N     int     `json:"n"`     // differences seen
	Mean  float64 `json:"mean"`  // their running mean
	M2    float64 `json:"m2"`    // running sum of squared deviations (Welford)
	Used  int     `json:"used"`  // differences in the e-process (after the first 10)
	Sum   float64 `json:"sum"`   // Σ d_i over used differences
	Sum2  float64 `json:"sum2"`  // Σ d_i² over used differences
	Prior float64 `json:"prior"` // mixture precision ρ, in units of d², fixed at the 10th difference
}

// gaugeWarm is the number of differences used only to set the scale.
const gaugeWarm = 10

// gaugePrecision times the warm-up variance is the mixture's precision ρ:
// a prior on λ of about 0.7 over the differences' standard deviation,
// tuned on TestGaugePower (a one-sd shift: 44 intervals; ρ at 1/30 of the
// variance took 51).
const gaugePrecision = 2

// Observe adds one difference canary − stable.
func (g *Gauge) Observe(d float64) {
	if math.IsNaN(d) || math.IsInf(d, 0) {
		return
	}
	if g.N >= gaugeWarm && g.Prior > 0 {
		g.Used++
		g.Sum += d
		g.Sum2 += d * d
	}
	g.N++
	delta := d - g.Mean
	g.Mean += delta / float64(g.N)
	g.M2 += delta * (d - g.Mean)
	if g.N == gaugeWarm {
		g.Prior = g.M2 / float64(g.N-1) * gaugePrecision // 0 if the warm-up never moved: then no evidence
	}
}

// excess returns Σ(d_i − tol) and Σ(d_i − tol)² over the used differences.
func (g *Gauge) excess(tol float64) (s, v float64) {
	n := float64(g.Used)
	return g.Sum - n*tol, g.Sum2 - 2*tol*g.Sum + n*tol*tol
}

// E returns the e-value against "mean difference ≤ tol".
func (g *Gauge) E(tol float64) float64 {
	s, v := g.excess(tol)
	return halfNormalMixture(s, v, g.Prior)
}

func halfNormalMixture(s, v, rho float64) float64 {
	if v == 0 || rho == 0 {
		return 1
	}
	// ∫₀^∞ exp(λs − λ²v/2) · 2·N(λ; 0, 1/ρ) dλ
	a := v + rho
	return 2 * math.Sqrt(rho/a) * math.Exp(s*s/(2*a)) * normCDF(s/math.Sqrt(a))
}

func normCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// Upper returns an upper confidence bound of the mean difference, valid at
// all times at level 1 − alpha under the same assumptions: the smallest tol
// at which the mirrored e-process against "mean ≥ tol" reaches 1/alpha.
// +Inf until there is enough data (a self-normalised bound needs a few
// dozen differences before it can exclude anything).
func (g *Gauge) Upper(alpha float64) float64 {
	if g.Used == 0 || g.Prior == 0 {
		return math.Inf(1)
	}
	rej := func(tol float64) bool {
		s, v := g.excess(tol)
		return halfNormalMixture(-s, v, g.Prior) >= 1/alpha
	}
	// Rejection grows with tol above the mean: bracket, then bisect.
	lo := g.Sum / float64(g.Used)                             // the mean: never rejected
	step := math.Max(1e-9, math.Sqrt(g.Prior/gaugePrecision)) // the warm-up's standard deviation
	hi := lo + step
	for i := 0; !rej(hi); i++ {
		if i > 60 {
			return math.Inf(1)
		}
		step *= 2
		hi = lo + step
	}
	for range 100 {
		mid := (lo + hi) / 2
		if rej(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}
