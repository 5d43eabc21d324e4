package metrics

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"
)

// clock is a fake clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

func newTestRegistry(c *clock, window time.Duration) *Registry {
	return New(Options{Window: window, Now: c.Now, NoRuntimeMetrics: true})
}

func TestClassOf(t *testing.T) {
	for _, tc := range []struct {
		status  int
		connErr bool
		want    Class
		isErr   bool
	}{
		{100, false, Class1xx, false},
		{200, false, Class2xx, false},
		{204, false, Class2xx, false},
		{302, false, Class3xx, false},
		{404, false, Class4xx, false},
		{499, false, Class4xx, false},
		{500, false, Class5xx, true},
		{599, false, Class5xx, true},
		{502, true, ClassConnError, true}, // the gateway's own 502: counted once, as conn_error
		{0, true, ClassConnError, true},
		{0, false, ClassOther, false},
		{99, false, ClassOther, false},
		{600, false, ClassOther, false},
		{-1, false, ClassOther, false},
	} {
		got := ClassOf(tc.status, tc.connErr)
		if got != tc.want || got.IsError() != tc.isErr {
			t.Errorf("ClassOf(%d, %v) = %v (error %v), want %v (error %v)", tc.status, tc.connErr, got, got.IsError(), tc.want, tc.isErr)
		}
	}
	if s := Class(NumClasses).String(); s != "invalid" {
		t.Errorf("out-of-range class prints %q", s)
	}
}

func TestBuildIsCachedUntilForget(t *testing.T) {
	r := newTestRegistry(newClock(), 0)
	a := r.Build("api", "42")
	if r.Build("api", "42") != a {
		t.Fatal("Build returned a new handle for the same pair")
	}
	if r.Build("api", "43") == a || r.Build("web", "42") == a {
		t.Fatal("different pairs share a handle")
	}
	if r.Lookup("api", "42") != a || r.Lookup("api", "nope") != nil {
		t.Fatal("Lookup does not match Build")
	}
	a.Begin()
	a.End(Outcome{Status: 200})
	r.Forget("api", "42")
	r.Forget("api", "never") // no-op
	if r.Lookup("api", "42") != nil {
		t.Fatal("Lookup finds a forgotten build")
	}
	for _, bm := range r.Builds("") {
		if bm == a {
			t.Fatal("Builds lists a forgotten build")
		}
	}
	// A stale snapshot may still record into the old handle: harmless.
	a.Begin()
	a.End(Outcome{Status: 500})
	b := r.Build("api", "42")
	if b == a {
		t.Fatal("Build after Forget returned the forgotten handle")
	}
	if tot := b.Totals(); tot.Requests() != 0 {
		t.Fatalf("new handle starts with %d requests", tot.Requests())
	}
}

func TestBuildsOrder(t *testing.T) {
	r := newTestRegistry(newClock(), 0)
	for _, p := range [][2]string{{"web", "2"}, {"api", "9"}, {"api", "10"}, {"web", "1"}} {
		r.Build(p[0], p[1])
	}
	var got []string
	for _, bm := range r.Builds("") {
		got = append(got, bm.Service()+"/"+bm.Build())
	}
	want := []string{"api/10", "api/9", "web/1", "web/2"}
	if len(got) != len(want) {
		t.Fatalf("Builds = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Builds = %v, want %v", got, want)
		}
	}
	if n := len(r.Builds("api")); n != 2 {
		t.Fatalf("Builds(api) has %d builds, want 2", n)
	}
}

