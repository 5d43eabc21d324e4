package balance

import "sync/atomic"

// maxSequence bounds the precomputed round-robin order. Sets whose weights
// (divided by their gcd) sum to more are approximated by scaling the weights
// down to about this sum, each staying at least 1.
const maxSequence = 1 << 14

// roundRobin is the smooth weighted round-robin policy (see [RoundRobin]).
// The nginx order is computed once per Set, so a pick is one atomic add and
// an index: lock-free, where the classic algorithm needs a mutex.
type roundRobin struct {
	next atomic.Uint64
	seq  []int32 // endpoint indexes in smooth weighted order; nil = 0,1,...,n-1
}

func newRoundRobin(s *Set) *roundRobin {
	rr := &roundRobin{}
	if s.total != uint32(len(s.eps)) { // not all weights equal
		rr.seq = smoothOrder(s.w, s.total)
	}
	return rr
}

// smoothOrder returns one period of nginx's smooth weighted round robin:
// every step, each endpoint's current value grows by its weight, the largest
// is chosen and lowered by the total weight.
func smoothOrder(w []uint32, total uint32) []int32 {
	if total > maxSequence {
		orig := uint64(total)
		scaled := make([]uint32, len(w))
		total = 0
		for i, x := range w {
			scaled[i] = max(1, uint32(uint64(x)*maxSequence/orig))
			total += scaled[i]
		}
		w = scaled
	}
	cur := make([]int64, len(w))
	seq := make([]int32, total)
	for k := range seq {
		best := 0
		for i, x := range w {
			cur[i] += int64(x)
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= int64(total)
		seq[k] = int32(best)
	}
	return seq
}

func (rr *roundRobin) pick(s *Set, f filter) int {
	n := len(s.eps)
	// The strict pass takes slots from the shared cursor and also spends
	// the slots of the ineligible endpoints it meets, so the eligible ones
	// keep their proportions (they are a subsequence of the order). The
	// fallback pass of the same Pick walks on from the current slot
	// without moving the cursor.
	var k uint64
	if f.strict {
		k = rr.next.Add(1) - 1
	} else {
		k = rr.next.Load() - 1
	}
	tries := min(rr.period(n), 2*n)
	for range tries {
		if i := rr.at(k, n); s.eligible(i, f) {
			return i
		}
		if f.strict {
			k = rr.next.Add(1) - 1
		} else {
			k++
		}
	}
	// Few eligible endpoints, far apart in the order: scan them all.
	first := rr.at(k, n)
	for j := 1; j <= n; j++ {
		if i := (first + j) % n; s.eligible(i, f) {
			return i
		}
	}
	return -1
}

// period is the length of the order.
func (rr *roundRobin) period(n int) int {
	if rr.seq == nil {
		return n
	}
	return len(rr.seq)
}

// at returns the endpoint index of slot k.
func (rr *roundRobin) at(k uint64, n int) int {
	if rr.seq == nil {
		return int(k % uint64(n))
	}
	return int(rr.seq[k%uint64(len(rr.seq))])
}
