package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/balance"
)

// backend is a real HTTP server on 127.0.0.1 whose health answer can be
// changed, and which can go down and come back on the same address.
type backend struct {
	t      *testing.T
	addr   string
	status atomic.Int32 // answer of /health
	delay  atomic.Int64 // nanoseconds to wait before answering
	hits   atomic.Int64 // requests to /health
	hosts  chan string  // Host headers of probes, if not full
	srv    *httptest.Server
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{t: t, hosts: make(chan string, 64)}
	b.status.Store(http.StatusOK)
	b.start("127.0.0.1:0")
	t.Cleanup(b.stop)
	return b
}

func (b *backend) start(addr string) {
	b.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		b.t.Fatalf("listen %s: %v", addr, err)
	}
	b.addr = ln.Addr().String()
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			b.hits.Add(1)
			select {
			case b.hosts <- r.Host:
			default:
			}
			if d := time.Duration(b.delay.Load()); d > 0 {
				select {
				case <-time.After(d):
				case <-r.Context().Done():
				}
			}
			code := int(b.status.Load())
			if code >= 300 && code < 400 {
				// A redirect that would fail if followed.
				w.Header().Set("Location", "http://127.0.0.1:1/nowhere")
			}
			w.WriteHeader(code)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	b.srv.Listener.Close()
	b.srv.Listener = ln
	b.srv.Start()
}

// stop takes the backend down: connections are refused until start.
func (b *backend) stop() {
	if b.srv != nil {
		b.srv.Close()
		b.srv = nil
	}
}

func (b *backend) restart() {
	b.t.Helper()
	b.start(b.addr)
}

// eventually polls cond every 5 ms for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func discard() *Checker { return NewChecker(Options{}) }

// Thresholds are counted probe by probe, driven directly (no timers).
func TestThresholds(t *testing.T) {
	b := newBackend(t)
	pool := balance.NewPool(balance.PoolOptions{})
	ep := pool.Get(b.addr, 1)
	c := discard()
	cfg := Active{Path: "/health", Timeout: time.Second, HealthyThreshold: 2, UnhealthyThreshold: 3}.WithDefaults()
	p := newProber(Target{Endpoint: ep}, cfg)
	steps := []struct {
		status  int
		healthy bool
	}{
		{500, true}, {503, true}, // 2 failures < 3
		{200, true},                            // a pass resets the failure count
		{500, true}, {500, true}, {500, false}, // 3 in a row
		{200, false},              // 1 pass < 2
		{500, false},              // resets the passes
		{204, false}, {302, true}, // 2 in a row, 3xx counts
		{404, true}, {404, true}, {404, false},
	}
	for i, st := range steps {
		b.status.Store(int32(st.status))
		p.probeOnce(context.Background(), c.client, c.log)
		if got := ep.Healthy(); got != st.healthy {
			t.Fatalf("probe %d (status %d): healthy = %v, want %v; %+v", i, st.status, got, st.healthy, p.status())
		}
	}
	if s := p.status(); s.Fails != 3 || !strings.Contains(s.LastError, "status 404") || s.LastProbe.IsZero() {
		t.Fatalf("status = %+v", s)
	}
}

