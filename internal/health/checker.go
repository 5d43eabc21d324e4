package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/canaryd/canaryd/internal/balance"
)

// Target is one endpoint to check and how.
type Target struct {
	Endpoint *balance.Endpoint
	Check    Active
	// Service names the endpoint's service in logs; optional.
	Service string
}

// Options configures a [Checker]. The zero value is usable.
type Options struct {
	// Client sends the probes. nil means NewClient().
	Client *http.Client
	// Logger receives a record each time an endpoint turns healthy (Info)
	// or unhealthy (Warn); nothing per probe. nil discards.
	Logger *slog.Logger
}

// Checker probes a set of endpoints and records the verdicts in them. The
// set is replaced with SetTargets whenever routing changes; probes of
// endpoints whose check is unchanged continue undisturbed, keeping their
// counters and timing.
//
// A Checker is safe for concurrent use.
type Checker struct {
	client *http.Client
	log    *slog.Logger

	mu      sync.Mutex
	probers map[*balance.Endpoint]*prober
	ctx     context.Context // of the current Run; nil when not running
	wg      sync.WaitGroup
}

// NewChecker returns a Checker with no targets.
func NewChecker(o Options) *Checker {
	c := &Checker{client: o.Client, log: o.Logger, probers: make(map[*balance.Endpoint]*prober)}
	if c.client == nil {
		c.client = NewClient()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// SetTargets replaces the set of checked endpoints. It may be called before
// or during Run.
//
//   - An endpoint whose check (after defaults) is unchanged keeps its prober.
//   - A new endpoint, or one whose check changed, gets a new prober; the
//     endpoint keeps its current verdict until the new thresholds flip it.
//   - An endpoint no longer listed stops being probed and is marked healthy:
//     nothing checks it any more, so nothing may keep it out.
//
// If one endpoint is listed more than once, the first check wins. An
// invalid check rejects the whole call and changes nothing.
func (c *Checker) SetTargets(ts []Target) error {
	var errs []error
	next := make(map[*balance.Endpoint]*prober, len(ts))
	cfgs := make(map[*balance.Endpoint]Active, len(ts))
	for i, t := range ts {
		if t.Endpoint == nil {
			errs = append(errs, fmt.Errorf("health target %d: endpoint is nil", i))
			continue
		}
		if err := t.Check.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("health target %d (%s): %w", i, t.Endpoint.Addr(), err))
			continue
		}
		cfg := t.Check.WithDefaults()
		if first, dup := cfgs[t.Endpoint]; dup {
			if first != cfg {
				c.log.Warn("endpoint listed with two health checks; the first wins",
					"endpoint", t.Endpoint.Addr(), "service", t.Service)
			}
			continue
		}
		cfgs[t.Endpoint] = cfg
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range ts {
		cfg, ok := cfgs[t.Endpoint]
		if !ok || next[t.Endpoint] != nil {
			continue
		}
		if old := c.probers[t.Endpoint]; old != nil && old.cfg == cfg {
			next[t.Endpoint] = old
			continue
		}
		next[t.Endpoint] = newProber(t, cfg)
	}
	for ep, old := range c.probers {
		if next[ep] == old {
			continue
		}
		old.stop()
		if next[ep] == nil {
			ep.SetHealthy(true)
		}
	}
	c.probers = next
	if c.ctx != nil {
		for _, p := range next {
			if p.cancel == nil {
				c.start(p)
			}
		}
	}
	return nil
}

// start runs p's goroutine under the current Run. c.mu must be held.
func (c *Checker) start(p *prober) {
	ctx, cancel := context.WithCancel(c.ctx)
	p.cancel = cancel
	c.wg.Go(func() { p.run(ctx, c.client, c.log) })
}

// Run probes the targets until ctx ends, then waits for the probes to stop
// and returns nil. It fails at once if another Run is active. After Run
// returns, the next Run starts the probes afresh.
func (c *Checker) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.ctx != nil {
		c.mu.Unlock()
		return errors.New("health: checker is already running")
	}
	c.ctx = ctx
	for _, p := range c.probers {
		c.start(p)
	}
	c.mu.Unlock()

	<-ctx.Done()

	c.mu.Lock()
	c.ctx = nil
	for ep, p := range c.probers {
		p.stop()
		// Fresh, unstarted probers with the same checks for a later Run;
		// endpoints keep their verdicts.
		c.probers[ep] = newProber(Target{Endpoint: ep, Service: p.service}, p.cfg)
	}
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}

// ProbeStatus is the active-check state of one endpoint, for the admin API
// and the UI.
type ProbeStatus struct {
	Endpoint  string
	Service   string
	Healthy   bool      // the endpoint's current verdict
	Passes    int       // probes passed in a row
	Fails     int       // probes failed in a row
	LastProbe time.Time // zero before the first probe
	LastError string    // of the last probe; "" if it passed
}

// Status returns the state of every checked endpoint, sorted by address.
func (c *Checker) Status() []ProbeStatus {
	c.mu.Lock()
	ps := make([]*prober, 0, len(c.probers))
	for _, p := range c.probers {
		ps = append(ps, p)
	}
	c.mu.Unlock()
	out := make([]ProbeStatus, len(ps))
	for i, p := range ps {
		out[i] = p.status()
	}
	slices.SortFunc(out, func(a, b ProbeStatus) int { return strings.Compare(a.Endpoint, b.Endpoint) })
	return out
}
