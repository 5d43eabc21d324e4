package server

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/control"
	"github.com/canaryd/canaryd/internal/route"
	"github.com/canaryd/canaryd/internal/store"
	"github.com/canaryd/canaryd/internal/store/sqlite"
)

// backend answers with its name and the build header it received.
func backend(t testing.TB, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s build=%s path=%s", name, r.Header.Get("X-Canary-Build"), r.URL.Path)
	}))
	t.Cleanup(s.Close)
	return s
}

func addr(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

// start runs a gateway from YAML (with %s placeholders filled by args) on
// free ports over a fresh SQLite store and returns its data plane URL.
func start(t testing.TB, yaml string, args ...any) (*Server, string) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return startOn(t, st, fmt.Sprintf(yaml, args...))
}

// startOn runs a gateway from src over st, which it closes at the end of
// the test (a replica of several when st is a shared PostgreSQL).
func startOn(t testing.TB, st store.Store, src string) (*Server, string) {
	t.Helper()
	cfg, err := config.Parse([]byte(src), "test.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, src)
	}
	srv, err := New(context.Background(), cfg, Options{Plane: control.New(st, control.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		st.Close()
	})
	return srv, "http://" + srv.DataAddr()
}

func get(t *testing.T, c *http.Client, url string, headers ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

const twoBuilds = `
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
services:
  - name: api
    routing: %s
    builds:
      - {id: "41", state: stable, endpoints: [%s]}
      - {id: "42", state: canary, traffic: %d, endpoints: [%s]}
    release: {controller: false}
`

// Through real sockets: at 10 % about a tenth of 4 000 users land on the
// canary (sd 0.47 pp; ±2 pp is over four sigmas), each user always on the
// same build, and the build id reaches the upstream.
func TestStickySplitEndToEnd(t *testing.T) {
	stable, canary := backend(t, "stable"), backend(t, "canary")
	_, url := start(t, twoBuilds, "sticky", addr(stable), 10, addr(canary))
	c := &http.Client{Timeout: 5 * time.Second}
	const users = 4000
	onCanary := 0
	first := map[int]string{}
	for u := 0; u < users; u++ {
		code, body, _ := get(t, c, url+"/x", "X-User-ID", fmt.Sprint("user-", u))
		if code != 200 {
			t.Fatalf("status %d: %s", code, body)
		}
		if strings.HasPrefix(body, "canary build=42") {
			onCanary++
		} else if !strings.HasPrefix(body, "stable build=41") {
			t.Fatalf("unexpected body %q", body)
		}
		first[u] = body
	}
	if share := 100 * float64(onCanary) / users; math.Abs(share-10) > 2 {
		t.Fatalf("canary share %.2f%%, want 10 ± 2", share)
	}
	for u := 0; u < users; u += 37 {
		if _, body, _ := get(t, c, url+"/x", "X-User-ID", fmt.Sprint("user-", u)); body != first[u] {
			t.Fatalf("user-%d moved: %q then %q", u, first[u], body)
		}
	}
}

func TestAnonymousUsersGetStickyCookie(t *testing.T) {
	stable, canary := backend(t, "stable"), backend(t, "canary")
	_, url := start(t, twoBuilds, "sticky", addr(stable), 50, addr(canary))
	c := &http.Client{Timeout: 5 * time.Second}
	_, body, h := get(t, c, url+"/")
	cookie := h.Get("Set-Cookie")
	if !strings.Contains(cookie, "canaryd_uid=") || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Lax") {
		t.Fatalf("Set-Cookie = %q", cookie)
	}
	value := strings.TrimPrefix(strings.Split(cookie, ";")[0], "canaryd_uid=")
	for i := 0; i < 20; i++ {
		_, again, h2 := get(t, c, url+"/", "Cookie", "canaryd_uid="+value)
		if again != body {
			t.Fatalf("anonymous user moved: %q then %q", body, again)
		}
		if h2.Get("Set-Cookie") != "" {
			t.Fatal("a user with the cookie must not get a new one")
		}
	}
}

func TestErrorsSayWhy(t *testing.T) {
	stable := backend(t, "stable")
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	_, url := start(t, `
listen: 127.0.0.1:0
services:
  - name: api
    match: {path_prefix: /api}
    builds: [{id: "1", state: stable, endpoints: [%s]}]
  - name: down
    match: {path_prefix: /down}
    builds: [{id: "7", state: stable, endpoints: [%s]}]
  - name: empty
    match: {path_prefix: /empty}
    builds: [{id: "9", version: 1.0.0}]
`, addr(stable), deadAddr)
	c := &http.Client{Timeout: 5 * time.Second}
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/nothing", 404, `"error":"no service matches this request"`},
		{"/apix", 404, "no service matches"},
		{"/api/v1", 200, "stable build=1 path=/api/v1"},
		{"/down", 502, `"service":"down","build":"7"`},
		{"/empty", 503, `"error":"the service has no stable build yet","service":"empty"`},
	} {
		code, body, _ := get(t, c, url+tc.path)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s = %d %q, want %d containing %q", tc.path, code, body, tc.code, tc.want)
		}
	}
}

