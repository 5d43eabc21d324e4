package balance

import (
	"sync"
	"testing"
	"time"
)

func TestPassiveEjection(t *testing.T) {
	type step struct {
		fail    int           // failures to report
		succeed bool          // then one success
		advance time.Duration // then move the clock
		ejected bool          // expected state after the step
	}
	passive := Passive{MaxFails: 3, FailTimeout: 10 * time.Second, MaxCooldown: 35 * time.Second}
	tests := []struct {
		name  string
		steps []step
	}{
		{"below max_fails stays in", []step{{fail: 2}}},
		{"max_fails ejects", []step{{fail: 3, ejected: true}}},
		{"success resets the count", []step{{fail: 2, succeed: true}, {fail: 2}}},
		{"cooldown is fail_timeout", []step{
			{fail: 3, advance: 9 * time.Second, ejected: true},
			{advance: time.Second},
		}},
		{"probation: one failure re-ejects for twice as long, up to the cap", []step{
			{fail: 3, advance: 10 * time.Second},
			{fail: 1, advance: 19 * time.Second, ejected: true}, // 20s
			{advance: time.Second},
			{fail: 1, advance: 35 * time.Second}, // 40s capped to 35s
		}},
		{"backoff is capped", []step{
			{fail: 3, advance: 10 * time.Second},
			{fail: 1, advance: 20 * time.Second},
			{fail: 1, advance: 34 * time.Second, ejected: true}, // 40s capped to 35s
			{advance: time.Second},
			{fail: 1, advance: 34 * time.Second, ejected: true}, // 35s again
			{advance: time.Second},
		}},
		{"success after cooldown ends probation", []step{
			{fail: 3, advance: 10 * time.Second},
			{succeed: true},
			{fail: 2},
			{fail: 1, advance: 9 * time.Second, ejected: true}, // back to 10s
			{advance: time.Second},
		}},
		{"failures while ejected do not count", []step{
			{fail: 3, ejected: true},
			{fail: 10, advance: 10 * time.Second},
			{fail: 1, advance: 19 * time.Second, ejected: true}, // level 2, not more
			{advance: time.Second},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			pool := NewPool(PoolOptions{Now: clk.Now, Passive: passive})
			e := pool.Get("a:1", 1)
			for i, st := range tt.steps {
				for range st.fail {
					e.Begin()
					e.End(false)
				}
				if st.succeed {
					e.Begin()
					e.End(true)
				}
				clk.Advance(st.advance)
				if got := e.Ejected(); got != st.ejected {
					t.Fatalf("step %d: Ejected() = %v, want %v (stats %+v)", i, got, st.ejected, e.Stats())
				}
				if got := e.Available(); got == st.ejected {
					t.Fatalf("step %d: Available() = %v with ejected %v", i, got, st.ejected)
				}
			}
			if n := e.InFlight(); n != 0 {
				t.Fatalf("InFlight() = %d after balanced Begin/End", n)
			}
		})
	}
}

func TestPassiveDisabledAndNeutral(t *testing.T) {
	clk := newFakeClock()
	pool := NewPool(PoolOptions{Now: clk.Now, Passive: Passive{MaxFails: 1, Disabled: true}})
	e := pool.Get("a:1", 1)
	for range 10 {
		e.Begin()
		e.End(false)
	}
	if e.Ejected() {
		t.Fatal("ejected with passive ejection disabled")
	}
	if st := e.Stats(); st.Failures != 10 {
		t.Fatalf("Failures = %d, want 10", st.Failures)
	}
	pool.SetPassive(Passive{MaxFails: 1})
	if got := pool.Passive(); got != (Passive{MaxFails: 1}).WithDefaults() {
		t.Fatalf("Passive() = %+v", got)
	}
	e.Begin()
	e.EndNeutral()
	if e.Ejected() || e.InFlight() != 0 {
		t.Fatalf("EndNeutral: ejected %v, in flight %d", e.Ejected(), e.InFlight())
	}
	e.Begin()
	e.End(false)
	if !e.Ejected() {
		t.Fatal("not ejected after SetPassive(max_fails 1) and one failure")
	}
	st := e.Stats()
	if want := clk.Now().Add(DefaultFailTimeout); !st.EjectedUntil.Equal(want) || !st.Probation || st.Ejections != 1 {
		t.Fatalf("Stats = %+v, want ejected until %v, probation, 1 ejection", st, want)
	}
}

// A burst of concurrent failures ejects once, not once per failure, so the
// backoff does not jump levels when a replica dies under load.
func TestPassiveBurstEjectsOnce(t *testing.T) {
	clk := newFakeClock()
	pool := NewPool(PoolOptions{Now: clk.Now, Passive: Passive{MaxFails: 3}})
	e := pool.Get("a:1", 1)
	const n = 200
	for range n {
		e.Begin()
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { e.End(false) })
	}
	wg.Wait()
	st := e.Stats()
	if st.Ejections != 1 || !st.Ejected || st.InFlight != 0 {
		t.Fatalf("after %d concurrent failures: %+v, want exactly 1 ejection", n, st)
	}
	if got, want := st.EjectedUntil.Sub(clk.Now()), DefaultFailTimeout; got != want {
		t.Fatalf("cooldown %v, want %v", got, want)
	}
}

func TestPassiveConfig(t *testing.T) {
	d := Passive{}.WithDefaults()
	if d.MaxFails != DefaultMaxFails || d.FailTimeout != DefaultFailTimeout || d.MaxCooldown != DefaultMaxCooldown {
		t.Fatalf("defaults = %+v", d)
	}
	if p := (Passive{FailTimeout: time.Hour}).WithDefaults(); p.MaxCooldown != time.Hour {
		t.Fatalf("MaxCooldown below FailTimeout not raised: %+v", p)
	}
	if err := (Passive{}).Validate(); err != nil {
		t.Fatalf("zero Passive: %v", err)
	}
	err := Passive{MaxFails: -1, FailTimeout: -time.Second}.Validate()
	if err == nil || err.Error() != "max_fails -1: must not be negative\nfail_timeout -1s: must not be negative" {
		t.Fatalf("Validate = %v", err)
	}
}