// Probe results by kind of answer: status classes, no redirect following,
// timeouts, refused connections, and the Host header.
func TestProbe(t *testing.T) {
	b := newBackend(t)
	down := newBackend(t)
	down.stop()
	c := NewChecker(Options{})
	tests := []struct {
		name   string
		addr   string
		status int
		delay  time.Duration
		host   string
		want   string // error substring; "" = pass
	}{
		{"200", b.addr, 200, 0, "", ""},
		{"redirect is an answer", b.addr, 301, 0, "", ""},
		{"404", b.addr, 404, 0, "", "status 404"},
		{"500", b.addr, 500, 0, "", "status 500"},
		{"slow", b.addr, 200, 500 * time.Millisecond, "", "deadline exceeded"},
		{"refused", down.addr, 200, 0, "", "connection refused"},
		{"host header", b.addr, 200, 0, "api.internal", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b.status.Store(int32(tt.status))
			b.delay.Store(int64(tt.delay))
			cfg := Active{Path: "/health", Host: tt.host, Timeout: 100 * time.Millisecond}.WithDefaults()
			ep := balance.NewPool(balance.PoolOptions{}).Get(tt.addr, 1)
			p := newProber(Target{Endpoint: ep}, cfg)
			for len(b.hosts) > 0 {
				<-b.hosts
			}
			err := p.probe(context.Background(), c.client)
			if got := errString(err); (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Fatalf("probe error = %q, want %q", got, tt.want)
			}
			if tt.host != "" {
				if h := <-b.hosts; h != tt.host {
					t.Fatalf("Host header %q, want %q", h, tt.host)
				}
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// run starts c.Run and returns a stop function that ends it and checks its
// result.
func run(t *testing.T, c *Checker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

var fast = Active{Path: "/health", Interval: 30 * time.Millisecond, Timeout: 30 * time.Millisecond,
	HealthyThreshold: 2, UnhealthyThreshold: 2}

// A backend that goes down and comes back on the same address: passive
// ejection takes it out at once on the proxy's failures, the active check
// marks it unhealthy, and when it is back the check marks it healthy and,
// once the cooldown (fake clock) ends, it serves again.
func TestBackendDownAndBack(t *testing.T) {
	a, b := newBackend(t), newBackend(t)
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	pool := balance.NewPool(balance.PoolOptions{Now: clk.Now, Passive: balance.Passive{MaxFails: 2, FailTimeout: 10 * time.Second}})
	epA, epB := pool.Get(a.addr, 1), pool.Get(b.addr, 1)
	set, err := balance.NewSet(balance.RoundRobin, []*balance.Endpoint{epA, epB})
	if err != nil {
		t.Fatal(err)
	}
	// Slower than the proxy's failures, so passive ejection acts first.
	check := Active{Path: "/health", Interval: 50 * time.Millisecond, Timeout: 50 * time.Millisecond,
		HealthyThreshold: 2, UnhealthyThreshold: 3}
	c := NewChecker(Options{})
	if err := c.SetTargets([]Target{{Endpoint: epA, Check: check}, {Endpoint: epB, Check: check}}); err != nil {
		t.Fatal(err)
	}
	run(t, c)

	client := &http.Client{Timeout: time.Second}
	// request is the proxy's loop in miniature: pick, send, report, and
	// retry once on another endpoint after a failure.
	request := func() (*balance.Endpoint, error) {
		var last *balance.Endpoint
		var err error
		for range 2 {
			ep, _ := set.Pick(last)
			if ep == nil {
				break
			}
			ep.Begin()
			resp, e := client.Get("http://" + ep.Addr() + "/")
			if e == nil {
				resp.Body.Close()
			}
			ep.End(e == nil)
			if e == nil {
				return ep, nil
			}
			last, err = ep, e
		}
		return nil, err
	}
	served := func(n int) map[*balance.Endpoint]int {
		m := map[*balance.Endpoint]int{}
		for range n {
			ep, err := request()
			if err != nil {
				t.Fatalf("request failed although one backend is up: %v", err)
			}
			m[ep]++
		}
		return m
	}

	if m := served(20); m[epA] != 10 || m[epB] != 10 {
		t.Fatalf("both up: served %d/%d, want 10/10", m[epA], m[epB])
	}

	a.stop()
	if m := served(20); m[epA] != 0 {
		t.Fatalf("A down: A served %d", m[epA])
	}
	if !epA.Ejected() {
		t.Fatalf("A not ejected after failures: %+v", epA.Stats())
	}
	eventually(t, "the active check marks A unhealthy", func() bool { return !epA.Healthy() })
	if st := set.Status(); st.Available != 1 || st.Unhealthy != 1 || st.Ejected != 1 {
		t.Fatalf("A down: Status = %+v", st)
	}

	a.restart()
	eventually(t, "the active check marks A healthy", epA.Healthy)
	if !epA.Ejected() {
		t.Fatal("A's ejection should last until its cooldown ends")
	}
	clk.Advance(10 * time.Second)
	if m := served(20); m[epA] != 10 {
		t.Fatalf("A back: served %d, want 10", m[epA])
	}
	if st := epA.Stats(); st.Probation || st.Ejections != 1 {
		t.Fatalf("A back: %+v, want probation ended by success", st)
	}
}

// All endpoints of a build down: Pick still returns one, as fallback, and
// Status reports none available so the proxy can answer 503 if it fails.
func TestAllDown(t *testing.T) {
	a, b := newBackend(t), newBackend(t)
	a.stop()
	b.status.Store(http.StatusServiceUnavailable)
	pool := balance.NewPool(balance.PoolOptions{})
	eps := []*balance.Endpoint{pool.Get(a.addr, 1), pool.Get(b.addr, 1)}
	set, err := balance.NewSet(balance.P2C, eps)
	if err != nil {
		t.Fatal(err)
	}
	c := NewChecker(Options{})
	if err := c.SetTargets([]Target{{Endpoint: eps[0], Check: fast}, {Endpoint: eps[1], Check: fast}}); err != nil {
		t.Fatal(err)
	}
	run(t, c)
	eventually(t, "both unhealthy", func() bool { return set.Status().Available == 0 })
	for range 100 {
		if ep, fallback := set.Pick(nil); ep == nil || !fallback {
			t.Fatalf("Pick = %v, fallback %v; want an endpoint as fallback", ep, fallback)
		}
	}
	if got := set.Status().String(); got != "0 of 2 endpoints available (2 failing health checks, 0 ejected after failures)" {
		t.Fatalf("Status = %q", got)
	}
	for _, s := range c.Status() {
		if s.Healthy || s.LastError == "" || s.Fails < 2 {
			t.Fatalf("probe status %+v", s)
		}
	}
}

func TestSetTargetsAtRunTime(t *testing.T) {
	a, b := newBackend(t), newBackend(t)
	pool := balance.NewPool(balance.PoolOptions{})
	epA, epB := pool.Get(a.addr, 1), pool.Get(b.addr, 1)
	c := NewChecker(Options{})
	if err := c.SetTargets([]Target{{Endpoint: epA, Check: fast}}); err != nil {
		t.Fatal(err)
	}
	run(t, c)
	eventually(t, "A probed", func() bool { return a.hits.Load() >= 3 })
	c.mu.Lock()
	pA := c.probers[epA]
	c.mu.Unlock()

	// Adding B leaves A's prober running untouched; a duplicate is ignored.
	if err := c.SetTargets([]Target{{Endpoint: epA, Check: fast}, {Endpoint: epB, Check: fast}, {Endpoint: epB, Check: fast}}); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	same := c.probers[epA] == pA
	c.mu.Unlock()
	if !same {
		t.Fatal("SetTargets restarted the prober of an unchanged endpoint")
	}
	eventually(t, "B probed", func() bool { return b.hits.Load() >= 3 })

	// A bad target changes nothing.
	if err := c.SetTargets([]Target{{Endpoint: epA, Check: Active{Path: "x"}}}); err == nil ||
		!strings.Contains(err.Error(), `health target 0 (`+a.addr+`): path "x": must start with /`) {
		t.Fatalf("SetTargets(bad path) = %v", err)
	}

	// A changed check replaces the prober but keeps the verdict.
	a.status.Store(500)
	eventually(t, "A unhealthy", func() bool { return !epA.Healthy() })
	slow := fast
	slow.HealthyThreshold = 1000
	if err := c.SetTargets([]Target{{Endpoint: epA, Check: slow}, {Endpoint: epB, Check: fast}}); err != nil {
		t.Fatal(err)
	}
	a.status.Store(200)
	pA.mu.Lock()
	stopped := pA.stopped
	pA.mu.Unlock()
	if !stopped || epA.Healthy() {
		t.Fatal("changed check: old prober not stopped, or verdict lost")
	}

	// Removing B stops its probes and clears its verdict.
	b.status.Store(500)
	eventually(t, "B unhealthy", func() bool { return !epB.Healthy() })
	if err := c.SetTargets([]Target{{Endpoint: epA, Check: slow}}); err != nil {
		t.Fatal(err)
	}
	if !epB.Healthy() {
		t.Fatal("removed endpoint still marked unhealthy")
	}
	time.Sleep(3 * fast.Interval) // a probe in flight may still land
	n := b.hits.Load()
	time.Sleep(5 * fast.Interval)
	if got := b.hits.Load(); got != n {
		t.Fatalf("removed endpoint probed %d more times", got-n)
	}
	if st := c.Status(); len(st) != 1 || st[0].Endpoint != a.addr {
		t.Fatalf("Status = %+v, want only A", st)
	}
}

func TestRunLifecycle(t *testing.T) {
	b := newBackend(t)
	ep := balance.NewPool(balance.PoolOptions{}).Get(b.addr, 1)
	c := NewChecker(Options{})
	if err := c.SetTargets([]Target{{Endpoint: ep, Check: fast}}); err != nil {
		t.Fatal(err)
	}
	stop := run(t, c)
	eventually(t, "probed", func() bool { return b.hits.Load() >= 1 })
	if err := c.Run(context.Background()); err == nil {
		t.Fatal("second concurrent Run accepted")
	}
	stop()
	n := b.hits.Load()
	time.Sleep(5 * fast.Interval)
	if b.hits.Load() != n {
		t.Fatal("probes continued after Run returned")
	}
	// Run again: probes start afresh.
	run(t, c)
	eventually(t, "probed again", func() bool { return b.hits.Load() > n })

	// Run ends on an expired context even with probes in flight.
	b.delay.Store(int64(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	c2 := NewChecker(Options{})
	if err := c2.SetTargets([]Target{{Endpoint: ep, Check: fast}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c2.Run(ctx); err != nil || time.Since(start) > time.Second {
		t.Fatalf("Run = %v after %v", err, time.Since(start))
	}
}

// fakeClock is a manual clock for passive ejection.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

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

// The first probes of endpoints added together are spread over the
// interval, not sent in lockstep.
func TestFirstProbeJitter(t *testing.T) {
	const n = 8
	check := Active{Path: "/health", Interval: 300 * time.Millisecond, Timeout: 100 * time.Millisecond}
	var mu sync.Mutex
	var first []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		first = append(first, time.Now())
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	// n endpoints, one server: distinct pools give distinct endpoints for
	// the same address.
	var ts []Target
	for range n {
		ts = append(ts, Target{Endpoint: balance.NewPool(balance.PoolOptions{}).Get(srv.Listener.Addr().String(), 1), Check: check})
	}
	c := NewChecker(Options{})
	if err := c.SetTargets(ts); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stop := run(t, c)
	eventually(t, "every endpoint probed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(first) >= n
	})
	stop()
	mu.Lock()
	defer mu.Unlock()
	lo, hi := first[0], first[0]
	for _, x := range first[:n] {
		if x.Before(lo) {
			lo = x
		}
		if x.After(hi) {
			hi = x
		}
	}
	// 8 uniform draws in [0, 300ms) all fall within 20ms of each other
	// with probability below 1e-7.
	if hi.Sub(lo) < 20*time.Millisecond {
		t.Fatalf("first probes within %v of each other, want them spread", hi.Sub(lo))
	}
	if d := hi.Sub(start); d > check.Interval+200*time.Millisecond {
		t.Fatalf("last first probe after %v, want within the interval", d)
	}
}
