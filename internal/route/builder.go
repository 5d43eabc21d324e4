package route

import (
	"cmp"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/canaryd/canaryd/internal/balance"
	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/metrics"
	"github.com/canaryd/canaryd/internal/route/cohort"
)

// State is the runtime routing state of one service: which builds serve it
// and how much traffic the canary gets. The control plane owns it; the
// config supplies the first one (StatesFromConfig).
type State struct {
	Stable *BuildState
	Canary *BuildState
	// Traffic is the canary's percentage (0–100).
	Traffic float64
	// Offset is the first bucket of the canary window; a fresh cohort moves it.
	Offset uint32
}

// BuildState is a build as routing needs it.
type BuildState struct {
	ID, Version string
	Endpoints   []config.Endpoint
}

// StatesFromConfig returns the routing state the config declares.
func StatesFromConfig(c *config.Config) map[string]State {
	out := make(map[string]State, len(c.Services))
	for _, s := range c.Services {
		var st State
		for _, b := range s.Builds {
			bs := &BuildState{ID: b.ID, Version: b.Version, Endpoints: b.Endpoints}
			switch b.State {
			case config.StateStable:
				st.Stable = bs
			case config.StateCanary:
				st.Canary = bs
				if b.Traffic != nil {
					st.Traffic = float64(*b.Traffic)
				}
			}
		}
		out[s.Name] = st
	}
	return out
}

// Builder compiles Tables. It keeps what must outlive a single Table — the
// endpoint pools (health, in-flight counts, ejections) and retry budgets —
// so a rebuild changes routing without losing them. Safe for concurrent use.
type Builder struct {
	// Metrics counts all traffic; Judged only randomised traffic, for the
	// judge. Either may be nil.
	Metrics, Judged *metrics.Registry

	mu       sync.Mutex
	version  uint64
	pools    map[string]*balance.Pool
	budgets  map[string]*RetryBudget
	analyses map[string]*Analysis
	// NewPool creates a service's pool; nil uses balance.NewPool with the
	// service's passive-ejection settings.
	NewPool func(s *config.Service) *balance.Pool
}

// Pool returns the endpoint pool of a service, or nil before its first Build.
func (b *Builder) Pool(service string) *balance.Pool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pools[service]
}

// Analysis returns the analysis feed of a service, creating it if needed.
func (b *Builder) Analysis(service string) *Analysis {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.analysis(service)
}

func (b *Builder) analysis(service string) *Analysis {
	if b.analyses == nil {
		b.analyses = map[string]*Analysis{}
	}
	a := b.analyses[service]
	if a == nil {
		a = &Analysis{}
		b.analyses[service] = a
	}
	return a
}

// Build compiles a Table from the config and the services' states. A
// service missing from states has no builds. It returns an error, and no
// Table, when a state is inconsistent with the config.
func (b *Builder) Build(c *config.Config, states map[string]State) (*Table, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pools == nil {
		b.pools = map[string]*balance.Pool{}
		b.budgets = map[string]*RetryBudget{}
		b.analyses = map[string]*Analysis{}
	}
	t := &Table{}
	trusted := prefixes(c.Proxy.TrustedProxies)
	for i := range c.Services {
		sc := &c.Services[i]
		s, err := b.service(sc, states[sc.Name], trusted)
		if err != nil {
			return nil, fmt.Errorf("service %q: %w", sc.Name, err)
		}
		t.services = append(t.services, s)
	}
	slices.SortStableFunc(t.services, func(x, y *Service) int {
		if (x.Host == "") != (y.Host == "") {
			if x.Host != "" {
				return -1
			}
			return 1
		}
		return cmp.Compare(len(y.Prefix), len(x.Prefix))
	})
	b.version++
	t.Version = b.version
	return t, nil
}

func (b *Builder) service(sc *config.Service, st State, trusted []netip.Prefix) (*Service, error) {
	pool := b.pools[sc.Name]
	if pool == nil {
		if b.NewPool != nil {
			pool = b.NewPool(sc)
		} else {
			pool = balance.NewPool(balance.PoolOptions{Passive: balance.Passive{
				MaxFails: sc.Health.MaxFails, FailTimeout: sc.Health.FailTimeout.D(),
			}})
		}
		b.pools[sc.Name] = pool
	} else {
		pool.SetPassive(balance.Passive{MaxFails: sc.Health.MaxFails, FailTimeout: sc.Health.FailTimeout.D()})
	}
	budget := b.budgets[sc.Name]
	if budget == nil {
		budget = NewRetryBudget(float64(sc.Retries.Budget))
		b.budgets[sc.Name] = budget
	}
	rules, err := compileRules(sc, st)
	if err != nil {
		return nil, err
	}
	s := &Service{
		Name: sc.Name, Host: strings.ToLower(sc.Match.Host), Prefix: sc.Match.PathPrefix,
		StripPrefix: sc.Match.StripPrefix, Rules: rules, AnonymousCookie: sc.User.AnonymousCookie,
		BuildHeader: http.CanonicalHeaderKey(sc.BuildHeader), ExposeBuild: sc.ExposeBuild,
		Attempts: sc.Retries.Attempts, StableFallback: sc.Retries.StableFallbackOn(),
		Budget: budget, TrustedProxies: trusted, Analysis: b.analysis(sc.Name),
	}
	for _, src := range sc.User.Sources {
		s.Sources = append(s.Sources, compileSource(src))
	}
	if s.AnonymousCookie != "" {
		s.Sources = append(s.Sources, cohort.Source{Kind: cohort.FromCookie, Name: s.AnonymousCookie})
	}
	var keep []string
	if s.Stable, err = b.build(sc, pool, st.Stable, config.StateStable, &keep); err != nil {
		return nil, err
	}
	if st.Traffic > 0 || st.Canary != nil {
		if s.Canary, err = b.build(sc, pool, st.Canary, config.StateCanary, &keep); err != nil {
			return nil, err
		}
	}
	pool.Retain(keep)
	return s, nil
}

