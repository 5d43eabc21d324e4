package hll

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
)

// stdErr is the sketch's theoretical relative standard error, 1.04/√m.
var stdErr = 1.04 / math.Sqrt(Registers)

// fill adds n distinct inputs derived from seed. The inputs are a plain
// counter in the low bits and the seed in the high bits — deliberately not
// random, since Add must mix weak hashes itself.
func fill(s *Sketch, seed, n uint64) {
	for i := uint64(0); i < n; i++ {
		s.Add(seed<<40 | i)
	}
}

// TestEstimateError is the statistical test of the estimator. For each
// cardinality it builds `seeds` independent sketches and checks, over their
// relative errors e:
//   - RMSE(e) ≤ 1.5 · 1.04/√m (≈ 1.2 %): the spread matches HyperLogLog's
//     theory with room for sampling noise of the RMSE over few seeds;
//   - |mean(e)| ≤ 4 · 1.04/√m / √seeds + 0.2 %: no systematic bias beyond
//     four standard errors of the mean;
//   - max |e| ≤ 5 · 1.04/√m (≈ 4 %): no outlier.
//
// The seeds are fixed, so the test is deterministic; the bounds were chosen
// from theory before looking at the results, not fitted to them.
func TestEstimateError(t *testing.T) {
	for _, tc := range []struct {
		n     uint64
		seeds uint64
	}{
		{n: 1, seeds: 50},
		{n: 10, seeds: 50},
		{n: 100, seeds: 50},
		{n: 1_000, seeds: 50},
		{n: 10_000, seeds: 40},
		{n: 40_000, seeds: 40}, // ≈ 2.5 m: where the classic estimator switches and is biased
		{n: 100_000, seeds: 20},
		{n: 1_000_000, seeds: 6},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			t.Parallel()
			var sum, sumSq, worst float64
			for seed := uint64(1); seed <= tc.seeds; seed++ {
				var s Sketch
				fill(&s, seed, tc.n)
				e := s.Estimate()/float64(tc.n) - 1
				sum += e
				sumSq += e * e
				worst = max(worst, math.Abs(e))
			}
			k := float64(tc.seeds)
			mean, rmse := sum/k, math.Sqrt(sumSq/k)
			t.Logf("n=%d seeds=%d mean=%+.4f%% rmse=%.4f%% max=%.4f%%", tc.n, tc.seeds, 100*mean, 100*rmse, 100*worst)
			if lim := 1.5 * stdErr; rmse > lim {
				t.Errorf("rmse %.4f > %.4f", rmse, lim)
			}
			if lim := 4*stdErr/math.Sqrt(k) + 0.002; math.Abs(mean) > lim {
				t.Errorf("mean error %+.4f beyond ±%.4f", mean, lim)
			}
			if lim := 5 * stdErr; worst > lim {
				t.Errorf("max error %.4f > %.4f", worst, lim)
			}
		})
	}
}

func TestEmptyAndDuplicates(t *testing.T) {
	var s Sketch
	if got := s.Estimate(); got != 0 {
		t.Fatalf("empty sketch estimates %v, want 0", got)
	}
	for range 1000 {
		s.Add(42)
	}
	if got := s.Estimate(); math.Abs(got-1) > 0.01 {
		t.Fatalf("one hash added 1000 times estimates %v, want 1", got)
	}
}

func TestMergeIsUnion(t *testing.T) {
	for _, tc := range []struct {
		name         string
		a, b, shared uint64 // distinct to a, distinct to b, in both
	}{
		{"disjoint", 30_000, 20_000, 0},
		{"overlap", 10_000, 10_000, 30_000},
		{"one empty", 5_000, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a, b, all Sketch
			fill(&a, 1, tc.a)
			fill(&b, 2, tc.b)
			fill(&a, 3, tc.shared)
			fill(&b, 3, tc.shared)
			fill(&all, 1, tc.a)
			fill(&all, 2, tc.b)
			fill(&all, 3, tc.shared)
			a.Merge(&b)
			// Merging loses nothing: the merged registers equal those of a
			// sketch fed the union directly, so the estimates are identical.
			if got, want := a.Estimate(), all.Estimate(); got != want {
				t.Fatalf("merged estimate %v, sketch of the union %v", got, want)
			}
			n := float64(tc.a + tc.b + tc.shared)
			if e := math.Abs(a.Estimate()/n - 1); e > 5*stdErr {
				t.Fatalf("union of %v estimated %v", n, a.Estimate())
			}
		})
	}
}

func TestConcurrentAddMatchesSerial(t *testing.T) {
	var par, ser Sketch
	var wg sync.WaitGroup
	for g := uint64(0); g < 4; g++ {
		wg.Go(func() { fill(&par, g+1, 20_000) })
		fill(&ser, g+1, 20_000)
	}
	wg.Wait()
	if got, want := par.Estimate(), ser.Estimate(); got != want {
		t.Fatalf("concurrent adds estimate %v, serial %v: an update was lost", got, want)
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	var s Sketch
	fill(&s, 7, 12_345)
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var r Sketch
	if err := r.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if r.Estimate() != s.Estimate() {
		t.Fatalf("round trip estimates %v, want %v", r.Estimate(), s.Estimate())
	}
	if c := s.Clone(); c.Estimate() != s.Estimate() {
		t.Fatalf("clone estimates %v, want %v", c.Estimate(), s.Estimate())
	}

	bad := func(mut func([]byte) []byte) []byte { return mut(append([]byte(nil), b...)) }
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"short", b[:100]},
		{"version", bad(func(x []byte) []byte { x[0] = 9; return x })},
		{"precision", bad(func(x []byte) []byte { x[1] = 12; return x })},
		{"register", bad(func(x []byte) []byte { x[10] = q + 2; return x })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := r.Estimate()
			if err := r.UnmarshalBinary(tc.in); !errors.Is(err, ErrEncoding) {
				t.Fatalf("UnmarshalBinary: %v, want ErrEncoding", err)
			}
			if r.Estimate() != before {
				t.Fatal("failed UnmarshalBinary changed the sketch")
			}
		})
	}
}

func TestReset(t *testing.T) {
	var s Sketch
	fill(&s, 1, 1000)
	s.Reset()
	if got := s.Estimate(); got != 0 {
		t.Fatalf("reset sketch estimates %v", got)
	}
}
