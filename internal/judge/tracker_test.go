package judge

import (
	"math"
	"sync"
	"testing"
	"time"
)

func TestTrackerCountsFirstEventsOnce(t *testing.T) {
	tr := NewTracker(1)
	tr.SetThresholds([3]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, time.Second})
	for _, tc := range []struct {
		user   uint64
		b      Build
		failed bool
		d      time.Duration
		want   uint8
	}{
		{1, Canary, false, 10 * time.Millisecond, 0},
		{1, Canary, true, 10 * time.Millisecond, EventFailed},
		{1, Canary, true, 10 * time.Millisecond, 0},
		{1, Canary, false, 150 * time.Millisecond, EventExceed0},
		{1, Stable, true, 2 * time.Second, EventExceed1 | EventExceed2}, // moved to stable: only what is new
		{2, Stable, false, 300 * time.Millisecond, EventExceed0 | EventExceed1},
		{0, Stable, true, 0, EventFailed}, // hash 0 is a user like any other
	} {
		if got := tr.Observe(tc.user, tc.b, tc.failed, tc.d); got != tc.want {
			t.Errorf("Observe(%d, %d, %v, %v) = %04b, want %04b", tc.user, tc.b, tc.failed, tc.d, got, tc.want)
		}
	}
	var b Bin
	tr.Drain(&b)
	if b.Canary.FirstErrors != 1 || b.Canary.FirstExceed != [3]uint64{1, 0, 0} ||
		b.Stable.FirstErrors != 1 || b.Stable.FirstExceed != [3]uint64{1, 2, 1} {
		t.Fatalf("drained canary %+v stable %+v", b.Canary, b.Stable)
	}
	var again Bin
	tr.Drain(&again)
	if again.Canary.FirstErrors+again.Stable.FirstErrors != 0 {
		t.Fatal("Drain did not reset the counts")
	}
	if u, _ := tr.Users(); u != 3 {
		t.Fatalf("Users() = %d, want 3", u)
	}
}

func TestTrackerLatencyOffUntilThresholds(t *testing.T) {
	tr := NewTracker(1)
	if got := tr.Observe(7, Canary, false, time.Hour); got != 0 {
		t.Fatalf("latency event %04b without thresholds", got)
	}
}

func TestTrackerLeaderDeduplicatesReplicas(t *testing.T) {
	leader := NewTracker(1)
	replicas := []*Tracker{NewTracker(1), NewTracker(1)}
	for _, r := range replicas {
		for u := range uint64(100) {
			if ev := r.Observe(u, Canary, true, 0); ev != 0 {
				leader.Add(u, Canary, ev)
			}
		}
	}
	var b Bin
	leader.Drain(&b)
	if b.Canary.FirstErrors != 100 {
		t.Fatalf("leader counted %d users, want 100", b.Canary.FirstErrors)
	}
}

func TestTrackerConcurrentAndGrows(t *testing.T) {
	tr := NewTracker(1)
	const users, workers = 20000, 4
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for u := range uint64(users) {
				tr.Observe(u*0x9e3779b97f4a7c15+1, Build(w%2), true, 0)
			}
		})
	}
	wg.Wait()
	var b Bin
	tr.Drain(&b)
	if n := b.Canary.FirstErrors + b.Stable.FirstErrors; n != users {
		t.Fatalf("%d first failures, want %d", n, users)
	}
	u, bytes := tr.Users()
	if u != users || bytes > 16*users*2 {
		t.Fatalf("Users() = %d users in %d bytes", u, bytes)
	}
}

func TestTrackerSubsample(t *testing.T) {
	tr := NewTracker(0.1)
	const n = 100000
	for u := range uint64(n) {
		tr.Observe(u, Canary, true, 0)
	}
	u, _ := tr.Users()
	if math.Abs(float64(u)/n-0.1) > 0.01 {
		t.Fatalf("kept %d of %d users, want about 10 %%", u, n)
	}
}
