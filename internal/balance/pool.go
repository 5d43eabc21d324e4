package balance

import (
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// PoolOptions configures a [Pool]. The zero value is usable.
type PoolOptions struct {
	// Passive configures passive ejection; zero fields take their defaults.
	Passive Passive
	// Now is the clock for ejection deadlines. nil means time.Now. Tests
	// pass a fake clock; it must be safe for concurrent use.
	Now func() time.Time
	// Logger receives one Warn record per ejection. nil discards.
	Logger *slog.Logger
}

// Pool owns the endpoints of one service and gives them identity across
// routing-table rebuilds: [Pool.Get] returns the same *Endpoint for the same
// address, so in-flight counts, health verdicts and ejections survive a
// rebuild. The proxy keeps one Pool per service (passive settings are per
// service) for the life of the process; there is no package-level pool.
//
// A Pool is safe for concurrent use. Get, Retain and Endpoints take a mutex
// and are meant for rebuilds, not for the request path.
type Pool struct {
	now     func() time.Time
	base    time.Time
	log     *slog.Logger
	passive atomic.Pointer[Passive]
	// ejected counts endpoints with a non-zero ejection deadline (possibly
	// expired and not yet cleared). While it is 0, Pick reads no clock.
	ejected atomic.Int64

	mu  sync.Mutex
	eps map[string]*Endpoint
}

// NewPool returns an empty pool.
func NewPool(o PoolOptions) *Pool {
	p := &Pool{now: o.Now, log: o.Logger, eps: make(map[string]*Endpoint)}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.base = p.now()
	p.SetPassive(o.Passive)
	return p
}

// nanos is the pool clock: nanoseconds since the pool was made (monotonic
// with the real clock).
func (p *Pool) nanos() int64 { return int64(p.now().Sub(p.base)) }

// SetPassive replaces the passive-ejection settings of every endpoint of the
// pool, e.g. on a config reload. Zero fields take their defaults. Current
// ejections keep their deadlines.
func (p *Pool) SetPassive(c Passive) {
	c = c.WithDefaults()
	p.passive.Store(&c)
}

// Passive returns the passive-ejection settings in force, defaults applied.
func (p *Pool) Passive() Passive { return *p.passive.Load() }

// Get returns the endpoint for addr (host:port, not validated here: the
// config and the registry validate addresses), creating it healthy and idle
// if the pool has none. weight is clamped into 1..MaxWeight and becomes the
// endpoint's weight for Sets built from now on; the weight belongs to the
// address, so if two builds of a service list one address, the last Get wins.
func (p *Pool) Get(addr string, weight int) *Endpoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.eps[addr]
	if !ok {
		e = newEndpoint(p, addr, weight)
		p.eps[addr] = e
		return e
	}
	e.weight.Store(clampWeight(weight))
	return e
}

// Lookup returns the endpoint for addr, or nil if the pool has none.
func (p *Pool) Lookup(addr string) *Endpoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.eps[addr]
}

// Retain drops every endpoint whose address is not in keep and returns how
// many were dropped. Call it after a rebuild with the addresses the new
// routing table uses. A dropped endpoint stays valid for requests of older
// Sets that still hold it; if its address comes back later it starts afresh.
func (p *Pool) Retain(keep []string) int {
	want := make(map[string]struct{}, len(keep))
	for _, a := range keep {
		want[a] = struct{}{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for a, e := range p.eps {
		if _, ok := want[a]; !ok {
			delete(p.eps, a)
			if e.ejectedUntil.Swap(0) != 0 {
				p.ejected.Add(-1)
			}
			n++
		}
	}
	return n
}

// Endpoints returns the pool's endpoints sorted by address.
func (p *Pool) Endpoints() []*Endpoint {
	p.mu.Lock()
	out := make([]*Endpoint, 0, len(p.eps))
	for _, e := range p.eps {
		out = append(out, e)
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b *Endpoint) int { return strings.Compare(a.addr, b.addr) })
	return out
}
