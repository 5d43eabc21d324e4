// Package loadgen is a small open-loop HTTP load generator: requests leave
// on a fixed schedule (Rate per second) whatever the server does, spread
// over synthetic users whose keys go in a header so sticky routing spreads
// them over the cohort, and every run is bounded by a request count and a
// duration. It counts answers per status class and per build (from a
// response header the gateway may add).
//
// Open loop matters for canary analysis: a closed loop (send the next
// request when the last one returns) slows down exactly when a build is
// slow, so a slow build gets fewer requests and looks better than it is.
// Here a request that cannot start because Concurrency requests are already
// in flight is dropped and counted, never queued, so the schedule and the
// counts stay honest.
//
// The release controller runs one Generator per release step (a load-test
// gate); the package has no dependency on the controller so a command-line
// A/B load tester can use it too.
package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/canaryd/canaryd/internal/latency"
)

// Config describes one bounded run.
type Config struct {
	// URL is the absolute URL of every request.
	URL string
	// Method defaults to GET.
	Method string
	// Header is sent with every request (cloned per request).
	Header http.Header
	// Host, when set, replaces the Host header (the URL may name an
	// address while the gateway routes by host name).
	Host string
	// Body is sent with every request.
	Body []byte
	// ServerName, when set, is the name an https URL's certificate is
	// verified against (the URL may name an address; Host does not change
	// what TLS verifies).
	ServerName string

	// Rate is requests per second; the i-th request is due at i/Rate
	// seconds after the start.
	Rate float64
	// Users is the number of synthetic users; request i is made by user
	// i mod Users. 0 sends no user header.
	Users int
	// UserHeader carries the user's key; default X-User-ID.
	UserHeader string
	// UserPrefix starts every key (keys are UserPrefix + index); default
	// "loadgen-". A new prefix draws new users.
	UserPrefix string

	// Concurrency caps the requests in flight; a due request beyond it is
	// dropped (counted in Result.Dropped).
	Concurrency int
	// MaxRequests and Duration bound the run: it ends when either is
	// reached (or ctx ends), whichever first. Both are required.
	MaxRequests int
	Duration    time.Duration
	// Timeout bounds one request; default 10 s.
	Timeout time.Duration

	// BuildHeader names the response header that tells which build
	// answered (canaryd's build_header with expose_build); "" counts
	// everything under the build "".
	BuildHeader string
	// Client sends the requests; nil means a client of its own whose
	// connection pool fits Concurrency, closed at the end of the run.
	Client *http.Client
}

// Validate reports what makes c unusable.
func (c *Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("loadgen: URL is required"))
	}
	if !(c.Rate > 0) || math.IsInf(c.Rate, 0) {
		errs = append(errs, fmt.Errorf("loadgen: rate %v must be a positive number of requests per second", c.Rate))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("loadgen: concurrency %d must be at least 1", c.Concurrency))
	}
	if c.MaxRequests < 1 || c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("loadgen: a run needs both bounds: max requests %d and duration %v must be positive", c.MaxRequests, c.Duration))
	}
	if c.Users < 0 {
		errs = append(errs, fmt.Errorf("loadgen: users %d must not be negative", c.Users))
	}
	return errors.Join(errs...)
}

// Counts are the finished requests of one build (or of all).
type Counts struct {
	Requests uint64 `json:"requests"`
	// Classes counts answers by status class ("2xx" … "5xx") and requests
	// that got no answer (ClassError, ClassCancelled).
	Classes map[string]uint64 `json:"classes"`
	// Latency holds the time to the response headers of answered
	// requests (not persisted: it is 5 kB).
	Latency latency.Histogram `json:"-"`
}

func (c *Counts) add(class string, d time.Duration) {
	c.Requests++
	if c.Classes == nil {
		c.Classes = map[string]uint64{}
	}
	c.Classes[class]++
	if class != ClassError && class != ClassCancelled {
		c.Latency.Record(d)
	}
}

func (c Counts) clone() Counts {
	c.Classes = maps.Clone(c.Classes)
	return c
}

// Classes of requests that got no HTTP answer: ClassError when the
// connection failed or the request's own Timeout passed, ClassCancelled
// when the run ended under it (Stop, ctx, Duration).
const (
	ClassError     = "error"
	ClassCancelled = "cancelled"
)

// Result is a run's account so far (Snapshot) or in full (Wait, Stop).
type Result struct {
	Started time.Time     `json:"started"`
	Elapsed time.Duration `json:"elapsed"`
	// Due is the number of requests the schedule reached, Sent those
	// started and Dropped those skipped at the concurrency cap (Due =
	// Sent + Dropped).
	Due     uint64 `json:"due"`
	Sent    uint64 `json:"sent"`
	Dropped uint64 `json:"dropped"`
	// Total are the finished requests; Builds split them by the value of
	// BuildHeader.
	Total  Counts            `json:"total"`
	Builds map[string]Counts `json:"builds,omitempty"`
	// Done is true once the run has ended; Why says why ("max requests",
	// "duration" or "stopped").
	Done bool   `json:"done"`
	Why  string `json:"why,omitempty"`
}

// Generator is one run in progress. Its methods are safe for concurrent use.
type Generator struct {
	cfg    Config
	cancel context.CancelCauseFunc
	done   chan struct{}

	mu  sync.Mutex
	res Result
}

// Why a run ended, as context causes.
var (
	errStopped  = errors.New("stopped")
	errDuration = errors.New("duration")
)

