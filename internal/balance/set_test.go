package balance

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

func TestNewSetErrors(t *testing.T) {
	pool := NewPool(PoolOptions{})
	a := pool.Get("a:1", 1)
	tests := []struct {
		policy Policy
		eps    []*Endpoint
		want   string
	}{
		{"random", []*Endpoint{a}, `balance policy "random": unknown`},
		{P2C, []*Endpoint{a, nil}, "endpoint 1 is nil"},
		{P2C, []*Endpoint{a, a}, `endpoint "a:1" listed twice`},
	}
	for _, tt := range tests {
		_, err := NewSet(tt.policy, tt.eps)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewSet(%q) error = %v, want %q", tt.policy, err, tt.want)
		}
	}
	if s, err := NewSet("", nil); err != nil || s.Policy() != P2C {
		t.Fatalf(`NewSet("") = %v, %v; want the P2C default`, s, err)
	}
}

func TestPickAvailability(t *testing.T) {
	for _, p := range policies {
		t.Run(string(p), func(t *testing.T) {
			pool, s, _ := build(t, p, 1, 2, 3)
			eps := s.Endpoints()
			if e, _ := (&Set{}).Pick(nil); e != nil {
				t.Fatal("empty Set picked an endpoint")
			}

			// One failing checks, one ejected: only eps[2] is available.
			eps[0].SetHealthy(false)
			pool.SetPassive(Passive{MaxFails: 1})
			eps[1].Begin()
			eps[1].End(false)
			for range 1000 {
				if e, fb := s.Pick(nil); e != eps[2] || fb {
					t.Fatalf("Pick = %v, %v; want %s, no fallback", e.Addr(), fb, eps[2].Addr())
				}
			}
			if st := s.Status(); st != (SetStatus{Endpoints: 3, Available: 1, Unhealthy: 1, Ejected: 1}) {
				t.Fatalf("Status = %+v", st)
			}

			// Retry excluding the only available endpoint: fall back to the
			// others rather than fail.
			for range 100 {
				if e, fb := s.Pick(eps[2]); e == eps[2] || e == nil || !fb {
					t.Fatalf("Pick(exclude %s) = %v, %v; want another endpoint as fallback", eps[2].Addr(), e, fb)
				}
			}

			// All down: still an endpoint, flagged as fallback, and Status
			// says none is available.
			eps[2].SetHealthy(false) // eps[1] stays ejected but healthy
			seen := map[*Endpoint]bool{}
			for range 1000 {
				e, fb := s.Pick(nil)
				if e == nil || !fb {
					t.Fatalf("all down: Pick = %v, %v; want a fallback endpoint", e, fb)
				}
				seen[e] = true
			}
			if len(seen) != 3 {
				t.Fatalf("all down: fallback used %d endpoints, want all 3", len(seen))
			}
			if st := s.Status(); st.Available != 0 {
				t.Fatalf("all down: Status = %+v", st)
			}
			if got, want := s.Status().String(), "0 of 3 endpoints available (2 failing health checks, 1 ejected after failures)"; got != want {
				t.Fatalf("Status().String() = %q, want %q", got, want)
			}
		})
	}
}

func TestPickExclude(t *testing.T) {
	for _, p := range policies {
		t.Run(string(p), func(t *testing.T) {
			_, s, _ := build(t, p, 5, 1)
			a, b := s.Endpoints()[0], s.Endpoints()[1]
			for range 1000 {
				if e, fb := s.Pick(a); e != b || fb {
					t.Fatalf("Pick(exclude a) = %v, %v; want b", e.Addr(), fb)
				}
			}
			_, one, _ := build(t, p, 1)
			if e, _ := one.Pick(one.Endpoints()[0]); e != nil {
				t.Fatalf("Pick(exclude the only endpoint) = %v, want nil", e.Addr())
			}
		})
	}
}

