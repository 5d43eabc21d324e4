package balance

import (
	"slices"
	"testing"
)

func TestPoolIdentityAcrossRebuilds(t *testing.T) {
	clk := newFakeClock()
	pool := NewPool(PoolOptions{Now: clk.Now, Passive: Passive{MaxFails: 1}})
	a := pool.Get("10.0.0.1:80", 1)
	if b := pool.Get("10.0.0.1:80", 3); b != a {
		t.Fatal("Get returned a new endpoint for a known address")
	}
	if a.Weight() != 3 {
		t.Fatalf("weight = %d after Get with 3", a.Weight())
	}
	a.Begin()
	a.End(false) // ejected
	a.Begin()    // one request in flight

	// Rebuild: the new Set sees the same state.
	s, err := NewSet(P2C, []*Endpoint{pool.Get("10.0.0.1:80", 3), pool.Get("10.0.0.2:80", 1)})
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.Ejected != 1 || st.Available != 1 {
		t.Fatalf("after rebuild Status = %+v, want the ejection kept", st)
	}
	if a.InFlight() != 1 {
		t.Fatalf("in flight = %d, want 1", a.InFlight())
	}

	if n := pool.Retain([]string{"10.0.0.2:80"}); n != 1 {
		t.Fatalf("Retain dropped %d, want 1", n)
	}
	if pool.Lookup("10.0.0.1:80") != nil {
		t.Fatal("dropped endpoint still in the pool")
	}
	a.End(true) // an old Set's request finishing on a dropped endpoint is fine
	if c := pool.Get("10.0.0.1:80", 1); c == a || c.Ejected() || !c.Healthy() {
		t.Fatal("a re-added address must start afresh")
	}
	got := []string{}
	for _, e := range pool.Endpoints() {
		got = append(got, e.Addr())
	}
	if want := []string{"10.0.0.1:80", "10.0.0.2:80"}; !slices.Equal(got, want) {
		t.Fatalf("Endpoints = %v, want %v", got, want)
	}
}

func TestPoolClampsWeight(t *testing.T) {
	pool := NewPool(PoolOptions{})
	for _, tt := range []struct{ in, want int }{{0, 1}, {-5, 1}, {7, 7}, {MaxWeight + 1, MaxWeight}} {
		if got := pool.Get("a:1", tt.in).Weight(); got != tt.want {
			t.Errorf("Get(weight %d).Weight() = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// The pool's count of ejected endpoints returns to 0 once ejections expire,
// so Pick goes back to reading no clock.
func TestPoolEjectedCount(t *testing.T) {
	pool, s, clk := build(t, P2C, 1, 1, 1)
	pool.SetPassive(Passive{MaxFails: 1})
	for _, e := range s.Endpoints()[:2] {
		e.Begin()
		e.End(false)
	}
	if n := pool.ejected.Load(); n != 2 {
		t.Fatalf("ejected count = %d, want 2", n)
	}
	clk.Advance(DefaultFailTimeout)
	for range 100 {
		s.Pick(nil)
	}
	if n := pool.ejected.Load(); n != 0 {
		t.Fatalf("ejected count = %d after the cooldown and picks, want 0", n)
	}
	e := s.Endpoints()[2]
	e.Begin()
	e.End(false)
	pool.Retain(nil)
	if n := pool.ejected.Load(); n != 0 {
		t.Fatalf("ejected count = %d after dropping the ejected endpoint, want 0", n)
	}
	other := NewPool(PoolOptions{})
	if _, err := NewSet(P2C, []*Endpoint{s.Endpoints()[0], other.Get("x:1", 1)}); err == nil {
		t.Fatal("NewSet accepted endpoints of two pools")
	}
}
