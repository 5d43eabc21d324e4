package judge

import (
	"testing"
	"time"
)

// BenchmarkTrackerObserve measures the request-path cost: most requests
// have no event (one atomic load), some fail or are slow (a shard lock and a
// probe into a table of 1M users).
func BenchmarkTrackerObserve(b *testing.B) {
	for _, bc := range []struct {
		name string
		d    time.Duration
		fail bool
	}{
		{"no event", 10 * time.Millisecond, false},
		{"event", 10 * time.Millisecond, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tr := NewTracker(1)
			tr.SetThresholds([3]time.Duration{50 * time.Millisecond, 100 * time.Millisecond, time.Second})
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var u uint64
				for pb.Next() {
					u += 0x9e3779b97f4a7c15
					tr.Observe(u&(1<<20-1)*0xbf58476d1ce4e5b9, Canary, bc.fail, bc.d)
				}
			})
		})
	}
}

// BenchmarkObserve measures the judge's cost per one-second bin.
func BenchmarkObserve(b *testing.B) {
	j, _ := New(Policy{MaxLatencyP99: time.Second, MaxLatencyDeviation: 0.3})
	var bins [2]Bin
	healthyStable.fill(&bins[0].Stable)
	healthyCanary.fill(&bins[0].Canary)
	bins[1] = bins[0]
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		bin := &bins[i%2]
		bin.Time, bin.Share = t0.Add(time.Duration(i+1)*time.Second), 0.1
		if err := j.Observe(bin); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerdict measures a verdict after an hour of healthy traffic, the
// confidence sequences included.
func BenchmarkVerdict(b *testing.B) {
	j, _ := New(Policy{BakeTime: time.Minute})
	var bin Bin
	healthyStable.fill(&bin.Stable)
	healthyCanary.fill(&bin.Canary)
	for i := range 3600 {
		bin.Time, bin.Share = t0.Add(time.Duration(i+1)*time.Second), 0.1
		if err := j.Observe(&bin); err != nil {
			b.Fatal(err)
		}
	}
	now := t0.Add(3600 * time.Second)
	b.ReportAllocs()
	for b.Loop() {
		if v := j.Verdict(now, t0); v.Outcome != Pass {
			b.Fatalf("verdict %s", v.Outcome)
		}
	}
}
