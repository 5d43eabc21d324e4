package release_test

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/metrics"
	"github.com/canaryd/canaryd/internal/store"
)

// fakeGateway stands in for the data plane on 127.0.0.1: it splits each
// request between stable 1 and canary 2 with the canary's current share
// (per request, as weighted routing does) and records it as judged
// traffic, so the controller judges the load test's requests exactly as
// it would judge real ones.
type fakeGateway struct {
	*httptest.Server
	share    atomic.Uint64 // math.Float64bits of the canary's share
	arrivals atomic.Int64
	mu       sync.Mutex
	users    map[string]bool
	paths    map[string]int
}

func newFakeGateway(t *testing.T, h *harness) *fakeGateway {
	t.Helper()
	g := &fakeGateway{users: map[string]bool{}, paths: map[string]int{}}
	stable, canary := h.judged.Build("api", "1"), h.judged.Build("api", "2") // created here: the handler must not read the fake clock
	var rngMu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.arrivals.Add(1)
		user := r.Header.Get("X-User-ID")
		g.mu.Lock()
		g.users[user] = true
		g.paths[r.Method+" "+r.URL.Path]++
		g.mu.Unlock()
		rngMu.Lock()
		toCanary := rng.Float64() < math.Float64frombits(g.share.Load())
		rngMu.Unlock()
		bm := stable
		if toCanary {
			bm = canary
		}
		hash := fnv.New64a()
		hash.Write([]byte(user))
		bm.Begin()
		bm.End(metrics.Outcome{Status: 200, Duration: 10 * time.Millisecond, User: hash.Sum64()})
	}))
	t.Cleanup(g.Close)
	return g
}

// loadRelease is a release with no real traffic (rps 0) and a load test
// against the fake gateway.
func loadRelease(target string) string {
	return fmt.Sprintf(`      steps: [20, 50, 100]
      step_duration: 3s
      max_step_duration: 60s
      analysis: {min_samples: 20, max_error_rate_delta: 10%%, max_latency_deviation: 500%%}
      load_test:
        rate: 400
        users: 200
        path: /ping
        target: "%s"`, target)
}

// tick lets the load test run for 100 ms of real time, then judges one
// second of the fake clock. The load generator keeps real time; the
// controller's clock is the harness's.
func (g *fakeGateway) tick(h *harness) {
	h.t.Helper()
	svc := h.service()
	share := 0.0
	if svc.Canary != "" {
		share = svc.Traffic / 100
	}
	g.share.Store(math.Float64bits(share))
	time.Sleep(100 * time.Millisecond)
	h.second()
}

// ends makes sure no load test outlives a failed test: roll back and let
// the controller see it.
func endRelease(t *testing.T, h *harness) {
	t.Cleanup(func() {
		if h.service().Canary != "" {
			_, _ = h.plane.Rollback(h.ctx, "test", "api", "test over")
			h.second()
		}
	})
}

