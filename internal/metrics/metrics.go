// Package metrics measures the data plane per service × build: requests by
// status class and connection errors, latency, in-flight requests, bytes,
// distinct users and distinct users who saw an error.
//
// Three consumers read the same counters:
//   - the request path writes them through a *BuildMetrics handle with
//     Begin and End: lock-free atomics, no lookup, no allocation;
//   - the judge and `canaryctl compare` read rolling one-second bins
//     (BuildMetrics.Window, Sum) that Registry.Tick seals from the counters,
//     so analysis works with no Prometheus at all;
//   - Prometheus scrapes Registry.Handler, which converts the same counters
//     at scrape time, so nothing is recorded twice.
//
// Bins are differences of cumulative counters taken at each tick, so
// rotating the window costs the request path nothing.
//
// Wiring: main creates one Registry with New, runs Registry.Run in its
// errgroup and mounts Registry.Handler at /metrics on the admin listener.
// Whoever builds the routing snapshot calls Registry.Build(service, build)
// and SetState for each stable and canary build and stores the returned
// *BuildMetrics in the snapshot; when a build leaves routing for good it
// calls Registry.Forget. The proxy calls Begin when it sends a request to a
// build and End with the Outcome when the response is done.
package metrics

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// DefaultWindow is how much history each build keeps when Options.Window
// is zero.
const DefaultWindow = 5 * time.Minute

// Options configure a Registry. The zero value is valid.
type Options struct {
	// Window is how much history of one-second bins each build keeps;
	// zero means DefaultWindow. Rounded up to whole seconds.
	Window time.Duration
	// Now is the clock Run ticks with and new builds start their first bin
	// at; nil means time.Now. Tests inject a fake one and call Tick.
	Now func() time.Time
	// NoRuntimeMetrics leaves the Go runtime and process collectors out of
	// Handler's output (they are in by default, as go_* and process_*).
	NoRuntimeMetrics bool
}

type key struct{ service, build string }

// Registry owns the BuildMetrics of every service × build of one gateway
// process. Safe for concurrent use. Its methods lock a mutex; none of them
// belongs on the request path, which uses the *BuildMetrics handles.
type Registry struct {
	now  func() time.Time
	bins int

	mu     sync.Mutex
	builds map[key]*BuildMetrics

	prom *prometheus.Registry

	lastTick atomic.Int64 // UnixNano of the last Tick; 0 before the first
}

// New returns an empty registry. Call Run (or Tick, in tests) to fill the
// rolling windows.
func New(opts Options) *Registry {
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Registry{
		now:    opts.Now,
		bins:   int((opts.Window + time.Second - 1) / time.Second),
		builds: make(map[key]*BuildMetrics),
		prom:   prometheus.NewRegistry(),
	}
	r.prom.MustRegister(newCollector(r))
	if !opts.NoRuntimeMetrics {
		r.prom.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return r
}

// Build returns the handle of one build of one service, creating it on
// first use. It returns the same pointer for the same pair until Forget, so
// the proxy calls it when it builds a routing snapshot — once per build per
// snapshot, not per request — and stores the pointer in the snapshot beside
// the build's endpoints; the request path then only dereferences it.
// A snapshot that still holds a handle after Forget may keep recording into
// it harmlessly: those counts are no longer exposed.
func (r *Registry) Build(service, build string) *BuildMetrics {
	k := key{service, build}
	r.mu.Lock()
	defer r.mu.Unlock()
	bm := r.builds[k]
	if bm == nil {
		bm = newBuildMetrics(service, build, r.bins, r.now())
		r.builds[k] = bm
	}
	return bm
}

// Lookup returns the handle of a build, or nil when it has none (never
// created, or forgotten). Unlike Build it never creates one, so readers
// such as the judge cannot resurrect a forgotten build.
func (r *Registry) Lookup(service, build string) *BuildMetrics {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.builds[key{service, build}]
}

// Builds returns the handles of one service's builds, or of every service
// when service is "", ordered by service then build id.
func (r *Registry) Builds(service string) []*BuildMetrics {
	r.mu.Lock()
	out := make([]*BuildMetrics, 0, len(r.builds))
	for k, bm := range r.builds {
		if service == "" || k.service == service {
			out = append(out, bm)
		}
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b *BuildMetrics) int {
		return cmp.Or(cmp.Compare(a.service, b.service), cmp.Compare(a.build, b.build))
	})
	return out
}

// Forget drops a build's counters, window and Prometheus series, for a
// build removed from routing (deleted, or replaced and drained). Forgetting
// an unknown build does nothing. A later Build of the same pair starts from
// zero.
func (r *Registry) Forget(service, build string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.builds, key{service, build})
}

// Tick seals one bin per build, ending at now. Run calls it every second;
// tests call it with a fake clock. Ticks with a now not after a build's
// previous tick are ignored for that build.
func (r *Registry) Tick(now time.Time) {
	for _, bm := range r.Builds("") {
		bm.seal(now)
	}
	r.lastTick.Store(now.UnixNano())
}

// LastTick returns the time of the last Tick (zero before the first): every
// bin ending by then is sealed, for builds that exist and builds that will
// appear later alike (they had no traffic before it).
func (r *Registry) LastTick() time.Time {
	if n := r.lastTick.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Run ticks at every whole second of the clock until ctx ends, then returns
// nil. Aligning ticks to whole seconds lets bins of several replicas line up.
func (r *Registry) Run(ctx context.Context) error {
	for {
		now := r.now()
		t := time.NewTimer(now.Truncate(time.Second).Add(time.Second).Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
			r.Tick(r.now())
		}
	}
}
