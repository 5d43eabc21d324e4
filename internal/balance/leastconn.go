package balance

// leastConn is the least-connections policy (see [LeastConn]). It is
// stateless and looks at every endpoint: O(endpoints) per pick.
type leastConn struct{}

func (leastConn) pick(s *Set, f filter) int {
	best := -1
	var bestLoad int64
	var bestW uint32
	var tieW uint64 // weight of the endpoints tied with best so far
	// Ties take one random number each: a splitmix64 stream seeded by one
	// draw costs a few cycles per number instead of a call each.
	var seq uint64
	seeded := false
	for i, e := range s.eps {
		if !s.eligible(i, f) {
			continue
		}
		load, w := e.inflight.Load(), s.w[i]
		// load/w against bestLoad/bestW, without division.
		l, r := load*int64(bestW), bestLoad*int64(w)
		switch {
		case best < 0 || l < r:
			best, bestLoad, bestW, tieW = i, load, w, uint64(w)
		case l == r:
			// Weighted reservoir sampling over the tie: each tied
			// endpoint ends up chosen in proportion to its weight.
			tieW += uint64(w)
			if !seeded {
				seq, seeded = s.rand(), true
			}
			seq += 0x9e3779b97f4a7c15
			if (splitmix64(seq)>>32)*tieW>>32 < uint64(w) { // tieW < 2^32
				best, bestLoad, bestW = i, load, w
			}
		}
	}
	return best
}
