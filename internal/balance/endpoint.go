package balance

import (
	"sync/atomic"
	"time"
)

// MaxWeight is the largest endpoint weight; [Pool.Get] clamps weights into
// 1..MaxWeight so that weight sums of any realistic build fit in 32 bits.
const MaxWeight = 10000

// Endpoint is one replica of a build (host:port) and its live state.
//
// Endpoints are made only by a [Pool], which returns the same *Endpoint for
// the same address until [Pool.Retain] drops it, so its state outlives
// routing-table rebuilds. All methods are safe for concurrent use and
// lock-free.
//
// An endpoint is available to [Set.Pick] when it passes active health checks
// (or has none: a new endpoint starts healthy) and is not passively ejected.
type Endpoint struct {
	addr string
	pool *Pool

	// Read on every pick, written rarely.
	weight       atomic.Int32
	healthy      atomic.Bool
	ejectedUntil atomic.Int64 // pool clock nanoseconds; 0 = not ejected

	_ [64]byte // keep the per-request counters below off the read-mostly line

	// Written on every request or failure.
	inflight  atomic.Int64
	fails     atomic.Int32 // consecutive failures since the last success or ejection
	level     atomic.Int32 // ejections in a row without a success; >0 = probation
	failures  atomic.Uint64
	ejections atomic.Uint64
}

func newEndpoint(p *Pool, addr string, weight int) *Endpoint {
	e := &Endpoint{addr: addr, pool: p}
	e.weight.Store(clampWeight(weight))
	e.healthy.Store(true)
	return e
}

func clampWeight(w int) int32 {
	return int32(min(max(w, 1), MaxWeight))
}

// Addr returns the endpoint's host:port, as given to [Pool.Get].
func (e *Endpoint) Addr() string { return e.addr }

// Weight returns the endpoint's current weight (1..MaxWeight). A [Set] uses
// the weight the endpoint had when the Set was built.
func (e *Endpoint) Weight() int { return int(e.weight.Load()) }

// InFlight returns the number of requests between [Endpoint.Begin] and their
// End.
func (e *Endpoint) InFlight() int64 { return e.inflight.Load() }

// Healthy reports the active health-check verdict; true when no checks run.
func (e *Endpoint) Healthy() bool { return e.healthy.Load() }

// SetHealthy records the active health-check verdict. It is meant for the
// health checker (internal/health); nothing else should call it.
func (e *Endpoint) SetHealthy(ok bool) { e.healthy.Store(ok) }

// Ejected reports whether passive ejection currently keeps the endpoint out
// of rotation.
func (e *Endpoint) Ejected() bool {
	if e.ejectedUntil.Load() == 0 {
		return false
	}
	return e.ejectedAt(e.pool.nanos())
}

// ejectedAt is Ejected at pool time now. A caller may pass any now when the
// pool has no ejection (pool.ejected == 0): the deadline is then 0 or was
// set after the caller looked, and both answers are right.
func (e *Endpoint) ejectedAt(now int64) bool {
	u := e.ejectedUntil.Load()
	if u == 0 {
		return false
	}
	if now < u {
		return true
	}
	// Expired: clear it so that picks stop reading the clock once no
	// endpoint of the pool is ejected. Probation (level) stays until a
	// success.
	if e.ejectedUntil.CompareAndSwap(u, 0) {
		e.pool.ejected.Add(-1)
	}
	return false
}

// Available reports whether [Set.Pick] may choose the endpoint outside of a
// fallback: healthy and not ejected.
func (e *Endpoint) Available() bool { return e.healthy.Load() && !e.Ejected() }

func (e *Endpoint) availableAt(now int64) bool { return e.healthy.Load() && !e.ejectedAt(now) }

// Begin counts a request as in flight on the endpoint. Every Begin must be
// followed by exactly one End or EndNeutral.
func (e *Endpoint) Begin() { e.inflight.Add(1) }

// End finishes a request started with Begin. ok reports whether the endpoint
// did its job; the proxy passes false for connection errors and timeouts
// (and, if it so chooses, 5xx answers). Failures feed passive ejection as
// described on [Passive]; a success resets the failure count and ends
// probation. Failures reported while the endpoint is already ejected (by
// requests that started before) are not counted.
func (e *Endpoint) End(ok bool) {
	e.inflight.Add(-1)
	if ok {
		// Load before Store: the common case writes nothing shared.
		if e.fails.Load() != 0 {
			e.fails.Store(0)
		}
		if e.level.Load() != 0 {
			e.level.Store(0)
		}
		return
	}
	e.failed()
}

// EndNeutral finishes a request started with Begin without judging the
// endpoint: for a client that went away or a request the proxy cancelled.
func (e *Endpoint) EndNeutral() { e.inflight.Add(-1) }

func (e *Endpoint) failed() {
	e.failures.Add(1)
	p := e.pool.passive.Load()
	if p.Disabled {
		return
	}
	now := e.pool.nanos()
	u := e.ejectedUntil.Load()
	if u != 0 && now < u {
		return
	}
	lvl := e.level.Load()
	threshold := int32(p.MaxFails)
	if lvl > 0 {
		threshold = 1
	}
	if e.fails.Add(1) < threshold {
		return
	}
	cool := p.cooldown(lvl + 1)
	// The CAS makes one failure of a concurrent burst the one that ejects;
	// the others see the new deadline or lose the race and stop here.
	if !e.ejectedUntil.CompareAndSwap(u, max(now+int64(cool), 1)) {
		return
	}
	if u == 0 {
		e.pool.ejected.Add(1)
	}
	e.fails.Store(0)
	e.level.Store(lvl + 1)
	e.ejections.Add(1)
	e.pool.log.Warn("endpoint ejected", "endpoint", e.addr, "cooldown", cool,
		"in_a_row", lvl+1, "max_fails", p.MaxFails)
}

// EndpointStats is a point-in-time copy of an endpoint's state, for the
// admin API, the UI and error bodies.
type EndpointStats struct {
	Addr         string
	Weight       int
	InFlight     int64
	Healthy      bool      // active checks pass (or none run)
	Ejected      bool      // passively ejected right now
	EjectedUntil time.Time // zero when not ejected
	Probation    bool      // was ejected and has not succeeded since
	Fails        int       // consecutive failures so far
	Failures     uint64    // failures reported since the endpoint was created
	Ejections    uint64    // ejections since the endpoint was created
}

// Stats returns a copy of the endpoint's state. The fields are read one by
// one, so under load they need not be mutually consistent.
func (e *Endpoint) Stats() EndpointStats {
	st := EndpointStats{
		Addr:      e.addr,
		Weight:    e.Weight(),
		InFlight:  e.inflight.Load(),
		Healthy:   e.healthy.Load(),
		Ejected:   e.Ejected(),
		Probation: e.level.Load() > 0,
		Fails:     int(e.fails.Load()),
		Failures:  e.failures.Load(),
		Ejections: e.ejections.Load(),
	}
	if u := e.ejectedUntil.Load(); st.Ejected && u != 0 {
		st.EjectedUntil = e.pool.base.Add(time.Duration(u))
	}
	return st
}
