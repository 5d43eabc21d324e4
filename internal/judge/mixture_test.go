package judge

import (
	"math"
	"testing"
)

func TestMixtureKnownValues(t *testing.T) {
	// One event at π = 1/2: on the canary each alternative's ratio is
	// q/π = 2r/(1+r); on stable (1−q)/(1−π) = 2/(1+r).
	var onCanary, onStable float64
	for _, r := range ratios {
		onCanary += 2 * r / (1 + r)
		onStable += 2 / (1 + r)
	}
	onCanary /= NumRatios
	onStable /= NumRatios
	for _, tc := range []struct {
		name   string
		xc, xs uint64
		pi     float64
		want   float64
	}{
		{"nothing", 0, 0, 0.5, 1},
		{"one canary event", 1, 0, 0.5, onCanary},
		{"one stable event", 0, 1, 0.5, onStable},
		{"share 0 carries nothing", 5, 0, 0, 1},
		{"share 1 carries nothing", 5, 0, 1, 1},
		// 10 canary events at π = 0.01 with r = 10: q = 0.1/1.09, so
		// log M(10) = 10·ln(10/1.09); it dominates the mean.
		{"ten canary events, small share", 10, 0, 0.01, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m Mixture
			m.Update(tc.xc, tc.xs, tc.pi)
			got := m.E()
			if tc.want < 0 {
				var want float64
				for _, r := range ratios {
					want += math.Pow(r/(1+(r-1)*tc.pi), float64(tc.xc))
				}
				tc.want = want / NumRatios
			}
			if math.Abs(got-tc.want) > 1e-9*tc.want {
				t.Fatalf("E() = %.12g, want %.12g", got, tc.want)
			}
		})
	}
}

// TestMixtureIsMartingale checks E[M] = 1 under "no difference" exactly,
// by enumerating every split of n events between the builds.
func TestMixtureIsMartingale(t *testing.T) {
	for _, pi := range []float64{0.01, 0.1, 0.3, 0.5, 0.9} {
		for _, n := range []uint64{1, 5, 40} {
			var mean float64
			for k := uint64(0); k <= n; k++ {
				var m Mixture
				m.Update(k, n-k, pi)
				lc, _ := math.Lgamma(float64(n + 1))
				la, _ := math.Lgamma(float64(k + 1))
				lb, _ := math.Lgamma(float64(n - k + 1))
				p := math.Exp(lc - la - lb + float64(k)*math.Log(pi) + float64(n-k)*math.Log1p(-pi))
				mean += p * m.E()
			}
			if math.Abs(mean-1) > 1e-9 {
				t.Errorf("π %v, n %d: E[M] = %.12f, want 1", pi, n, mean)
			}
		}
	}
}

func TestMixtureOneSided(t *testing.T) {
	// A canary better than stable never gains evidence, however long.
	var better Mixture
	for range 3600 {
		better.Update(1, 20, 0.1) // canary half as bad as stable's share predicts
	}
	if e := better.E(); e > 1 {
		t.Errorf("better canary: E = %v, want ≤ 1", e)
	}
	// Monotone: one more canary event raises E, one more stable event lowers it.
	for _, tc := range []struct{ xc, xs uint64 }{{0, 0}, {3, 10}, {10, 3}, {50, 50}} {
		base := func(xc, xs uint64) float64 {
			var m Mixture
			m.Update(xc, xs, 0.2)
			return m.E()
		}
		e := base(tc.xc, tc.xs)
		if up := base(tc.xc+1, tc.xs); !(up > e) {
			t.Errorf("%v: one more canary event E %v → %v, want higher", tc, e, up)
		}
		if down := base(tc.xc, tc.xs+1); !(down < e) {
			t.Errorf("%v: one more stable event E %v → %v, want lower", tc, e, down)
		}
	}
}

func TestMixtureSplitsBinsFreely(t *testing.T) {
	// The e-value depends on the events, not on how they were binned.
	var one, many Mixture
	one.Update(30, 270, 0.1)
	for range 30 {
		many.Update(1, 9, 0.1)
	}
	if a, b := one.E(), many.E(); math.Abs(a-b) > 1e-9*a {
		t.Fatalf("binned once %v, in 30 bins %v", a, b)
	}
}

