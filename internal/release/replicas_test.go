package release_test

import (
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/judge"
	"github.com/canaryd/canaryd/internal/metrics"
	"github.com/canaryd/canaryd/internal/release"
	"github.com/canaryd/canaryd/internal/route"
)

// replica is one more gateway process sharing the harness's store: its own
// judged metrics and analysis feed, and its Publisher.
type replica struct {
	name     string
	judged   *metrics.Registry
	analysis *route.Analysis
	pub      *release.Publisher
	stalled  bool // publishes nothing (a slow replica)
}

func (h *harness) replica(name string, judged *metrics.Registry, an *route.Analysis) *replica {
	r := &replica{name: name, judged: judged, analysis: an}
	r.pub = &release.Publisher{Store: h.st, Replica: name, Judged: judged, Analysis: func(string) *route.Analysis { return an }, Now: func() time.Time { return h.now }}
	return r
}

// twoReplicas is the harness's controller replica ("test") and a peer.
func twoReplicas(t *testing.T, block string) (h *harness, leader, peer *replica) {
	h = newHarness(t, block)
	h.analysis["api"] = &route.Analysis{}
	leader = h.replica("test", h.judged, h.analysis["api"])
	peer = h.replica("peer", metrics.New(metrics.Options{NoRuntimeMetrics: true, Now: func() time.Time { return h.now }}), &route.Analysis{})
	return h, leader, peer
}

// serve records n judged requests of build on r, failing for the users in
// failed, and feeds r's first-event tracker as the proxy does.
func (r *replica) serve(build string, n int, failed map[uint64]bool) {
	bm := r.judged.Build("api", build)
	side := judge.Stable
	if build == "2" {
		side = judge.Canary
	}
	for i := range n {
		user := uint64(i%50 + 1)
		status := 200
		if failed[user] {
			status = 500
		}
		bm.Begin()
		bm.End(metrics.Outcome{Status: status, Duration: 10 * time.Millisecond, User: user})
		if t := r.analysis.Tracker(); t != nil {
			t.Observe(user, side, status >= 500, 10*time.Millisecond)
		}
	}
}

// shifted returns users+30: other users failing as often on stable, so
// the error rates of both builds stay equal (a user is one identity across
// builds: their first failure counts for the build that failed them first).
func shifted(users map[uint64]bool) map[uint64]bool {
	out := map[uint64]bool{}
	for u := range users {
		out[u+30] = true
	}
	return out
}

// twoSeconds is one second on both replicas: traffic (the users in lf
// and pf fail on the canary of the leader and the peer, as many others on
// stable: an A/A test whose errors harm users), ticks, the peer's and the leader's
// publications, then a step of ctl. It returns the canary requests served.
func (h *harness) twoSeconds(ctl *release.Controller, leader, peer *replica, perReplica int, lf, pf map[uint64]bool) (canary int) {
	h.t.Helper()
	svc := h.service()
	nc := int(float64(perReplica) * svc.Traffic / 100)
	if svc.Canary == "" {
		nc = 0
	}
	leader.serve("1", perReplica-nc, shifted(lf))
	peer.serve("1", perReplica-nc, shifted(pf))
	if nc > 0 {
		leader.serve("2", nc, lf)
		peer.serve("2", nc, pf)
	}
	h.now = h.now.Add(time.Second)
	leader.judged.Tick(h.now)
	peer.judged.Tick(h.now)
	for _, r := range []*replica{peer, leader} {
		if r.stalled {
			continue
		}
		if err := r.pub.Publish(h.ctx); err != nil {
			h.t.Fatalf("%s publishes: %v", r.name, err)
		}
	}
	if err := ctl.Step(h.ctx); err != nil {
		h.t.Fatal(err)
	}
	return 2 * nc
}

// The leader judges the sum of both replicas' traffic, and counts a user
// harmed on both replicas once.
func TestLeaderJudgesEveryReplica(t *testing.T) {
	h, leader, peer := twoReplicas(t, `      steps: [50, 100]
      step_duration: 1h
      analysis: {min_samples: 50, max_error_rate_delta: 50%, max_latency_deviation: 500%, max_users_harmed: 1000}`)
	h.start(50)
	h.twoSeconds(h.ctl, leader, peer, 100, nil, nil) // the release begins
	// Users 1–10 fail on the leader's canary, 6–15 on the peer's.
	lf, pf := map[uint64]bool{}, map[uint64]bool{}
	for u := uint64(1); u <= 15; u++ {
		if u <= 10 {
			lf[u] = true
		}
		if u >= 6 {
			pf[u] = true
		}
	}
	want := 0
	for range 20 {
		want += h.twoSeconds(h.ctl, leader, peer, 100, lf, pf)
	}
	st, ok := h.ctl.Status("api")
	if !ok {
		t.Fatalf("no release running:\n%s", h.story())
	}
	if got := st.Totals.CanaryRequests; got != uint64(want) {
		t.Errorf("the leader judged %d canary requests, want %d: both replicas' (%d on the leader alone)", got, want, want/2)
	}
	if st.Verdict == nil {
		t.Fatal("no verdict")
	}
	var harmed uint64
	for _, r := range st.Verdict.Reasons {
		harmed = max(harmed, r.UsersHarmed)
	}
	if harmed != 15 {
		t.Errorf("users harmed = %d, want 15 (10 on the leader, 10 on the peer, 5 of them on both)", harmed)
	}
	if st.Harmed < 13 || st.Harmed > 17 {
		t.Errorf("users harmed by the merged sketches = %.1f, want about 15", st.Harmed)
	}
}