// Round robin serves exact weight proportions in every period, in nginx's
// smooth order.
func TestRoundRobinExact(t *testing.T) {
	_, s, _ := build(t, RoundRobin, 5, 1, 1)
	var order strings.Builder
	for range 7 {
		e, _ := s.Pick(nil)
		order.WriteByte("abc"[strings.Index("e0e1e2", e.Addr()[:2])/2])
	}
	if got, want := order.String(), "aabacaa"; got != want {
		t.Fatalf("order of weights 5,1,1 = %q, want %q", got, want)
	}

	tests := []struct {
		weights []int
		n       int
		want    []int
	}{
		{[]int{1, 1, 1}, 3000, []int{1000, 1000, 1000}},
		{[]int{1, 2, 3}, 6000, []int{1000, 2000, 3000}},
		{[]int{20, 40, 60}, 6000, []int{1000, 2000, 3000}}, // gcd
		{[]int{1, 9999}, 100000, []int{10, 99990}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.weights), func(t *testing.T) {
			_, s, _ := build(t, RoundRobin, tt.weights...)
			if got := counts(t, s, tt.n); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("counts = %v, want %v", got, tt.want)
			}
		})
	}
}

// Round robin with concurrent pickers still serves exact proportions over
// whole periods: the cursor is one atomic counter.
func TestRoundRobinConcurrentExact(t *testing.T) {
	_, s, _ := build(t, RoundRobin, 1, 2, 3)
	idx := map[*Endpoint]int{}
	for i, e := range s.Endpoints() {
		idx[e] = i
	}
	var mu sync.Mutex
	total := make([]int, 3)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			local := make([]int, 3)
			for range 1500 {
				e, _ := s.Pick(nil)
				local[idx[e]]++
			}
			mu.Lock()
			for i := range local {
				total[i] += local[i]
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if fmt.Sprint(total) != "[1000 2000 3000]" {
		t.Fatalf("counts = %v, want [1000 2000 3000]", total)
	}
}

func TestRoundRobinLargeWeightsScaled(t *testing.T) {
	w := make([]int, 50)
	for i := range w {
		w[i] = 9000 + i // coprime-ish: the exact period would be ~450000
	}
	_, s, _ := build(t, RoundRobin, w...)
	if l := len(s.sel.(*roundRobin).seq); l > maxSequence+len(w) {
		t.Fatalf("sequence length %d, want ≤ %d", l, maxSequence+len(w))
	}
	got := counts(t, s, 100000)
	for i, c := range got {
		if c < 1800 || c > 2200 {
			t.Fatalf("endpoint %d got %d of 100000 picks, want about 2000", i, c)
		}
	}
}

// share returns the fraction of picks that went to endpoint i.
func share(c []int, i int) float64 {
	sum := 0
	for _, x := range c {
		sum += x
	}
	return float64(c[i]) / float64(sum)
}

// Idle P2C and least-conn serve in proportion to weight. With N = 100000
// the standard error of a 0.75 share is 0.0014; the tolerance is 0.01
// (about 7 standard errors), and the seed is fixed.
func TestRandomPoliciesWeightedWhenIdle(t *testing.T) {
	const n, tol = 100000, 0.01
	for _, p := range []Policy{P2C, LeastConn} {
		for _, tt := range []struct {
			weights []int
			want    []float64
		}{
			{[]int{1, 3}, []float64{0.25, 0.75}},
			{[]int{1, 1, 1, 1}, []float64{0.25, 0.25, 0.25, 0.25}},
			{[]int{1, 2, 3, 4}, []float64{0.1, 0.2, 0.3, 0.4}},
		} {
			t.Run(fmt.Sprint(p, tt.weights), func(t *testing.T) {
				_, s, _ := build(t, p, tt.weights...)
				c := counts(t, seeded(s, 42), n)
				for i, w := range tt.want {
					if got := share(c, i); math.Abs(got-w) > tol {
						t.Errorf("endpoint %d (weight %d): share %.4f, want %.2f ± %.2f", i, tt.weights[i], got, w, tol)
					}
				}
			})
		}
	}
}

// Under load, P2C balances requests in flight per unit of weight, so a
// closed loop of 40 concurrent requests still splits about 1:3. The
// tolerance is looser (0.03) because the load signal, not the draw, decides.
func TestP2CWeightedUnderLoad(t *testing.T) {
	_, s, _ := build(t, P2C, 1, 3)
	seeded(s, 7)
	const n, window = 100000, 40
	queue := make([]*Endpoint, 0, window+1)
	c := make([]int, 2)
	for range n {
		e, _ := s.Pick(nil)
		e.Begin()
		if e == s.Endpoints()[0] {
			c[0]++
		} else {
			c[1]++
		}
		queue = append(queue, e)
		if len(queue) > window {
			queue[0].End(true)
			queue = queue[1:]
		}
	}
	if got := share(c, 1); math.Abs(got-0.75) > 0.03 {
		t.Fatalf("weight-3 share under load %.4f, want 0.75 ± 0.03", got)
	}
	a, b := s.Endpoints()[0].InFlight(), s.Endpoints()[1].InFlight()
	if a+b != window || b < 2*a || b > 4*a {
		t.Fatalf("in flight %d:%d, want about 1:3", a, b)
	}
}

func TestLoadAware(t *testing.T) {
	tests := []struct {
		policy   Policy
		weights  []int
		inflight []int
		want     int // index that must win every pick
	}{
		{LeastConn, []int{1, 1, 1}, []int{2, 0, 1}, 1},
		{LeastConn, []int{1, 3}, []int{1, 2}, 1}, // 2/3 < 1/1
		{LeastConn, []int{1, 3}, []int{1, 4}, 0}, // 1/1 < 4/3
		{P2C, []int{1, 1}, []int{3, 0}, 1},       // two endpoints: both always drawn
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.policy, tt.weights, tt.inflight), func(t *testing.T) {
			_, s, _ := build(t, tt.policy, tt.weights...)
			for i, k := range tt.inflight {
				for range k {
					s.Endpoints()[i].Begin()
				}
			}
			c := counts(t, seeded(s, 1), 10000)
			if c[tt.want] != 10000 {
				t.Fatalf("counts = %v, want all on %d", c, tt.want)
			}
		})
	}

	// P2C never picks the one busy endpoint of three: it loses every pair
	// it is drawn into.
	_, s, _ := build(t, P2C, 1, 1, 1)
	s.Endpoints()[0].Begin()
	if c := counts(t, seeded(s, 3), 10000); c[0] != 0 || c[1] < 4500 || c[2] < 4500 {
		t.Fatalf("P2C with one busy endpoint: counts = %v", c)
	}
}