// Start validates cfg and starts the run in the background; it ends when
// a bound is reached, when ctx ends or on Stop.
func Start(ctx context.Context, cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Method == "" {
		cfg.Method = http.MethodGet
	}
	if cfg.UserHeader == "" {
		cfg.UserHeader = "X-User-ID"
	}
	if cfg.UserPrefix == "" {
		cfg.UserPrefix = "loadgen-"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	// Fail fast on a URL or method the client would refuse every time.
	if _, err := http.NewRequest(cfg.Method, cfg.URL, nil); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	g := &Generator{cfg: cfg, cancel: cancel, done: make(chan struct{})}
	g.res.Started = time.Now()
	go g.run(ctx)
	return g, nil
}

// Run is Start followed by Wait.
func Run(ctx context.Context, cfg Config) (Result, error) {
	g, err := Start(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	return g.Wait(), nil
}

// Done is closed when the run has ended and every request has finished.
func (g *Generator) Done() <-chan struct{} { return g.done }

// Wait waits for the end of the run and returns its result.
func (g *Generator) Wait() Result {
	<-g.done
	return g.Snapshot()
}

// Stop ends the run (requests in flight are cancelled) and returns its
// result once every request has finished.
func (g *Generator) Stop() Result {
	g.cancel(errStopped)
	return g.Wait()
}

// Snapshot returns the counts so far.
func (g *Generator) Snapshot() Result {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.res
	if !r.Done {
		r.Elapsed = time.Since(r.Started)
	}
	r.Total = r.Total.clone()
	r.Builds = make(map[string]Counts, len(g.res.Builds))
	for k, v := range g.res.Builds {
		r.Builds[k] = v.clone()
	}
	return r
}

// run keeps the schedule. The whole run, requests in flight included,
// lives under a deadline of Duration, so it is bounded in time however
// the server behaves.
func (g *Generator) run(parent context.Context) {
	defer close(g.done)
	defer g.cancel(errStopped)
	start := g.res.Started
	ctx, cancel := context.WithDeadlineCause(parent, start.Add(g.cfg.Duration), errDuration)
	defer cancel()
	client := g.cfg.Client
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = g.cfg.Concurrency
		tr.MaxConnsPerHost = g.cfg.Concurrency
		if g.cfg.ServerName != "" {
			tr.TLSClientConfig = &tls.Config{ServerName: g.cfg.ServerName, MinVersion: tls.VersionTLS12}
		}
		client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		defer tr.CloseIdleConnections()
	}
	sem := make(chan struct{}, g.cfg.Concurrency)
	var wg sync.WaitGroup
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	why := "max requests"
	end := start.Add(g.cfg.Duration)
	for i := 0; i < g.cfg.MaxRequests; i++ {
		due := start.Add(time.Duration(float64(i) / g.cfg.Rate * float64(time.Second)))
		if !due.Before(end) { // due when the run ends: not part of it
			why = errDuration.Error()
			break
		}
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			why = errStopped.Error()
			if context.Cause(ctx) == errDuration {
				why = errDuration.Error()
			}
			break
		}
		select {
		case sem <- struct{}{}:
			g.count(func(r *Result) { r.Due++; r.Sent++ })
			wg.Go(func() {
				defer func() { <-sem }()
				g.send(ctx, client, i)
			})
		default:
			g.count(func(r *Result) { r.Due++; r.Dropped++ })
		}
	}
	wg.Wait()
	g.count(func(r *Result) { r.Done, r.Elapsed, r.Why = true, time.Since(r.Started), why })
}

func (g *Generator) count(f func(*Result)) {
	g.mu.Lock()
	f(&g.res)
	g.mu.Unlock()
}

// send makes request i and counts its answer.
func (g *Generator) send(ctx context.Context, client *http.Client, i int) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	var body io.Reader
	if g.cfg.Body != nil {
		body = bytes.NewReader(g.cfg.Body)
	}
	req, err := http.NewRequestWithContext(ctx, g.cfg.Method, g.cfg.URL, body)
	if err != nil {
		g.finish("", ClassError, 0)
		return
	}
	req.Header = g.cfg.Header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "canaryd-loadgen")
	}
	if g.cfg.Users > 0 {
		req.Header.Set(g.cfg.UserHeader, g.cfg.UserPrefix+strconv.Itoa(i%g.cfg.Users))
	}
	if g.cfg.Host != "" {
		req.Host = g.cfg.Host
	}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		class := ClassError
		if ctx.Err() != nil && context.Cause(ctx) != context.DeadlineExceeded {
			class = ClassCancelled // the run ended (Stop, ctx, Duration), not the request's own timeout
		}
		g.finish("", class, 0)
		return
	}
	d := time.Since(t0)
	// Drain (bounded) so the connection is reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	build := ""
	if g.cfg.BuildHeader != "" {
		build = resp.Header.Get(g.cfg.BuildHeader)
	}
	g.finish(build, statusClass(resp.StatusCode), d)
}

func (g *Generator) finish(build, class string, d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.res.Total.add(class, d)
	if g.res.Builds == nil {
		g.res.Builds = map[string]Counts{}
	}
	c := g.res.Builds[build]
	c.add(class, d)
	g.res.Builds[build] = c
}

func statusClass(code int) string {
	if code < 100 || code > 599 {
		return ClassError
	}
	return strconv.Itoa(code/100) + "xx"
}
