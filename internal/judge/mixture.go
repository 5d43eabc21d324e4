package judge

import (
	"math"
	"slices"
)

// Ratios are the alternatives the mixture e-processes average over: the
// canary's event rate as a multiple of stable's. Small ratios find small,
// long-lasting regressions; large ones find outages within seconds.
var ratios = [NumRatios]float64{1.25, 1.5, 2, 3, 5, 10}

// NumRatios is the number of alternatives in every mixture.
const NumRatios = 6

// Mixture is the conditional binomial mixture e-process of JUDGE.md for one
// event kind (failed requests, exceedances of one latency threshold, newly
// harmed users). In each bin every event of either build lands on the canary
// with probability π under "no difference", whatever the base rate does, so
//
//	M_t = mean over r of Π_bins (q_r/π)^x_c ((1−q_r)/(1−π))^x_s,  q_r = rπ/(rπ+1−π)
//
// has expectation 1 under that hypothesis and at most 1 when the canary is
// better: by Ville's inequality P(sup_t M_t ≥ 1/α) ≤ α however often it is
// read. It is one-sided: only a worse canary raises it.
//
// The zero value is a fresh process (M = 1). Not safe for concurrent use.
// Fields are exported for JSON state only; treat them as opaque.
type Mixture struct {
	LogM [NumRatios]float64 `json:"log_m"`
	// Groups holds the events per distinct canary share, the sufficient
	// statistic from which confidence sequences are computed at any time.
	Groups []Group `json:"groups,omitempty"`
}

// Group is the number of events seen on each build while the canary's
// share was Share.
type Group struct {
	Share  float64 `json:"share"`
	Canary uint64  `json:"canary"`
	Stable uint64  `json:"stable"`
}

// maxGroups bounds the per-share statistics kept for confidence sequences.
// Past it, new shares are merged into the closest existing one (documented
// approximation; the e-value itself is always exact).
const maxGroups = 256

// Update adds one bin: xc events on the canary and xs on stable while the
// canary's share was pi. Bins with pi outside (0, 1) carry no information
// and are ignored.
func (m *Mixture) Update(xc, xs uint64, pi float64) {
	if xc+xs == 0 || !(pi > 0 && pi < 1) {
		return
	}
	fc, ft := float64(xc), float64(xc+xs)
	for i, r := range ratios {
		m.LogM[i] += fc*math.Log(r) - ft*math.Log1p((r-1)*pi)
	}
	m.addGroup(xc, xs, pi)
}

func (m *Mixture) addGroup(xc, xs uint64, pi float64) {
	for i := range m.Groups {
		if m.Groups[i].Share == pi {
			m.Groups[i].Canary += xc
			m.Groups[i].Stable += xs
			return
		}
	}
	if len(m.Groups) < maxGroups {
		m.Groups = append(m.Groups, Group{Share: pi, Canary: xc, Stable: xs})
		return
	}
	best := 0
	for i := range m.Groups {
		if math.Abs(m.Groups[i].Share-pi) < math.Abs(m.Groups[best].Share-pi) {
			best = i
		}
	}
	m.Groups[best].Canary += xc
	m.Groups[best].Stable += xs
}

// E returns the current e-value: the mean over the alternatives of their
// likelihood ratios. Always > 0; 1 before any event.
func (m *Mixture) E() float64 {
	// log-sum-exp to stay finite however large the evidence grows.
	mx := math.Inf(-1)
	for _, l := range m.LogM {
		mx = max(mx, l)
	}
	var s float64
	for _, l := range m.LogM {
		s += math.Exp(l - mx)
	}
	return math.Exp(mx) * s / NumRatios
}

// Counts returns the total events seen on canary and stable.
func (m *Mixture) Counts() (canary, stable uint64) {
	for _, g := range m.Groups {
		canary += g.Canary
		stable += g.Stable
	}
	return canary, stable
}

// logLR is the log likelihood ratio of the grouped events for the canary/
// stable rate ratio rhoA against rhoN.
func (m *Mixture) logLR(rhoA, rhoN float64) float64 {
	var s float64
	for _, g := range m.Groups {
		a := math.Log1p((rhoN-1)*g.Share) - math.Log1p((rhoA-1)*g.Share)
		s += float64(g.Canary)*(math.Log(rhoA/rhoN)+a) + float64(g.Stable)*a
	}
	return s
}