func (b *Builder) build(sc *config.Service, pool *balance.Pool, bs *BuildState, state string, keep *[]string) (*Build, error) {
	if bs == nil {
		return nil, nil
	}
	eps := make([]*balance.Endpoint, 0, len(bs.Endpoints))
	for _, e := range bs.Endpoints {
		eps = append(eps, pool.Get(e.Address, e.Weight))
		*keep = append(*keep, e.Address)
	}
	set, err := balance.NewSet(balance.Policy(sc.Balance), eps)
	if err != nil {
		return nil, fmt.Errorf("build %q: %w", bs.ID, err)
	}
	out := &Build{ID: bs.ID, Version: bs.Version, State: state, Endpoints: set, HeaderValue: []string{bs.ID}}
	if b.Metrics != nil {
		out.Metrics = b.Metrics.Build(sc.Name, bs.ID)
		out.Metrics.SetState(state)
	}
	if b.Judged != nil {
		out.Judged = b.Judged.Build(sc.Name, bs.ID)
		out.Judged.SetState(state)
	}
	return out, nil
}

func compileRules(sc *config.Service, st State) (cohort.Rules, error) {
	r := cohort.Rules{Salt: sc.Salt, Percent: st.Traffic, Window: cohort.WindowFor(st.Offset, st.Traffic)}
	if sc.Routing == config.RoutingWeighted {
		r.Mode = cohort.Weighted
	}
	if st.Canary == nil {
		r.Percent, r.Window = 0, cohort.WindowFor(st.Offset, 0)
	}
	if !sc.Overrides.DisableHeader {
		r.OverrideHeader = http.CanonicalHeaderKey(sc.Overrides.Header)
		r.OverrideTrusted = prefixes(sc.Overrides.TrustedNetworks)
	}
	r.Allow = set(sc.Overrides.Allow)
	r.Deny = set(sc.Overrides.Deny)
	for i, c := range sc.Segment {
		cc, err := compileCondition(c)
		if err != nil {
			return r, fmt.Errorf("segment[%d]: %w", i, err)
		}
		r.Segment = append(r.Segment, cc)
	}
	return r, nil
}

func compileCondition(c config.Condition) (cohort.Condition, error) {
	var out cohort.Condition
	switch {
	case c.Header != "":
		out.Subject, out.Name = cohort.SubjectHeader, http.CanonicalHeaderKey(c.Header)
	case c.Claim != "":
		out.Subject, out.Name = cohort.SubjectClaim, c.Claim
	case c.Cookie != "":
		out.Subject, out.Name = cohort.SubjectCookie, c.Cookie
	case c.PathPrefix != "":
		out.Subject, out.Name = cohort.SubjectPath, c.PathPrefix
	default:
		out.Subject, out.Networks = cohort.SubjectNetwork, prefixes(c.Networks)
	}
	out.Equals = c.Equals
	if c.Matches != "" {
		re, err := regexp.Compile(c.Matches)
		if err != nil {
			return out, err
		}
		out.Pattern = re
	}
	if c.VersionGTE != "" {
		v, ok := config.ParseVersion(c.VersionGTE)
		if !ok {
			return out, fmt.Errorf("version_gte %q is not a version", c.VersionGTE)
		}
		out.MinVersion = v
	}
	return out, nil
}

func compileSource(src config.UserSource) cohort.Source {
	switch src.Kind {
	case "header":
		return cohort.Source{Kind: cohort.FromHeader, Name: http.CanonicalHeaderKey(src.Name)}
	case "cookie":
		return cohort.Source{Kind: cohort.FromCookie, Name: src.Name}
	case "jwt_claim":
		return cohort.Source{Kind: cohort.FromJWTClaim, Name: src.Name}
	}
	return cohort.Source{Kind: cohort.FromClientAddress}
}

func set(keys []string) map[string]struct{} {
	if len(keys) == 0 {
		return nil
	}
	m := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		m[k] = struct{}{}
	}
	return m
}

func prefixes(c config.CIDRs) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(c))
	for _, n := range c {
		if p, ok := ipNetPrefix(n); ok {
			out = append(out, p)
		}
	}
	return out
}

func ipNetPrefix(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}
