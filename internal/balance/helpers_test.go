package balance

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a manual clock for ejection timing.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// seeded makes s draw from a deterministic source.
func seeded(s *Set, seed uint64) *Set {
	s.seed = new(atomic.Uint64)
	s.seed.Store(seed)
	return s
}

// build makes a pool and a Set of addresses with the given weights
// (addresses are "e0:1", "e1:1", ...).
func build(t testing.TB, p Policy, weights ...int) (*Pool, *Set, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	pool := NewPool(PoolOptions{Now: clk.Now})
	eps := make([]*Endpoint, len(weights))
	for i, w := range weights {
		eps[i] = pool.Get(addr(i), w)
	}
	s, err := NewSet(p, eps)
	if err != nil {
		t.Fatal(err)
	}
	return pool, s, clk
}

func addr(i int) string { return "e" + string(rune('0'+i%10)) + string(rune('a'+i/10)) + ":1" }

// counts picks n times and returns how often each endpoint index won.
func counts(t testing.TB, s *Set, n int) []int {
	t.Helper()
	idx := make(map[*Endpoint]int, s.Len())
	for i, e := range s.Endpoints() {
		idx[e] = i
	}
	out := make([]int, s.Len())
	for range n {
		e, fb := s.Pick(nil)
		if e == nil || fb {
			t.Fatalf("Pick = %v, fallback %v; want an available endpoint", e, fb)
		}
		out[idx[e]]++
	}
	return out
}

var policies = []Policy{P2C, RoundRobin, LeastConn}
