// Package route holds the data plane's routing snapshot: which service a
// request belongs to, how its users split between the stable and canary
// builds, and the endpoints of each build. A Table is immutable; a change
// builds a new one and publishes it through a Holder, so the request path
// reads routing without locks and a request finishes on the Table it
// started with.
package route

import (
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/canaryd/canaryd/internal/balance"
	"github.com/canaryd/canaryd/internal/judge"
	"github.com/canaryd/canaryd/internal/metrics"
	"github.com/canaryd/canaryd/internal/route/cohort"
)

// Table is one consistent view of all routing.
type Table struct {
	// Version increases with every published Table.
	Version  uint64
	services []*Service // most specific first: host before no host, longer prefix first
}

// Service is the routing of one service in one Table.
type Service struct {
	Name        string
	Host        string // lower case, no port; "" matches any host
	Prefix      string
	StripPrefix bool

	Rules   cohort.Rules
	Sources []cohort.Source
	// AnonymousCookie is set on users with no key; "" disables it.
	AnonymousCookie string

	Stable *Build // nil while the service has no stable build
	Canary *Build // nil when there is no canary taking traffic

	BuildHeader string // canonical
	ExposeBuild bool

	Attempts       int  // tries of an idempotent request, ≥ 1
	StableFallback bool // the safety net
	// Budget bounds retries across Tables: it is shared by every Table of
	// the same service.
	Budget *RetryBudget
	// TrustedProxies may set forwarding headers.
	TrustedProxies []netip.Prefix
	// Analysis collects what the release controller judges; shared by every
	// Table of the service.
	Analysis *Analysis
}

// Analysis is the data plane's feed to the release controller for one
// service: the per-user first-event tracker of the running release (nil
// when no release is judged). It survives Table rebuilds.
type Analysis struct{ tracker atomic.Pointer[judge.Tracker] }

// SetTracker installs the tracker of a new release, or nil.
func (a *Analysis) SetTracker(t *judge.Tracker) { a.tracker.Store(t) }

// SwapTracker installs t only if the current tracker is old (nil: none)
// and reports whether it did: a replica's publisher installs its own
// tracker without ever replacing the controller's.
func (a *Analysis) SwapTracker(old, t *judge.Tracker) bool { return a.tracker.CompareAndSwap(old, t) }

// Tracker returns the current tracker or nil.
func (a *Analysis) Tracker() *judge.Tracker { return a.tracker.Load() }

// Build is one routable build of a service.
type Build struct {
	ID, Version, State string
	Endpoints          *balance.Set
	Metrics            *metrics.BuildMetrics
	// Judged counts only randomised traffic (no overrides, lists, segment
	// rules or safety-net retries): what the judge may compare.
	Judged *metrics.BuildMetrics
	// HeaderValue is the value sent in the build header ([]string so the
	// proxy can assign it without allocating).
	HeaderValue []string
}

// Services returns the Table's services, most specific match first. The
// caller must not modify the slice.
func (t *Table) Services() []*Service { return t.services }

// Service returns the service called name, or nil.
func (t *Table) Service(name string) *Service {
	for _, s := range t.services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Match returns the service for a request's Host header and path: among the
// services whose host (if set) equals host and whose prefix matches path on
// a segment boundary, the longest prefix wins, and a service naming the host
// beats one that does not. It returns nil when nothing matches.
func (t *Table) Match(host, path string) *Service {
	host = hostOnly(host)
	for _, s := range t.services {
		if s.Host != "" && !strings.EqualFold(s.Host, host) {
			continue
		}
		if prefixMatch(s.Prefix, path) {
			return s
		}
	}
	return nil
}

// prefixMatch matches "/api" against "/api" and "/api/x" but not "/apix".
func prefixMatch(prefix, path string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || prefix[len(prefix)-1] == '/' || path[len(prefix)] == '/'
}

func hostOnly(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		return host[:i]
	}
	return host
}

// Holder hands the current Table to the data plane. Safe for concurrent use;
// Load returns nil until the first Publish.
type Holder struct{ cur atomic.Pointer[Table] }

// Load returns the current Table.
func (h *Holder) Load() *Table { return h.cur.Load() }

// Publish makes t the current Table. Requests already running keep the
// Table they loaded.
func (h *Holder) Publish(t *Table) { h.cur.Store(t) }

// RetryBudget limits retries to a share of requests, so retries cannot
// multiply load on a struggling service. It keeps decaying counts: each
// request adds a credit of ratio, each retry spends one; a retry is allowed
// while credit remains, with a small floor so a quiet service can still
// retry. Safe for concurrent use and lock-free.
type RetryBudget struct {
	ratio  float64 // retries allowed per request
	credit atomic.Int64
}

const budgetScale = 1000 // credit in thousandths of a retry

// NewRetryBudget allows retries up to percent of requests (plus a floor of
// 10 retries of credit).
func NewRetryBudget(percent float64) *RetryBudget {
	b := &RetryBudget{ratio: percent / 100}
	b.credit.Store(10 * budgetScale)
	return b
}

// Request credits one request.
func (b *RetryBudget) Request() {
	const ceiling = 1000 * budgetScale
	if b.credit.Load() < ceiling {
		b.credit.Add(int64(b.ratio * budgetScale))
	}
}

// TryRetry spends one retry if the budget allows it.
func (b *RetryBudget) TryRetry() bool {
	if b.credit.Add(-budgetScale) < 0 {
		b.credit.Add(budgetScale)
		return false
	}
	return true
}