func TestTotals(t *testing.T) {
	r := newTestRegistry(newClock(), 0)
	bm := r.Build("api", "42")
	bm.SetState("canary")
	outcomes := []Outcome{
		{Status: 200, Duration: 10 * time.Millisecond, BytesIn: 100, BytesOut: 1000, User: 1},
		{Status: 201, Duration: 20 * time.Millisecond, BytesOut: 50, User: 2},
		{Status: 304, Duration: time.Millisecond, User: 1},
		{Status: 404, Duration: time.Millisecond, User: 3},
		{Status: 503, Duration: 30 * time.Millisecond, User: 2},
		{ConnErr: true, Status: 502, Duration: time.Second, User: 4},
		{Status: 500, Duration: -time.Second, BytesIn: -5}, // no user, bad numbers: counted, clamped
	}
	for _, o := range outcomes {
		bm.Begin()
		bm.End(o)
	}
	bm.Begin() // one still in flight
	tot := bm.Totals()
	want := [NumClasses]uint64{Class2xx: 2, Class3xx: 1, Class4xx: 1, Class5xx: 2, ClassConnError: 1}
	if tot.Classes != want {
		t.Errorf("Classes = %v, want %v", tot.Classes, want)
	}
	if tot.Requests() != 7 || tot.Errors() != 3 {
		t.Errorf("Requests %d Errors %d, want 7 and 3", tot.Requests(), tot.Errors())
	}
	if tot.BytesIn != 100 || tot.BytesOut != 1050 || tot.InFlight != 1 {
		t.Errorf("bytes in %d out %d in flight %d, want 100 1050 1", tot.BytesIn, tot.BytesOut, tot.InFlight)
	}
	if tot.Latency.Count() != 7 || tot.LatencySum != 1062*time.Millisecond {
		t.Errorf("latency count %d sum %v, want 7 and 1.062s", tot.Latency.Count(), tot.LatencySum)
	}
	// Users 1..4 seen; users 2 (503) and 4 (conn error) harmed. Small
	// cardinalities are exact up to rounding.
	if math.Abs(tot.Users-4) > 0.01 || math.Abs(tot.Harmed-2) > 0.01 {
		t.Errorf("users %.3f harmed %.3f, want 4 and 2", tot.Users, tot.Harmed)
	}
	if bm.State() != "canary" {
		t.Errorf("state %q", bm.State())
	}
	u, h := bm.DistinctUsers()
	if u.Estimate() != tot.Users || h.Estimate() != tot.Harmed {
		t.Error("DistinctUsers copies differ from Totals")
	}
}

func TestDistinctUsersAccuracy(t *testing.T) {
	r := newTestRegistry(newClock(), 0)
	bm := r.Build("api", "42")
	const users, harmed = 50_000, 2_000
	for u := uint64(1); u <= users; u++ {
		for range 2 { // every user twice: duplicates must not count
			o := Outcome{Status: 200, User: u * 0x9e3779b97f4a7c15}
			if u <= harmed {
				o.Status = 500
			}
			bm.Begin()
			bm.End(o)
		}
	}
	tot := bm.Totals()
	// 5 standard errors of a 2^14-register HyperLogLog (≈ 4 %).
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"users", tot.Users, users}, {"harmed", tot.Harmed, harmed}} {
		if e := math.Abs(c.got/c.want - 1); e > 0.04 {
			t.Errorf("%s estimated %.0f, want %v ± 4%%", c.name, c.got, c.want)
		}
	}
}

func TestRecordingDoesNotAllocate(t *testing.T) {
	bm := newTestRegistry(newClock(), 0).Build("api", "42")
	o := Outcome{Status: 503, Duration: 3 * time.Millisecond, BytesIn: 10, BytesOut: 20, User: 77}
	if n := testing.AllocsPerRun(1000, func() {
		bm.Begin()
		bm.End(o)
		o.User++
	}); n != 0 {
		t.Fatalf("Begin+End allocate %v times per request, want 0", n)
	}
}

func TestRunTicksEverySecondAndStops(t *testing.T) {
	r := New(Options{NoRuntimeMetrics: true})
	bm := r.Build("api", "42")
	bm.Begin()
	bm.End(Outcome{Status: 200})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(bm.Window(time.Time{})) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run sealed no bin within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b := bm.Window(time.Time{})[0]
	// 500 ms is generous: a loaded CI machine may fire the timer late.
	if b.Requests != 1 || b.End.Nanosecond() > int(500*time.Millisecond) {
		t.Errorf("first bin %+v: want 1 request, ending just after a whole second", b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v after cancel, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
