package judge

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestGauge(t *testing.T) {
	for _, tc := range []struct {
		name     string
		shift    float64
		tol      float64
		wantFail bool
	}{
		{"no difference", 0, 0, false},
		{"better canary", -1, 0, false},
		{"small shift inside tolerance", 0.5, 1, false},
		{"shift of one sd", 1, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var g Gauge
			failed := false
			for range 360 { // an hour of 10 s intervals
				g.Observe(tc.shift + r.NormFloat64())
				if g.E(tc.tol) >= 1000 {
					failed = true
				}
			}
			if failed != tc.wantFail {
				t.Fatalf("failed %v, want %v (E %v)", failed, tc.wantFail, g.E(tc.tol))
			}
			if up := g.Upper(0.05); !(up >= tc.shift) || up > tc.shift+0.5 {
				t.Fatalf("upper bound %v for a true shift %v", up, tc.shift)
			}
		})
	}
}

func TestGaugeFalseAlarms(t *testing.T) {
	// Gaussian differences with no shift: the e-process at 1/α = 20 must
	// cross in at most about α of the runs (Ville), here 5 %, although the
	// variance is estimated.
	r := rand.New(rand.NewPCG(3, 4))
	crossed := 0
	const runs = 2000
	for range runs {
		var g Gauge
		sd := 1 + 9*r.Float64()
		for range 200 {
			g.Observe(sd * r.NormFloat64())
			if g.E(0) >= 20 {
				crossed++
				break
			}
		}
	}
	if float64(crossed)/runs > 0.05+3*math.Sqrt(0.05*0.95/runs) {
		t.Fatalf("%d of %d null runs crossed 1/α = 20", crossed, runs)
	}
	if testing.Verbose() {
		t.Logf("%d of %d null runs crossed 1/α = 20", crossed, runs)
	}
}

// At the custom-metric threshold (fail at E ≥ 1000, α = 0.1 %) the plug-in
// variance keeps the budget for Gaussian differences: of 4 000 seeded null
// runs of 360 differences (an hour of 10 s intervals) at most 0.1 % + 3
// binomial standard deviations (0.25 %, 10 runs) may cross. Heavy-tailed
// differences break the Gaussian assumption: the same seeds with
// differences of two lognormals (σ 1) or Student t(3) cross far more often
// (measured 2.7 % and 1.8 %, checked here to stay within 1–5 %), which is
// why docs/releases.md asks for differences of interval averages, which
// are close to Gaussian. This test pins both facts so the docs stay true.
func TestGaugeFalseAlarmsAtCustomThreshold(t *testing.T) {
	const runs = 4000
	crossings := func(draw func(r *rand.Rand) float64) int {
		r := rand.New(rand.NewPCG(5, 6))
		n := 0
		for range runs {
			var g Gauge
			for range 360 {
				g.Observe(draw(r))
				if g.E(0) >= 1000 {
					n++
					break
				}
			}
		}
		return n
	}
	normal := crossings(func(r *rand.Rand) float64 { return r.NormFloat64() })
	if limit := runs * (0.001 + 3*math.Sqrt(0.001*0.999/runs)); float64(normal) > limit {
		t.Errorf("Gaussian: %d of %d null runs crossed 1000 (limit %.0f)", normal, runs, limit)
	}
	lognormal := crossings(func(r *rand.Rand) float64 { return math.Exp(r.NormFloat64()) - math.Exp(r.NormFloat64()) })
	t3 := crossings(func(r *rand.Rand) float64 {
		z, v := r.NormFloat64(), 0.0
		for range 3 {
			w := r.NormFloat64()
			v += w * w
		}
		return z / math.Sqrt(v/3)
	})
	for _, c := range []struct {
		name string
		n    int
	}{{"lognormal differences", lognormal}, {"t(3)", t3}} {
		if f := float64(c.n) / runs; f < 0.01 || f > 0.05 {
			t.Errorf("%s: %d of %d null runs crossed 1000 (%.2f %%); docs/analysis.md says 1–5 %%: update it", c.name, c.n, runs, 100*f)
		}
	}
	t.Logf("null runs crossing 1000: Gaussian %d, lognormal differences %d, t(3) %d of %d", normal, lognormal, t3, runs)
}