// Concurrent picks, request accounting, health flips and ejections; run
// with -race.
func TestConcurrentUse(t *testing.T) {
	for _, p := range policies {
		t.Run(string(p), func(t *testing.T) {
			pool, s, clk := build(t, p, 1, 2, 3, 4)
			pool.SetPassive(Passive{MaxFails: 2})
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					var last *Endpoint
					for i := range 3000 {
						e, _ := s.Pick(last)
						if e == nil {
							t.Error("Pick returned nil on a non-empty Set")
							return
						}
						e.Begin()
						e.End(i%7 != g)
						last = e
					}
				})
			}
			wg.Go(func() {
				for i := range 300 {
					s.Endpoints()[i%4].SetHealthy(i%3 != 0)
					clk.Advance(DefaultFailTimeout / 3)
					_ = s.Status()
				}
			})
			wg.Wait()
			nonzero := int64(0)
			for _, e := range s.Endpoints() {
				if e.ejectedUntil.Load() != 0 {
					nonzero++
				}
			}
			if n := pool.ejected.Load(); n != nonzero {
				t.Fatalf("pool counts %d ejected endpoints, %d have a deadline", n, nonzero)
			}
			for _, e := range s.Endpoints() {
				if e.InFlight() != 0 {
					t.Fatalf("%s in flight %d after all requests ended", e.Addr(), e.InFlight())
				}
			}
		})
	}
}

func TestParsePolicy(t *testing.T) {
	for in, want := range map[string]Policy{"": P2C, "p2c": P2C, "round_robin": RoundRobin, "least_conn": LeastConn} {
		if got, err := ParsePolicy(in); got != want || err != nil {
			t.Errorf("ParsePolicy(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParsePolicy("LeastConn"); err == nil {
		t.Error(`ParsePolicy("LeastConn") accepted`)
	}
}

// Pick must not allocate on any path: healthy, retry, degraded, fallback.
func TestPickAllocs(t *testing.T) {
	for _, p := range policies {
		pool, s, _ := build(t, p, 1, 2, 3, 4)
		pool.SetPassive(Passive{MaxFails: 1})
		eps := s.Endpoints()
		check := func(what string, exclude *Endpoint) {
			t.Helper()
			if n := testing.AllocsPerRun(1000, func() { s.Pick(exclude) }); n != 0 {
				t.Errorf("%s %s: %v allocs per Pick", p, what, n)
			}
		}
		check("healthy", nil)
		check("retry", eps[0])
		eps[1].Begin()
		eps[1].End(false)
		eps[2].SetHealthy(false)
		check("degraded", nil)
		eps[0].SetHealthy(false)
		eps[3].SetHealthy(false)
		check("fallback", eps[1])
	}
}

// Round robin gives the share of an unavailable endpoint to the others in
// their own proportions, not all to its successor.
func TestRoundRobinSkipKeepsProportions(t *testing.T) {
	tests := []struct {
		weights []int
		down    int
		n       int
		want    []int
	}{
		{[]int{1, 1, 1}, 0, 1000, []int{0, 500, 500}},
		{[]int{1, 1, 1, 1}, 1, 900, []int{300, 0, 300, 300}},
		{[]int{1, 2, 3}, 0, 5000, []int{0, 2000, 3000}},
		{[]int{3, 2, 1}, 1, 4000, []int{3000, 0, 1000}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.weights, tt.down), func(t *testing.T) {
			_, s, _ := build(t, RoundRobin, tt.weights...)
			s.Endpoints()[tt.down].SetHealthy(false)
			if got := counts(t, s, tt.n); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("counts = %v, want %v", got, tt.want)
			}
		})
	}
}