// eAgainst returns the mixture e-value against the composite hypothesis
// "ratio ≥ rho" (down = true; alternatives rho/r) or "ratio ≤ rho"
// (down = false; alternatives rho·r). Each is a supermartingale under its
// hypothesis, which is what inverting it into a confidence sequence needs.
func (m *Mixture) eAgainst(rho float64, down bool) float64 {
	var s float64
	for _, r := range ratios {
		a := rho * r
		if down {
			a = rho / r
		}
		s += math.Exp(m.logLR(a, rho))
	}
	return s / NumRatios
}

// ratioGrid holds the candidate rate ratios of the confidence sequence:
// geometric, 5 % apart, from 1/100 to 1000.
var ratioGrid = func() []float64 {
	var g []float64
	for x := 0.01; x <= 1000; x *= 1.05 {
		g = append(g, x)
	}
	return g
}()

// RatioBounds returns a confidence sequence for the canary/stable event
// rate ratio at level 1−alpha (alpha/2 each side), valid at all times at
// once under the model that the ratio is constant over the release: the
// interval [lo, hi] of grid ratios not rejected by the inverted mixtures.
// lo is 0 and hi is +Inf while the data cannot bound them. The bounds
// are conservative to the grid's 5 % spacing.
func (m *Mixture) RatioBounds(alpha float64) (lo, hi float64) {
	thr := 2 / alpha
	hi = math.Inf(1)
	// Scan down from the top: hi is the smallest grid ratio above which
	// every grid ratio is rejected.
	for i := len(ratioGrid) - 1; i >= 0; i-- {
		if m.eAgainst(ratioGrid[i], true) < thr {
			break
		}
		hi = ratioGrid[i]
	}
	for i := range ratioGrid {
		if m.eAgainst(ratioGrid[i], false) < thr {
			break
		}
		lo = ratioGrid[i]
	}
	return lo, hi
}

// RatioEstimate returns the rate ratio that maximises the grouped
// likelihood (searched on the grid, so within 5 %), 0 or +Inf when one side
// has no events, NaN without events.
func (m *Mixture) RatioEstimate() float64 {
	c, s := m.Counts()
	if c+s == 0 {
		return math.NaN()
	}
	if c == 0 {
		return 0
	}
	if s == 0 {
		return math.Inf(1)
	}
	// The log likelihood is concave in log ρ: ternary search on the grid.
	lo, hi := 0, len(ratioGrid)-1
	for hi-lo > 2 {
		a, b := lo+(hi-lo)/3, hi-(hi-lo)/3
		if m.logLR(ratioGrid[a], 1) < m.logLR(ratioGrid[b], 1) {
			lo = a + 1
		} else {
			hi = b - 1
		}
	}
	best := lo
	for i := lo + 1; i <= hi; i++ {
		if m.logLR(ratioGrid[i], 1) > m.logLR(ratioGrid[best], 1) {
			best = i
		}
	}
	return ratioGrid[best]
}

// rateGrid holds the candidate event probabilities for RateUpper:
// geometric, 5 % apart, from 1e-7 to 0.95.
var rateGrid = func() []float64 {
	var g []float64
	for x := 1e-7; x <= 0.95; x *= 1.05 {
		g = append(g, x)
	}
	return slices.Clip(g)
}()

// RateUpper returns an upper confidence bound, valid at all times at once at
// level 1−alpha, for the probability of an event per trial after x events in
// n trials (trials independent with a constant probability): the smallest
// grid probability above which every grid probability is rejected by a
// mixture of likelihood ratios against p/r. It returns 1 when the data
// cannot bound it.
func RateUpper(x, n uint64, alpha float64) float64 {
	if n == 0 || x >= n {
		return 1
	}
	thr := 1 / alpha
	fx, fo := float64(x), float64(n-x)
	up := 1.0
	for i := len(rateGrid) - 1; i >= 0; i-- {
		p := rateGrid[i]
		var s float64
		for _, r := range ratios {
			s += math.Exp(-fx*math.Log(r) + fo*(math.Log1p(-p/r)-math.Log1p(-p)))
		}
		if s/NumRatios < thr {
			break
		}
		up = p
	}
	return up
}

// Wilson returns the Wilson score interval for x successes in n trials at
// normal quantile z. With n = 0 it returns [0, 1].
func Wilson(x, n uint64, z float64) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	fn, p := float64(n), float64(x)/float64(n)
	z2 := z * z
	c := (p + z2/(2*fn)) / (1 + z2/fn)
	h := z / (1 + z2/fn) * math.Sqrt(p*(1-p)/fn+z2/(4*fn*fn))
	return max(0, c-h), min(1, c+h)
}
