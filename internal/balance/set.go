package balance

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
)

// Policy names how a [Set] chooses among its available endpoints. The names
// are the values of services[].balance in the YAML config.
type Policy string

// The balancing policies. Each is in its own file.
const (
	// P2C (power of two choices, the default) draws two distinct endpoints
	// at random in proportion to their weights and takes the one with fewer
	// requests in flight per unit of weight. Cheap, lock-free and it avoids
	// both the herd behaviour of pure least-connections and the blindness of
	// round robin to slow replicas.
	P2C Policy = "p2c"
	// RoundRobin cycles through the endpoints in smooth weighted order (the
	// nginx interleaving: weights 5,1,1 give a a b a c a a, not a a a a a b c).
	RoundRobin Policy = "round_robin"
	// LeastConn takes the endpoint with the fewest requests in flight per
	// unit of weight; ties are broken at random in proportion to weight.
	LeastConn Policy = "least_conn"
)

// ParsePolicy maps a config value to a Policy; "" means P2C.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case "":
		return P2C, nil
	case P2C, RoundRobin, LeastConn:
		return p, nil
	}
	return "", fmt.Errorf("balance policy %q: unknown (p2c, round_robin or least_conn)", s)
}

// selector is one balancing policy bound to one Set. pick returns the index
// of an endpoint i for which s.eligible(i, f) held when looked
// at, or -1 if there is none. It must not allocate.
type selector interface {
	pick(s *Set, f filter) int
}

// filter says which endpoints one pass of Pick may choose: never exclude,
// and in the strict pass only endpoints available at pool time now.
type filter struct {
	exclude *Endpoint
	strict  bool
	now     int64
}

func newSelector(p Policy, s *Set) selector {
	switch p {
	case RoundRobin:
		return newRoundRobin(s)
	case LeastConn:
		return leastConn{}
	default:
		return p2c{}
	}
}

// Set is the endpoints of one build in one routing table. It is immutable
// after NewSet (weights are copied then) and safe for concurrent use; the
// only state it mutates is the round-robin cursor and the endpoints' own
// atomics.
type Set struct {
	eps    []*Endpoint
	w      []uint32 // weights at build time, divided by their gcd
	cum    []uint32 // cum[i] = w[0] + ... + w[i]
	total  uint32
	policy Policy
	sel    selector
	pool   *Pool          // of every endpoint; nil when empty
	seed   *atomic.Uint64 // deterministic source for tests; nil = math/rand/v2
}

// NewSet builds the Set of one build. The endpoints come from the service's
// [Pool]; their order does not matter and an empty list is allowed (Pick then
// returns nil). It fails on an unknown policy, a nil endpoint, an endpoint
// listed twice or endpoints of different pools.
func NewSet(p Policy, eps []*Endpoint) (*Set, error) {
	p, err := ParsePolicy(string(p))
	if err != nil {
		return nil, err
	}
	s := &Set{eps: append([]*Endpoint(nil), eps...), policy: p}
	seen := make(map[*Endpoint]struct{}, len(eps))
	for i, e := range s.eps {
		if e == nil {
			return nil, fmt.Errorf("balance: endpoint %d is nil", i)
		}
		if _, dup := seen[e]; dup {
			return nil, fmt.Errorf("balance: endpoint %q listed twice", e.addr)
		}
		if s.pool == nil {
			s.pool = e.pool
		} else if e.pool != s.pool {
			return nil, fmt.Errorf("balance: endpoint %q is from another pool", e.addr)
		}
		seen[e] = struct{}{}
	}
	s.w = make([]uint32, len(s.eps))
	g := uint32(0)
	for i, e := range s.eps {
		s.w[i] = uint32(e.weight.Load())
		g = gcd(g, s.w[i])
	}
	s.cum = make([]uint32, len(s.eps))
	for i := range s.w {
		s.w[i] /= g
		s.total += s.w[i]
		s.cum[i] = s.total
	}
	s.sel = newSelector(p, s)
	return s, nil
}

func gcd(a, b uint32) uint32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Policy returns the policy the Set was built with.
func (s *Set) Policy() Policy { return s.policy }

// Len returns the number of endpoints.
func (s *Set) Len() int { return len(s.eps) }

// Endpoints returns the Set's endpoints; the caller must not modify the
// slice.
func (s *Set) Endpoints() []*Endpoint { return s.eps }

