package latency

import (
	"testing"
	"time"
)

func TestBucketBoundsContainValue(t *testing.T) {
	for us := int64(0); us < 1<<22; us = us*5/4 + 1 {
		d := time.Duration(us) * time.Microsecond
		i := BucketOf(d)
		lo, hi := Bounds(i)
		if d < lo || d >= hi {
			t.Fatalf("BucketOf(%v) = %d with bounds [%v, %v)", d, i, lo, hi)
		}
		if us >= sub && float64(hi-lo)/float64(lo) > 1.0/sub+1e-9 {
			t.Fatalf("bucket %d [%v, %v) wider than 1/%d of its lower bound", i, lo, hi, sub)
		}
	}
	if got := BucketOf(1000 * time.Hour); got != NumBuckets-1 {
		t.Fatalf("huge duration in bucket %d, want last %d", got, NumBuckets-1)
	}
}

func TestBucketsAreContiguous(t *testing.T) {
	for i := 1; i < NumBuckets; i++ {
		_, prevHi := Bounds(i - 1)
		lo, _ := Bounds(i)
		if lo != prevHi {
			t.Fatalf("bucket %d starts at %v, previous ends at %v", i, lo, prevHi)
		}
	}
}

func TestQuantileAndCountAbove(t *testing.T) {
	var h Histogram
	for ms := 1; ms <= 1000; ms++ {
		h.Record(time.Duration(ms) * time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := h.Quantile(tc.q)
		if got < tc.want || float64(got) > float64(tc.want)*1.07 {
			t.Errorf("Quantile(%v) = %v, want within +7%% of %v", tc.q, got, tc.want)
		}
	}
	above := h.CountAbove(900 * time.Millisecond)
	if above < 100-57 || above > 100 { // one bucket is 6.25 % of 900 ms wide
		t.Errorf("CountAbove(900ms) = %d, want 100 less at most one bucket", above)
	}
	var m Histogram
	m.Merge(&h)
	m.Merge(&h)
	if m.Count() != 2000 || m.Quantile(0.5) != h.Quantile(0.5) {
		t.Errorf("merge: count %d, p50 %v vs %v", m.Count(), m.Quantile(0.5), h.Quantile(0.5))
	}
}

func TestAtomicSnapshot(t *testing.T) {
	var a Atomic
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			for i := 0; i < 1000; i++ {
				a.Record(time.Duration(i) * time.Microsecond)
			}
			done <- struct{}{}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	var h Histogram
	a.SnapshotInto(&h)
	if h.Count() != 4000 {
		t.Fatalf("count %d, want 4000", h.Count())
	}
}

func BenchmarkAtomicRecord(b *testing.B) {
	var a Atomic
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		a.Record(time.Duration(i&0xffff) * time.Microsecond)
	}
}
