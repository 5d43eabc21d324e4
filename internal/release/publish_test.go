package release_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/judge"
	"github.com/canaryd/canaryd/internal/store"
)

// flakyStore refuses writes while down, like a PostgreSQL that went away.
type flakyStore struct {
	store.Store
	down bool
}

var errDown = errors.New("store down")

func (f *flakyStore) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	if f.down {
		return errDown
	}
	return f.Store.Update(ctx, fn)
}

// A replica without the lease installs its own journaling tracker for the
// running release, with the leader's latency thresholds, and removes it
// when the release ends.
func TestPublisherTracksTheRelease(t *testing.T) {
	h, leader, peer := twoReplicas(t, `      steps: [50, 100]
      step_duration: 1h
      analysis: {min_samples: 50}`)
	h.start(50)
	for range 15 { // enough stable traffic for the judge's thresholds
		h.twoSeconds(h.ctl, leader, peer, 200, nil, nil)
	}
	own := peer.analysis.Tracker()
	if own == nil || own == h.analysis["api"].Tracker() {
		t.Fatalf("peer tracker %p, leader's %p: want a tracker of the peer's own", own, h.analysis["api"].Tracker())
	}
	// Its thresholds are the leader's, read from the release record: a
	// request just above the leader's highest one is a new exceedance.
	if ev := own.Observe(4242, judge.Canary, false, time.Hour); ev&judge.EventExceed2 == 0 {
		t.Errorf("a one-hour request on the peer counted no p99 exceedance (events %04b): the peer has no thresholds", ev)
	}
	// The release ends (an operator rolls it back): the peer's tracker goes.
	if _, err := h.plane.Rollback(h.ctx, "alice", "api", "test"); err != nil {
		t.Fatal(err)
	}
	h.twoSeconds(h.ctl, leader, peer, 200, nil, nil)
	h.twoSeconds(h.ctl, leader, peer, 200, nil, nil)
	if tr := peer.analysis.Tracker(); tr != nil {
		t.Errorf("after the release ended the peer still has a tracker %p", tr)
	}
}

// While the store refuses writes, a replica keeps its first events and
// bins, and publishes them all once it is back: the leader then counts the
// users harmed meanwhile, and judges the seconds it missed.
func TestPublisherRetriesAfterAnOutage(t *testing.T) {
	h, leader, peer := twoReplicas(t, `      steps: [50, 100]
      step_duration: 1h
      analysis: {min_samples: 50, max_error_rate_delta: 50%, max_latency_deviation: 500%, max_users_harmed: 1000}`)
	flaky := &flakyStore{Store: h.st}
	peer.pub.Store = flaky
	h.start(50)
	h.twoSeconds(h.ctl, leader, peer, 100, nil, nil)
	h.twoSeconds(h.ctl, leader, peer, 100, nil, nil)
	flaky.down = true
	failing := map[uint64]bool{1: true, 2: true, 3: true}
	for range 2 { // within maxPeerLag: the leader waits for the peer
		h.now = h.now.Add(time.Second)
		peer.serve("1", 50, shifted(failing))
		peer.serve("2", 50, failing)
		leader.serve("1", 50, nil)
		leader.serve("2", 50, nil)
		leader.judged.Tick(h.now)
		peer.judged.Tick(h.now)
		if err := peer.pub.Publish(h.ctx); !errors.Is(err, errDown) {
			t.Fatalf("publishing while the store is down: %v", err)
		}
		if err := leader.pub.Publish(h.ctx); err != nil {
			t.Fatal(err)
		}
		if err := h.ctl.Step(h.ctx); err != nil {
			t.Fatal(err)
		}
	}
	flaky.down = false
	h.twoSeconds(h.ctl, leader, peer, 100, nil, nil)
	st, _ := h.ctl.Status("api")
	if st.Totals.CanaryRequests != 4*100 {
		t.Errorf("judged %d canary requests, want 400: both replicas' four seconds, the two of the outage included", st.Totals.CanaryRequests)
	}
	var harmed uint64
	for _, r := range st.Verdict.Reasons {
		harmed = max(harmed, r.UsersHarmed)
	}
	if harmed != 3 {
		t.Errorf("users harmed = %d, want 3 (harmed on the peer during the outage)", harmed)
	}
}
