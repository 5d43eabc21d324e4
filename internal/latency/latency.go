// Package latency is the one latency histogram layout that the data plane
// records into and the judge reads. Buckets are log-linear (16 per power of
// two, so any value lies within 6.25 % of its bucket's bounds) over
// microseconds, fixed at compile time, so histograms of any two builds, bins
// or replicas merge by adding counts.
package latency

import (
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	subBits = 4
	sub     = 1 << subBits // buckets per power of two
	maxExp  = 37           // 2^41 µs ≈ 25 days: the last bucket holds anything longer
	// NumBuckets is the number of buckets of every histogram.
	NumBuckets = (maxExp + 1) * sub
)

// BucketOf returns the bucket index of d. Negative durations count as zero.
func BucketOf(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	us := uint64(d / time.Microsecond)
	if us < sub {
		return int(us)
	}
	e := bits.Len64(us) - subBits - 1
	i := (e+1)*sub + int(us>>uint(e)) - sub
	if i >= NumBuckets {
		return NumBuckets - 1
	}
	return i
}

// Bounds returns the half-open range [lo, hi) of durations in bucket i.
func Bounds(i int) (lo, hi time.Duration) {
	if i < sub {
		return time.Duration(i) * time.Microsecond, time.Duration(i+1) * time.Microsecond
	}
	e := uint(i/sub - 1)
	m := uint64(i%sub + sub)
	return time.Duration(m<<e) * time.Microsecond, time.Duration((m+1)<<e) * time.Microsecond
}

// Histogram is a plain histogram value: not safe for concurrent writes, cheap
// to copy, merge and query. The zero value is empty and ready to use.
type Histogram struct {
	Counts [NumBuckets]uint64
	Total  uint64
}

// Record adds one observation.
func (h *Histogram) Record(d time.Duration) {
	h.Counts[BucketOf(d)]++
	h.Total++
}

// Merge adds every count of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.Total == 0 {
		return
	}
	for i, c := range o.Counts {
		h.Counts[i] += c
	}
	h.Total += o.Total
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }

// Count returns the number of observations.
func (h *Histogram) Count() uint64 { return h.Total }

// CountAbove returns the observations in buckets above the one holding d:
// those certainly slower than d at the histogram's resolution. Both builds
// are counted the same way, so comparing their exceedances stays fair.
func (h *Histogram) CountAbove(d time.Duration) uint64 {
	var n uint64
	for i := BucketOf(d) + 1; i < NumBuckets; i++ {
		n += h.Counts[i]
	}
	return n
}

// Quantile returns the upper bound of the bucket holding the q-quantile
// (0 < q ≤ 1), or 0 when h is empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.Total == 0 {
		return 0
	}
	rank := uint64(q * float64(h.Total))
	if rank == 0 {
		rank = 1
	}
	if rank > h.Total {
		rank = h.Total
	}
	var cum uint64
	for i, c := range h.Counts {
		cum += c
		if cum >= rank {
			_, hi := Bounds(i)
			return hi
		}
	}
	_, hi := Bounds(NumBuckets - 1)
	return hi
}

// Atomic is a histogram that many goroutines may record into at once without
// locks, for the request path. The zero value is ready to use.
type Atomic struct {
	counts [NumBuckets]atomic.Uint64 // no shared total: it would be the one contended line
}

// Record adds one observation; safe for concurrent use, never allocates.
func (a *Atomic) Record(d time.Duration) {
	a.counts[BucketOf(d)].Add(1)
}

// SnapshotInto adds the current counts to h. Concurrent Records may or may
// not be included; each is included at most once.
func (a *Atomic) SnapshotInto(h *Histogram) {
	var t uint64
	for i := range a.counts {
		c := a.counts[i].Load()
		h.Counts[i] += c
		t += c
	}
	h.Total += t
}