// The safety net: a GET that fails on the canary is answered by stable,
// and the failure still counts against the canary.
func TestCanaryFailureFallsBackToStable(t *testing.T) {
	stable := backend(t, "stable")
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer broken.Close()
	srv, url := start(t, twoBuilds, "sticky", addr(stable), 100, addr(broken))
	c := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < 10; i++ {
		code, body, _ := get(t, c, url+"/", "X-User-ID", fmt.Sprint("u", i))
		if code != 200 || !strings.HasPrefix(body, "stable") {
			t.Fatalf("GET = %d %q, want stable's answer", code, body)
		}
	}
	req, _ := http.NewRequest("POST", url+"/", strings.NewReader("x"))
	req.Header.Set("X-User-ID", "poster")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Fatalf("POST is not idempotent and must not be retried: got %d", resp.StatusCode)
	}
	// The proxy records a response when it closes the body, just after the
	// client may have read it: wait a moment for the last one.
	var errs uint64
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		tot := srv.Metrics().Lookup("api", "42").Totals()
		if errs = tot.Errors(); errs == 11 {
			break
		}
	}
	if errs != 11 {
		t.Fatalf("canary errors counted = %d, want 11", errs)
	}
}

// Routing swapped 1 000 times (each a traffic change through the control
// plane, the store's change feed and a new Table) drops no request.
func TestTrafficChangesUnderLoad(t *testing.T) {
	stable, canary := backend(t, "stable"), backend(t, "canary")
	src := fmt.Sprintf(twoBuilds, "weighted", addr(stable), 10, addr(canary))
	srv, url := start(t, "%s", src)
	stop := make(chan struct{})
	var failed atomic.Int64
	var firstErr atomic.Value
	wg := hammer(url, 1, 20000, 0, stop, func(status int, _ string, err error) {
		if err == nil && status != 200 {
			err = fmt.Errorf("status %d", status)
		}
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err)
		}
	})
	// 1 000 swaps: most built straight from states, every tenth through the
	// real path (an operation, the store's change feed, a rebuild).
	states, _ := srv.Plane().Snapshot(context.Background(), srv.cfg)
	for i := 0; i < 1000; i++ {
		if i%10 == 0 {
			if _, err := srv.Plane().SetTraffic(context.Background(), "test", "api", float64(i%101), ""); err != nil {
				t.Fatal(err)
			}
			continue
		}
		st := states["api"]
		st.Traffic = float64(i % 101)
		tbl, err := srv.builder.Build(srv.cfg, map[string]route.State{"api": st})
		if err != nil {
			t.Fatal(err)
		}
		srv.Routes().Publish(tbl)
	}
	if _, err := srv.Plane().SetTraffic(context.Background(), "test", "api", 99, ""); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d requests failed while routing was swapped; first: %v", n, firstErr.Load())
	}
	waitFor(t, func() bool { return srv.Routes().Load().Service("api").Rules.Percent == 99 })
}

// A reload with a bad routing state keeps the running Table; a good one
// applies the config's new endpoints.
func TestReloadAppliesConfig(t *testing.T) {
	stable, other := backend(t, "stable"), backend(t, "other")
	src := "listen: 127.0.0.1:0\nservices: [{name: api, builds: [{id: \"1\", state: stable, endpoints: [%s]}]}]\n"
	srv, url := start(t, src, addr(stable))
	c := &http.Client{Timeout: 5 * time.Second}
	if _, body, _ := get(t, c, url+"/"); !strings.HasPrefix(body, "stable") {
		t.Fatalf("before reload: %q", body)
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf(src, addr(other))), "x", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Reload(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if _, body, _ := get(t, c, url+"/"); !strings.HasPrefix(body, "other") {
		t.Fatalf("after reload: %q", body)
	}
	moved := *cfg
	moved.Listen = "127.0.0.1:1"
	if err := srv.Reload(context.Background(), &moved); err == nil {
		t.Fatal("a reload that moves the listener must be refused")
	}
}

// hammer sends GET url/ from 4 goroutines, each request as one of users
// (X-User-ID), at most max requests in all, pausing between requests, until
// stop closes. seen gets every outcome, from several goroutines at once.
// Wait on the returned group after closing stop.
func hammer(url string, users, max int, pause time.Duration, stop <-chan struct{}, seen func(status int, body string, err error)) *sync.WaitGroup {
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for i := 0; i < max/4; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", url+"/", nil)
				req.Header.Set("X-User-ID", fmt.Sprint("user-", (i*4+g)%users))
				resp, err := c.Do(req)
				if err != nil {
					seen(0, "", err)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				seen(resp.StatusCode, string(body), nil)
				time.Sleep(pause)
			}
		}(g)
	}
	return &wg
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not reached within 5 s")
}