// Random Sets in random states: Pick's contract holds for every policy.
func TestPickContractRandomized(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 2000 {
		p := policies[iter%len(policies)]
		n := 1 + rng.IntN(12)
		weights := make([]int, n)
		for i := range weights {
			weights[i] = 1 + rng.IntN(20)
		}
		pool, s, _ := build(t, p, weights...)
		pool.SetPassive(Passive{MaxFails: 1})
		eps := s.Endpoints()
		for _, e := range eps {
			switch rng.IntN(4) {
			case 0:
				e.SetHealthy(false)
			case 1:
				e.Begin()
				e.End(false)
			case 2:
				for range rng.IntN(5) {
					e.Begin()
				}
			}
		}
		var exclude *Endpoint
		if rng.IntN(2) == 0 {
			exclude = eps[rng.IntN(n)]
		}
		avail, others := 0, 0
		for _, e := range eps {
			if e != exclude {
				others++
				if e.Available() {
					avail++
				}
			}
		}
		for range 20 {
			e, fb := s.Pick(exclude)
			switch {
			case others == 0:
				if e != nil {
					t.Fatalf("%s: Pick = %s with only exclude in the Set", p, e.Addr())
				}
			case e == nil || e == exclude:
				t.Fatalf("%s weights %v: Pick = %v, exclude %v", p, weights, e, exclude)
			case avail > 0 && (fb || !e.Available()):
				t.Fatalf("%s weights %v: Pick = %s (available %v), fallback %v with %d available",
					p, weights, e.Addr(), e.Available(), fb, avail)
			case avail == 0 && !fb:
				t.Fatalf("%s: no fallback flag with none available", p)
			}
		}
	}
}

// A replica ten times slower than the others holds its requests ten times
// longer. Load-aware policies see that in the in-flight counts and send it
// far less than round robin's third. Discrete time, fixed seed.
func TestSlowReplica(t *testing.T) {
	tests := []struct {
		policy   Policy
		min, max float64 // share of the slow replica
	}{
		{RoundRobin, 1.0 / 3, 1.0 / 3},
		{P2C, 0.02, 0.15},
		{LeastConn, 0.0, 0.10},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			_, s, _ := build(t, tt.policy, 1, 1, 1)
			seeded(s, 11)
			slow := s.Endpoints()[0]
			const ticks, perTick, slowTicks = 20000, 3, 10
			var ends [slowTicks + 1][]*Endpoint // requests ending at tick t % len
			var toSlow, total int
			for tick := range ticks {
				slot := tick % len(ends)
				for _, e := range ends[slot] {
					e.End(true)
				}
				ends[slot] = ends[slot][:0]
				for range perTick {
					e, _ := s.Pick(nil)
					e.Begin()
					d := 1
					if e == slow {
						d = slowTicks
						toSlow++
					}
					total++
					ends[(tick+d)%len(ends)] = append(ends[(tick+d)%len(ends)], e)
				}
			}
			got := float64(toSlow) / float64(total)
			if got < tt.min-1e-9 || got > tt.max+1e-9 {
				t.Fatalf("slow replica got %.4f of requests, want %.2f..%.2f", got, tt.min, tt.max)
			}
			t.Logf("slow replica share %.4f", got)
		})
	}
}
