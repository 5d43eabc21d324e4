package sim

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/canaryd/canaryd/internal/latency"
)

// poisson draws a Poisson(mean) variate: multiplication for small means,
// Hörmann's transformed rejection with squeeze (PTRS) otherwise.
func poisson(r *rand.Rand, mean float64) uint64 {
	if mean <= 0 {
		return 0
	}
	if mean < 12 {
		l := math.Exp(-mean)
		var k uint64
		p := r.Float64()
		for p > l {
			k++
			p *= r.Float64()
		}
		return k
	}
	slam := math.Sqrt(mean)
	loglam := math.Log(mean)
	b := 0.931 + 2.53*slam
	a := -0.059 + 0.02483*b
	invalpha := 1.1239 + 1.1328/(b-3.4)
	vr := 0.9277 - 3.6224/(b-2)
	for {
		u := r.Float64() - 0.5
		v := r.Float64()
		us := 0.5 - math.Abs(u)
		k := math.Floor((2*a/us+b)*u + mean + 0.43)
		if us >= 0.07 && v <= vr {
			return uint64(k)
		}
		if k < 0 || (us < 0.013 && v > us) {
			continue
		}
		lg, _ := math.Lgamma(k + 1)
		if math.Log(v)+math.Log(invalpha)-math.Log(a/(us*us)+b) <= -mean+k*loglam-lg {
			return uint64(k)
		}
	}
}

// alias samples latency buckets in O(1) (Vose's alias method).
type alias struct {
	prob  []float64
	alias []int32
}

func newAlias(p []float64) *alias {
	n := len(p)
	var sum float64
	for _, x := range p {
		sum += x
	}
	a := &alias{prob: make([]float64, n), alias: make([]int32, n)}
	sc := make([]float64, n)
	var small, large []int
	for i, x := range p {
		sc[i] = x / sum * float64(n)
		if sc[i] < 1 {
			small = append(small, i)
		} else {
			large = append(large, i)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		a.prob[s], a.alias[s] = sc[s], int32(l)
		sc[l] = sc[l] + sc[s] - 1
		if sc[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, i := range large {
		a.prob[i] = 1
	}
	for _, i := range small {
		a.prob[i] = 1
	}
	return a
}

// draw adds n samples to h.
func (a *alias) draw(r *rand.Rand, n uint64, h *latency.Histogram) {
	m := uint64(len(a.prob))
	for ; n > 0; n-- {
		u := r.Uint64()
		i := (u >> 32) * m >> 32
		f := float64(u&0xffffffff) / (1 << 32)
		if f >= a.prob[i] {
			i = uint64(a.alias[i])
		}
		h.Counts[i]++
		h.Total++
	}
}

func normCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// lognormalBuckets returns the probability of each latency bucket for a
// lognormal latency with the given median and σ, transformed by tr (a
// non-decreasing map given as: latencies ≥ from are multiplied by factor;
// from = 0 multiplies everything).
func lognormalBuckets(median time.Duration, sigma, factor float64, from time.Duration) []float64 {
	mu := math.Log(float64(median))
	cdf := func(d float64) float64 {
		if d <= 0 {
			return 0
		}
		return normCDF((math.Log(d) - mu) / sigma)
	}
	// P(L in [lo, hi)) for the untransformed L.
	mass := func(lo, hi float64) float64 {
		if hi <= lo {
			return 0
		}
		return cdf(hi) - cdf(lo)
	}
	p := make([]float64, latency.NumBuckets)
	q := float64(from)
	for i := range p {
		lo, hi := latency.Bounds(i)
		l, h := float64(lo), float64(hi)
		if i == latency.NumBuckets-1 {
			h = math.Inf(1)
		}
		// Untransformed part: L < from with L in [l, h).
		p[i] += mass(l, min(h, q))
		// Transformed part: L ≥ from with factor·L in [l, h).
		p[i] += mass(max(l/factor, q), h/factor)
	}
	return p
}