func TestRatioBounds(t *testing.T) {
	for _, tc := range []struct {
		name           string
		xc, xs         uint64
		pi             float64
		wantIn         float64 // must lie inside
		maxLo, minHi   float64 // the bounds must not be looser than
		wantUnboundHi  bool
		wantZeroLower  bool
		wantEstimateIn [2]float64
	}{
		{name: "equal", xc: 1000, xs: 1000, pi: 0.5, wantIn: 1, maxLo: 0.8, minHi: 1.25, wantEstimateIn: [2]float64{0.95, 1.05}},
		{name: "double", xc: 2000, xs: 1000, pi: 0.5, wantIn: 2, maxLo: 1.6, minHi: 2.5, wantEstimateIn: [2]float64{1.9, 2.1}},
		{name: "small share", xc: 30, xs: 2970, pi: 0.01, wantIn: 1, maxLo: 0.5, minHi: 1.8, wantEstimateIn: [2]float64{0.9, 1.1}},
		{name: "no events", wantIn: 1, maxLo: 0, wantUnboundHi: true, wantZeroLower: true, wantEstimateIn: [2]float64{math.NaN(), math.NaN()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m Mixture
			m.Update(tc.xc, tc.xs, tc.pi)
			lo, hi := m.RatioBounds(0.05)
			if !(lo <= tc.wantIn && tc.wantIn <= hi) {
				t.Fatalf("bounds [%v, %v] exclude %v", lo, hi, tc.wantIn)
			}
			if tc.wantUnboundHi != math.IsInf(hi, 1) || tc.wantZeroLower != (lo == 0) {
				t.Fatalf("bounds [%v, %v]: unbounded hi %v, zero lo %v wanted", lo, hi, tc.wantUnboundHi, tc.wantZeroLower)
			}
			if !tc.wantUnboundHi && (lo < tc.maxLo*0 || hi > tc.minHi || lo < tc.maxLo) {
				t.Fatalf("bounds [%v, %v] looser than [%v, %v]", lo, hi, tc.maxLo, tc.minHi)
			}
			est := m.RatioEstimate()
			if math.IsNaN(tc.wantEstimateIn[0]) != math.IsNaN(est) || (!math.IsNaN(est) && (est < tc.wantEstimateIn[0] || est > tc.wantEstimateIn[1])) {
				t.Fatalf("estimate %v, want in %v", est, tc.wantEstimateIn)
			}
		})
	}
}

func TestRateUpper(t *testing.T) {
	for _, tc := range []struct {
		name     string
		x, n     uint64
		min, max float64
	}{
		{"no data", 0, 0, 1, 1},
		{"all failed", 5, 5, 1, 1},
		{"none of a million", 0, 1_000_000, 1e-7, 2e-5},
		{"0.5 % of 100k", 500, 100_000, 0.0051, 0.0065},
		{"1 of 100", 1, 100, 0.03, 0.2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := RateUpper(tc.x, tc.n, 0.05)
			if got < tc.min || got > tc.max {
				t.Fatalf("RateUpper(%d, %d) = %v, want in [%v, %v]", tc.x, tc.n, got, tc.min, tc.max)
			}
			// A time-uniform bound is wider than the fixed-sample Wilson bound.
			if _, w := Wilson(tc.x, tc.n, 1.645); got < w && tc.n > 0 {
				t.Fatalf("RateUpper %v below Wilson's one-sided 95 %% bound %v", got, w)
			}
		})
	}
	// Monotone in x.
	prev := 0.0
	for x := uint64(0); x < 50; x++ {
		u := RateUpper(x, 1000, 0.05)
		if u < prev {
			t.Fatalf("RateUpper(%d, 1000) = %v < RateUpper(%d) = %v", x, u, x-1, prev)
		}
		prev = u
	}
}

func TestWilson(t *testing.T) {
	lo, hi := Wilson(50, 100, 1.959963984540054)
	if math.Abs(lo-0.4038) > 1e-3 || math.Abs(hi-0.5962) > 1e-3 {
		t.Fatalf("Wilson(50, 100) = [%v, %v], want [0.4038, 0.5962]", lo, hi)
	}
	if lo, hi := Wilson(0, 0, 2); lo != 0 || hi != 1 {
		t.Fatalf("Wilson(0, 0) = [%v, %v], want [0, 1]", lo, hi)
	}
}

func TestBinomialTail(t *testing.T) {
	for _, tc := range []struct {
		x, n uint64
		p    float64
		want float64
	}{
		{0, 10, 0.1, 1},
		{11, 10, 0.1, 0},
		{10, 10, 0.5, math.Pow(0.5, 10)},
		{1, 10, 0.1, 1 - math.Pow(0.9, 10)},
	} {
		if got := binomialTail(tc.x, tc.n, tc.p); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("binomialTail(%d, %d, %v) = %v, want %v", tc.x, tc.n, tc.p, got, tc.want)
		}
	}
}