// The leader waits for a live peer's second before judging it, and stops
// waiting when the peer is too far behind.
func TestLeaderWaitsForLivePeers(t *testing.T) {
	h, leader, peer := twoReplicas(t, `      steps: [30, 100]
      step_duration: 1h
      analysis: {min_samples: 50}`)
	h.start(30)
	h.twoSeconds(h.ctl, leader, peer, 200, nil, nil)
	h.twoSeconds(h.ctl, leader, peer, 200, nil, nil)
	st, _ := h.ctl.Status("api")
	before := st.Totals.CanaryRequests
	if before != 120 {
		t.Fatalf("after one judged second: %d canary requests, want 120", before)
	}
	// The peer stops publishing (a slow replica): its mark stays at the
	// last second, so the leader holds its own seconds back...
	peer.stalled = true
	h.twoSeconds(h.ctl, leader, peer, 200, nil, nil)
	h.twoSeconds(h.ctl, leader, peer, 200, nil, nil)
	st, _ = h.ctl.Status("api")
	if st.Totals.CanaryRequests != before {
		t.Fatalf("judged %d canary requests while the peer lagged 2 s, want still %d", st.Totals.CanaryRequests, before)
	}
	// ... until it is maxPeerLag seconds behind: then the leader judges
	// its own traffic of those seconds.
	h.twoSeconds(h.ctl, leader, peer, 200, nil, nil)
	h.twoSeconds(h.ctl, leader, peer, 200, nil, nil)
	st, _ = h.ctl.Status("api")
	if st.Totals.CanaryRequests <= before {
		t.Fatalf("still %d canary requests after the peer lagged 4 s: the leader waits forever", st.Totals.CanaryRequests)
	}
	// The peer catches up: its late seconds were given up, its new ones count.
	peer.stalled = false
	judged := st.Totals.CanaryRequests
	for range 3 {
		h.twoSeconds(h.ctl, leader, peer, 200, nil, nil)
	}
	st, _ = h.ctl.Status("api")
	if st.Totals.CanaryRequests < judged+3*60+3*60 {
		t.Errorf("after the peer caught up: %d canary requests, want at least %d (both replicas' new seconds)", st.Totals.CanaryRequests, judged+360)
	}
}

// A new leader rebuilds the release's users from what the replicas
// published: a user harmed before the failover is not counted again.
func TestFailoverKeepsHarmedUsers(t *testing.T) {
	h, leader, peer := twoReplicas(t, `      steps: [50, 100]
      step_duration: 1h
      analysis: {min_samples: 50, max_error_rate_delta: 50%, max_latency_deviation: 500%, max_users_harmed: 1000}`)
	h.start(50)
	h.twoSeconds(h.ctl, leader, peer, 100, nil, nil)
	failed := map[uint64]bool{1: true, 2: true, 3: true}
	for range 10 {
		h.twoSeconds(h.ctl, leader, peer, 100, failed, nil)
	}
	// The leader's process dies; after its lease expires the peer's
	// controller takes over and resumes the release.
	h.now = h.now.Add(11 * time.Second)
	ctl2 := release.New(release.Options{Plane: h.plane, Config: h.ctl2cfg(), Judged: peer.judged,
		Analysis: func(string) *route.Analysis { return peer.analysis }, Holder: "peer", Now: func() time.Time { return h.now }})
	// From now on the old leader's replica is gone; the same users fail
	// on the peer, plus user 4.
	failed[4] = true
	gone := h.replica("gone", metrics.New(metrics.Options{NoRuntimeMetrics: true, Now: func() time.Time { return h.now }}), &route.Analysis{})
	for range 10 {
		h.twoSeconds(ctl2, gone, peer, 100, nil, failed)
	}
	st, ok := ctl2.Status("api")
	if !ok || st.Verdict == nil {
		t.Fatalf("the new leader did not resume the release:\n%s", h.story())
	}
	var harmed uint64
	for _, r := range st.Verdict.Reasons {
		harmed = max(harmed, r.UsersHarmed)
	}
	if harmed != 4 {
		t.Errorf("users harmed after failover = %d, want 4 (users 1–3 before, user 4 after; not 1–3 twice)", harmed)
	}
}