// Pick chooses the endpoint for one attempt of a request. It never
// allocates and takes no lock.
//
// It chooses by the Set's policy among the available endpoints (healthy and
// not ejected) other than exclude; pass nil for a first attempt and the
// endpoint that just failed for a retry.
//
// If none of those is available, the build is never treated as gone: Pick
// chooses by the same policy among all endpoints other than exclude and
// returns fallback = true. The proxy should then still send the request
// (health checks and ejections can be wrong or stale), and answer 503 "no
// healthy endpoint" (with [Set.Status] in the body) only if that attempt
// cannot connect.
//
// Pick returns nil when the Set is empty or exclude is its only endpoint;
// a proxy that wants to retry on the same endpoint then calls Pick(nil).
func (s *Set) Pick(exclude *Endpoint) (ep *Endpoint, fallback bool) {
	if len(s.eps) == 0 {
		return nil, false
	}
	f := filter{exclude: exclude, strict: true}
	if s.pool.ejected.Load() != 0 {
		f.now = s.pool.nanos() // one clock read per Pick, only while some endpoint is ejected
	}
	if i := s.sel.pick(s, f); i >= 0 {
		return s.eps[i], false
	}
	f.strict = false
	if i := s.sel.pick(s, f); i >= 0 {
		return s.eps[i], true
	}
	return nil, false
}

// SetStatus counts a Set's endpoints by state, for the 503 body, /readyz and
// the admin API. An endpoint both failing checks and ejected counts in both
// Unhealthy and Ejected.
type SetStatus struct {
	Endpoints int // in the Set
	Available int // healthy and not ejected: what Pick prefers
	Unhealthy int // failing active health checks
	Ejected   int // passively ejected after consecutive failures
}

// String describes the status in words, e.g. "0 of 3 endpoints available
// (2 failing health checks, 1 ejected after failures)".
func (st SetStatus) String() string {
	return fmt.Sprintf("%d of %d endpoints available (%d failing health checks, %d ejected after failures)",
		st.Available, st.Endpoints, st.Unhealthy, st.Ejected)
}

// Status counts the Set's endpoints by state now. It is O(endpoints) and
// meant for error paths and status pages, not for every request.
func (s *Set) Status() SetStatus {
	st := SetStatus{Endpoints: len(s.eps)}
	for _, e := range s.eps {
		h, ej := e.Healthy(), e.Ejected()
		if !h {
			st.Unhealthy++
		}
		if ej {
			st.Ejected++
		}
		if h && !ej {
			st.Available++
		}
	}
	return st
}

// eligible reports whether endpoint i passes f.
func (s *Set) eligible(i int, f filter) bool {
	e := s.eps[i]
	return e != f.exclude && (!f.strict || e.availableAt(f.now))
}

// rand returns 64 random bits. math/rand/v2's top-level source is per-thread
// in the runtime: no lock and no allocation.
func (s *Set) rand() uint64 {
	if s.seed != nil {
		return splitmix64(s.seed.Add(0x9e3779b97f4a7c15))
	}
	return rand.Uint64()
}

func splitmix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// below maps 32 random bits to [0, n) by multiplication (bias < n/2^32).
func below(r, n uint32) uint32 { return uint32(uint64(r) * uint64(n) >> 32) }

// at returns the index of the endpoint whose weight range holds x, for x in
// [0, total). The search is written so the compiler can use conditional
// moves: random x makes the branches of a plain binary search unpredictable.
func (s *Set) at(x uint32) int {
	if s.total == uint32(len(s.cum)) { // all weights 1
		return int(x)
	}
	base, n := 0, len(s.cum)
	for n > 1 {
		half := n >> 1
		if s.cum[base+half-1] <= x {
			base += half
		}
		n -= half
	}
	return base
}

// weightedEligible draws an eligible endpoint other than index skip in
// proportion to weight, by two passes over the Set. It is the slow path of
// the random policies, for when sampling keeps hitting ineligible endpoints.
func (s *Set) weightedEligible(skip int, f filter) int {
	var tot uint64
	for i := range s.eps {
		if i != skip && s.eligible(i, f) {
			tot += uint64(s.w[i])
		}
	}
	if tot == 0 {
		return -1
	}
	x := s.rand() % tot
	last := -1
	for i := range s.eps {
		if i == skip || !s.eligible(i, f) {
			continue
		}
		if x < uint64(s.w[i]) {
			return i
		}
		x -= uint64(s.w[i])
		last = i
	}
	return last // eligibility changed between the passes
}

// String returns the policy's config name.
func (p Policy) String() string { return string(p) }
