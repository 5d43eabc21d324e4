package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// server is an httptest server on 127.0.0.1 that records what it saw.
type server struct {
	*httptest.Server
	mu       sync.Mutex
	arrivals []time.Time
	users    map[string]int
	hosts    map[string]int
	bodies   map[string]int
	inFlight atomic.Int64
	maxIn    atomic.Int64
}

func newServer(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) *server {
	t.Helper()
	s := &server{users: map[string]int{}, hosts: map[string]int{}, bodies: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		for {
			m := s.maxIn.Load()
			if n <= m || s.maxIn.CompareAndSwap(m, n) {
				break
			}
		}
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.arrivals = append(s.arrivals, time.Now())
		s.users[r.Header.Get("X-User-ID")]++
		s.hosts[r.Host]++
		s.bodies[r.Method+" "+string(b)]++
		s.mu.Unlock()
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// The schedule keeps its rate: 200 req/s for a bounded 1.5 s run sends
// 300 ± 3 % requests, spread evenly (each half of the run gets its share
// within 10 %), all answered but the few still in flight at the end, and
// the run ends by its duration.
func TestRateAccuracy(t *testing.T) {
	s := newServer(t, nil)
	res, err := Run(context.Background(), Config{URL: s.URL + "/x", Rate: 200, Concurrency: 20, MaxRequests: 10000, Duration: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Why != "duration" || !res.Done {
		t.Fatalf("ended %q, done %v; want duration", res.Why, res.Done)
	}
	if res.Sent < 291 || res.Sent > 309 || res.Dropped != 0 || res.Due != res.Sent {
		t.Fatalf("sent %d dropped %d due %d; want 300 ± 3 %%, none dropped", res.Sent, res.Dropped, res.Due)
	}
	// Requests still in flight when the run's time is up are cancelled:
	// on a loaded machine the last few may be.
	if c := res.Total.Classes; c["2xx"]+c[ClassCancelled] != res.Sent || c[ClassCancelled] > 5 || res.Total.Requests != res.Sent {
		t.Fatalf("counts %+v for %d sent", res.Total, res.Sent)
	}
	if res.Elapsed < 1400*time.Millisecond || res.Elapsed > 2500*time.Millisecond {
		t.Fatalf("elapsed %v for a 1.5 s run", res.Elapsed)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mid := res.Started.Add(750 * time.Millisecond)
	first := 0
	for _, a := range s.arrivals {
		if a.Before(mid) {
			first++
		}
	}
	if second := len(s.arrivals) - first; first < 135 || first > 165 || second < 135 || second > 165 {
		t.Fatalf("arrivals per half %d / %d; want 150 ± 10 %% each", first, second)
	}
}

// MaxRequests bounds a run however high the rate.
func TestMaxRequestsBound(t *testing.T) {
	s := newServer(t, nil)
	res, err := Run(context.Background(), Config{URL: s.URL, Rate: 1000, Concurrency: 10, MaxRequests: 50, Duration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// All 50 are due; on a loaded machine one may meet the concurrency cap
	// and be dropped rather than sent.
	if res.Due != 50 || res.Sent+res.Dropped != 50 || res.Sent < 40 || res.Why != "max requests" || res.Elapsed > 2*time.Second {
		t.Fatalf("due %d, sent %d, dropped %d, ended %q after %v; want 50 due by max requests well within 2 s", res.Due, res.Sent, res.Dropped, res.Why, res.Elapsed)
	}
}

// Cancelling the context ends the run at once, requests in flight
// included (counted as cancelled, not as errors), and Stop does the same.
func TestCancellation(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithCancel(context.Background())
	g, err := Start(ctx, Config{URL: s.URL, Rate: 100, Concurrency: 500, MaxRequests: 5000, Duration: 30 * time.Second, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	cancel()
	due := int(t0.Sub(g.Snapshot().Started).Seconds()*100) + 1 // the schedule's count at the cancel (sleep may oversleep)
	select {
	case <-g.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("run still going 5 s after cancel")
	}
	res := g.Wait()
	if took := time.Since(t0); took > time.Second {
		t.Errorf("took %v to end after cancel", took)
	}
	if res.Why != "stopped" || int(res.Sent) < due-10 || int(res.Sent) > due+1 {
		t.Fatalf("ended %q with %d sent; want stopped after the %d due by then (−10)", res.Why, res.Sent, due)
	}
	if res.Total.Classes[ClassCancelled] != res.Sent || res.Total.Classes[ClassError] != 0 {
		t.Fatalf("classes %v; every request in flight should count as cancelled", res.Total.Classes)
	}

	g, err = Start(context.Background(), Config{URL: s.URL, Rate: 100, Concurrency: 500, MaxRequests: 5000, Duration: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if res := g.Stop(); res.Why != "stopped" || !res.Done || res.Sent == 0 {
		t.Fatalf("Stop: %+v", res)
	}
	if res := g.Stop(); !res.Done { // a second Stop is harmless
		t.Fatalf("second Stop: %+v", res)
	}
}

// The concurrency cap holds at the server, and arrivals beyond it are
// dropped (open loop), not queued: the schedule's count stays exact.
func TestBoundedConcurrency(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(200 * time.Millisecond):
		case <-r.Context().Done():
		}
	})
	res, err := Run(context.Background(), Config{URL: s.URL, Rate: 200, Concurrency: 5, MaxRequests: 10000, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if m := s.maxIn.Load(); m > 5 || m < 3 {
		t.Fatalf("%d requests in flight at the server; want at most the cap of 5 (and the cap reached)", m)
	}
	// 200 due in the second; 5 slots of 200 ms serve about 25.
	if res.Due < 190 || res.Sent+res.Dropped != res.Due || res.Sent > 40 || res.Dropped < 150 {
		t.Fatalf("due %d sent %d dropped %d; want ~200 due, ~25 sent, the rest dropped", res.Due, res.Sent, res.Dropped)
	}
}

// Users go round-robin in the user header; method, body, headers and Host
// are sent as configured; answers are counted per build from the response
// header and per status class.
func TestUsersBuildsAndClasses(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		u := r.Header.Get("X-User-ID")
		build := "1"
		if strings.HasSuffix(u, "7") {
			build = "2"
		}
		w.Header().Set("X-Canary-Build", build)
		if r.Header.Get("X-Test") != "yes" || r.UserAgent() != "canaryd-loadgen" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if build == "2" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	res, err := Run(context.Background(), Config{URL: s.URL + "/api", Method: http.MethodPost, Body: []byte(`{"a":1}`),
		Header: http.Header{"X-Test": {"yes"}}, Host: "api.example.com", Rate: 500, Users: 10, UserPrefix: "u",
		Concurrency: 10, MaxRequests: 100, Duration: 5 * time.Second, BuildHeader: "X-Canary-Build"})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.users) != 10 || s.users["u0"] != 10 || s.users["u9"] != 10 {
		t.Errorf("users seen %v; want u0..u9 ten times each", s.users)
	}
	if s.hosts["api.example.com"] != 100 || s.bodies[`POST {"a":1}`] != 100 {
		t.Errorf("hosts %v bodies %v", s.hosts, s.bodies)
	}
	if b := res.Builds["2"]; b.Requests != 10 || b.Classes["5xx"] != 10 {
		t.Errorf("build 2: %+v", b)
	}
	if b := res.Builds["1"]; b.Requests != 90 || b.Classes["2xx"] != 90 || b.Latency.Total != 90 {
		t.Errorf("build 1: %+v", b)
	}
	if res.Total.Requests != 100 || res.Total.Classes["5xx"] != 10 {
		t.Errorf("total %+v", res.Total)
	}
}

// A refused connection is an error, not an answer.
func TestUnreachable(t *testing.T) {
	s := httptest.NewServer(http.NotFoundHandler())
	url := s.URL
	s.Close()
	res, err := Run(context.Background(), Config{URL: url, Rate: 100, Concurrency: 2, MaxRequests: 5, Duration: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total.Classes[ClassError] != 5 {
		t.Fatalf("classes %v; want 5 errors", res.Total.Classes)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Rate: 1, Concurrency: 1, MaxRequests: 1, Duration: time.Second}, "URL is required"},
		{Config{URL: "http://127.0.0.1:1", Concurrency: 1, MaxRequests: 1, Duration: time.Second}, "rate 0"},
		{Config{URL: "http://127.0.0.1:1", Rate: 1, MaxRequests: 1, Duration: time.Second}, "concurrency 0"},
		{Config{URL: "http://127.0.0.1:1", Rate: 1, Concurrency: 1, Duration: time.Second}, "both bounds"},
		{Config{URL: "http://127.0.0.1:1", Rate: 1, Concurrency: 1, MaxRequests: 1}, "both bounds"},
	} {
		if _, err := Start(context.Background(), tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := Start(context.Background(), Config{URL: "http://127.0.0.1:1", Method: "BAD METHOD", Rate: 1, Concurrency: 1, MaxRequests: 1, Duration: time.Second}); err == nil {
		t.Error("a bad method was accepted")
	}
}
