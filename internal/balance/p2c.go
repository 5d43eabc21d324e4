package balance

// p2c is the power-of-two-choices policy (see [P2C]). It is stateless.
type p2c struct{}

// p2cTries is how many weighted draws p2c makes for each choice before it
// falls back to a full pass over the Set.
const p2cTries = 3

func (p2c) pick(s *Set, f filter) int {
	if len(s.eps) == 1 {
		if s.eligible(0, f) {
			return 0
		}
		return -1
	}
	// First choice: a weighted draw; rejection sampling keeps the draw
	// weighted among the eligible endpoints.
	r := s.rand()
	a := -1
	for t := 0; t < p2cTries; t++ {
		if i := s.at(below(uint32(r>>32), s.total)); s.eligible(i, f) {
			a = i
			break
		}
		r = s.rand()
	}
	if a < 0 {
		if a = s.weightedEligible(-1, f); a < 0 {
			return -1
		}
	}
	// Second choice: a weighted draw among the others, by drawing in the
	// total weight minus a's and stepping over a's range.
	wa := s.w[a]
	rest, start := s.total-wa, s.cum[a]-wa
	b := -1
	for t := 0; t < p2cTries && rest > 0; t++ {
		x := below(uint32(r), rest)
		if x >= start {
			x += wa
		}
		if i := s.at(x); s.eligible(i, f) {
			b = i
			break
		}
		r = s.rand()
	}
	if b < 0 {
		if b = s.weightedEligible(a, f); b < 0 {
			return a
		}
	}
	// Fewer in flight per unit of weight wins; a tie keeps the first draw,
	// so an idle Set is served in exact proportion to the weights.
	la, lb := s.eps[a].inflight.Load(), s.eps[b].inflight.Load()
	if lb*int64(wa) < la*int64(s.w[b]) {
		return b
	}
	return a
}
