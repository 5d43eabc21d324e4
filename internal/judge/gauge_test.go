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