// A release whose service has no traffic of its own reaches a pass on the
// load test's requests alone and is promoted; the load test runs only
// while steps are judged and stops with the release.
func TestLoadTestDrivesRelease(t *testing.T) {
	h := newHarness(t, loadRelease("http://127.0.0.1:1")) // the target is replaced below
	h.rps = 0
	g := newFakeGateway(t, h)
	h.cfg.Services[0].Release.LoadTest.Target = g.URL
	endRelease(t, h)
	if g.arrivals.Load() != 0 {
		t.Fatal("requests before any release")
	}
	h.start(20)
	sawStatus := false
	for i := 0; i < 150 && h.service().Canary != ""; i++ {
		g.tick(h)
		if st, ok := h.ctl.Status("api"); ok && st.LoadTest != nil && st.LoadTest.Sent > 0 {
			sawStatus = sawStatus || (st.LoadTest.Target == g.URL+"/ping" && st.LoadTest.Rate == 400 && st.LoadTest.Classes["2xx"] > 0)
		}
	}
	if h.service().Canary != "" {
		t.Fatalf("not promoted within 150 s of load:\n%s", h.story())
	}
	if rec := h.records()[0]; rec.Status != store.ReleasePromoted {
		t.Fatalf("record %s %q", rec.Status, rec.Reason)
	}
	if got := h.trafficSteps(); !slices.Equal(got, []string{"50%", "100%"}) {
		t.Errorf("steps %v, want [50%% 100%%]", got)
	}
	if !sawStatus {
		t.Error("the release status never showed the load test's counts")
	}
	// Stopped with the release: once the requests cancelled by the stop
	// have landed, nothing arrives any more.
	time.Sleep(200 * time.Millisecond)
	n := g.arrivals.Load()
	time.Sleep(300 * time.Millisecond)
	if m := g.arrivals.Load(); m != n {
		t.Errorf("%d requests arrived after the promotion", m-n)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.users) < 150 || g.paths["GET /ping"] != int(n) {
		t.Errorf("%d distinct users, paths %v for %d requests", len(g.users), g.paths, n)
	}
	for u := range g.users {
		if !strings.HasPrefix(u, "canaryd-loadtest-") {
			t.Fatalf("user key %q", u)
		}
	}
}

// A pause stops the load test and a resume starts it again; a rollback
// stops it for good.
func TestLoadTestFollowsPauseAndRollback(t *testing.T) {
	h := newHarness(t, loadRelease("http://127.0.0.1:1"))
	h.rps = 0
	g := newFakeGateway(t, h)
	h.cfg.Services[0].Release.LoadTest.Target = g.URL
	endRelease(t, h)
	h.start(20)
	for range 3 {
		g.tick(h)
	}
	if g.arrivals.Load() == 0 {
		t.Fatal("no load during the first step")
	}
	if _, err := h.plane.SetPaused(h.ctx, "alice", "api", true, "look at something"); err != nil {
		t.Fatal(err)
	}
	g.tick(h)
	time.Sleep(200 * time.Millisecond) // requests cancelled by the stop land
	n := g.arrivals.Load()
	for range 3 {
		g.tick(h)
	}
	if m := g.arrivals.Load(); m != n {
		t.Fatalf("%d requests while paused", m-n)
	}
	if st, _ := h.ctl.Status("api"); st.LoadTest == nil || !st.LoadTest.Done || st.LoadTest.Why != "stopped" || st.LoadTest.Sent == 0 {
		t.Fatalf("status while paused: %+v", st.LoadTest)
	}
	if _, err := h.plane.SetPaused(h.ctx, "alice", "api", false, "fine"); err != nil {
		t.Fatal(err)
	}
	g.tick(h)
	g.tick(h)
	if g.arrivals.Load() == n {
		t.Fatal("no load after resume")
	}
	if _, err := h.plane.Rollback(h.ctx, "alice", "api", "enough"); err != nil {
		t.Fatal(err)
	}
	g.tick(h)
	// A request cancelled by the stop may still reach the gateway a moment
	// later (its bytes were on the wire): let those land, then nothing more
	// may come.
	time.Sleep(200 * time.Millisecond)
	n = g.arrivals.Load()
	time.Sleep(300 * time.Millisecond)
	if m := g.arrivals.Load(); m != n {
		t.Fatalf("%d requests after the rollback", m-n)
	}
}

// Without a target and with a gateway on a free port (port 0) the load
// test cannot know where to send: it says so in the status and sends
// nothing.
func TestLoadTestUnknownTarget(t *testing.T) {
	h := newHarness(t, strings.Replace(loadRelease("x"), `        target: "x"`, "", 1))
	h.rps = 0
	endRelease(t, h)
	h.start(20)
	h.second()
	st, ok := h.ctl.Status("api")
	if !ok || st.LoadTest == nil || !strings.Contains(st.LoadTest.Error, "set load_test.target") || st.LoadTest.Sent != 0 {
		t.Fatalf("status %+v", st.LoadTest)
	}
}
