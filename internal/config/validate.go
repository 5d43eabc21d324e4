package config

import (
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// validate checks every invariant and reports all problems at once.
func (c *Config) validate(l lines) error {
	p := &problems{lines: l}
	checkListen(p, "listen", c.Listen, true)
	checkListen(p, "admin.listen", c.Admin.Listen, false)
	if c.Admin.Listen != "" && c.Admin.Listen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
		p.add("admin.listen", "%q is also the data plane's address; they must differ", c.Admin.Listen)
	}
	if c.TLS != nil && (c.TLS.Cert == "" || c.TLS.Key == "") {
		p.add("tls", "both cert and key are required")
	}
	names := map[string]bool{}
	for i, t := range c.Admin.Tokens {
		path := fmt.Sprintf("admin.tokens[%d]", i)
		if !idPattern.MatchString(t.Name) {
			p.add(path+".name", "%q is not a valid token name (letters, digits, . _ -)", t.Name)
		}
		if names[t.Name] {
			p.add(path+".name", "duplicate token name %q", t.Name)
		}
		names[t.Name] = true
		if t.Role != "admin" && t.Role != "viewer" {
			p.add(path+".role", "%q is not a role (admin or viewer)", t.Role)
		}
		if t.Value == "" {
			p.add(path+".value", "token %q has an empty value", t.Name)
		}
	}
	if !strings.HasPrefix(c.Store, "sqlite://") && !strings.HasPrefix(c.Store, "postgres://") && !strings.HasPrefix(c.Store, "postgresql://") {
		p.add("store", "%q is not a store URL (sqlite://PATH or postgres://...)", redactURL(c.Store))
	}
	if c.Store == "sqlite://" {
		p.add("store", "sqlite:// needs a file path")
	}
	checkHeader(p, "proxy.request_id_header", c.Proxy.RequestIDHeader)
	for _, d := range []struct {
		name string
		v    Duration
	}{{"dial_timeout", c.Proxy.DialTimeout}, {"response_header_timeout", c.Proxy.ResponseHeaderTimeout},
		{"idle_timeout", c.Proxy.IdleTimeout}, {"read_header_timeout", c.Proxy.ReadHeaderTimeout},
		{"upstream_idle_timeout", c.Proxy.UpstreamIdleTimeout}, {"shutdown_timeout", c.Proxy.ShutdownTimeout}} {
		if d.v < 0 {
			p.add("proxy."+d.name, "must not be negative, got %s", d.v.D())
		}
	}
	if c.Proxy.MaxBodyBytes < 0 {
		p.add("proxy.max_body_bytes", "must not be negative, got %d", c.Proxy.MaxBodyBytes)
	}
	if c.Proxy.MoveRate < 0 {
		p.add("proxy.move_rate", "must not be negative, got %d", c.Proxy.MoveRate)
	}
	if len(c.Services) == 0 {
		p.add("services", "at least one service is required")
	}
	seen := map[string]int{}
	routes := map[string]int{}
	for i := range c.Services {
		s := &c.Services[i]
		path := fmt.Sprintf("services[%d]", i)
		if !idPattern.MatchString(s.Name) {
			p.add(path+".name", "%q is not a valid service name (letters, digits, . _ -; at most 64)", s.Name)
		}
		if j, ok := seen[s.Name]; ok {
			p.add(path+".name", "duplicate service name %q (also services[%d])", s.Name, j)
		}
		seen[s.Name] = i
		key := strings.ToLower(s.Match.Host) + " " + s.Match.PathPrefix
		if j, ok := routes[key]; ok {
			p.add(path+".match", "host %q and path_prefix %q are already matched by services[%d]", s.Match.Host, s.Match.PathPrefix, j)
		}
		routes[key] = i
		s.validate(p, path)
		s.validateLoadTest(p, path+".release.load_test", c.TLS != nil)
	}
	c.Alerts.validate(p, seen)
	return p.err()
}

func (s *Service) validate(p *problems, path string) {
	if !strings.HasPrefix(s.Match.PathPrefix, "/") {
		p.add(path+".match.path_prefix", "%q must start with /", s.Match.PathPrefix)
	}
	if h := s.Match.Host; h != "" && strings.ContainsAny(h, "/ ") {
		p.add(path+".match.host", "%q is not a host name", h)
	}
	if s.Routing != RoutingSticky && s.Routing != RoutingWeighted {
		p.add(path+".routing", "%q is not a routing mode (sticky or weighted)", s.Routing)
	}
	for _, src := range s.User.Sources {
		if src.Kind == "client_address" {
			continue
		}
		if src.Name == "" {
			p.add(fmt.Sprintf("%s.user.%s", path, src.Kind), "name is empty")
		} else if src.Kind == "header" {
			checkHeader(p, fmt.Sprintf("%s.user.%s", path, src.Kind), src.Name)
		}
	}
	if c := s.User.AnonymousCookie; c != "" && !validCookieName(c) {
		p.add(path+".user.anonymous_cookie", "%q is not a valid cookie name", c)
	}
	for i, cond := range s.Segment {
		cond.validate(p, fmt.Sprintf("%s.segment[%d]", path, i))
	}
	checkHeader(p, path+".overrides.header", s.Overrides.Header)
	checkHeader(p, path+".build_header", s.BuildHeader)
	switch s.Balance {
	case "p2c", "round_robin", "least_conn":
	default:
		p.add(path+".balance", "%q is not a balancing policy (p2c, round_robin or least_conn)", s.Balance)
	}
	h := s.Health
	if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
		p.add(path+".health.path", "%q must start with /", h.Path)
	}
	if h.Interval <= 0 || h.Timeout <= 0 || h.FailTimeout <= 0 {
		p.add(path+".health", "interval, timeout and fail_timeout must be positive")
	}
	if h.Timeout > h.Interval {
		p.add(path+".health.timeout", "%s is longer than the interval %s", h.Timeout.D(), h.Interval.D())
	}
	if h.HealthyThreshold < 1 || h.UnhealthyThreshold < 1 || h.MaxFails < 1 {
		p.add(path+".health", "healthy_threshold, unhealthy_threshold and max_fails must be at least 1")
	}
	if s.Retries.Attempts < 1 || s.Retries.Attempts > 10 {
		p.add(path+".retries.attempts", "%d is outside 1..10", s.Retries.Attempts)
	}
	checkPercent(p, path+".retries.budget", s.Retries.Budget)

	ids := map[string]int{}
	var stable, canary []int
	for i := range s.Builds {
		b := &s.Builds[i]
		bp := fmt.Sprintf("%s.builds[%d]", path, i)
		if !idPattern.MatchString(b.ID) {
			p.add(bp+".id", "%q is not a valid build id (letters, digits, . _ -; at most 64)", b.ID)
		}
		if j, ok := ids[b.ID]; ok {
			p.add(bp+".id", "duplicate build id %q (also builds[%d])", b.ID, j)
		}
		ids[b.ID] = i
		switch b.State {
		case StateStable:
			stable = append(stable, i)
		case StateCanary:
			canary = append(canary, i)
		case StateDeployed:
		default:
			p.add(bp+".state", "%q is not a state a config may set (deployed, canary or stable)", b.State)
		}
		if b.Traffic != nil {
			checkPercent(p, bp+".traffic", *b.Traffic)
			if b.State != StateCanary {
				p.add(bp+".traffic", "only the canary build takes traffic; this build is %s", b.State)
			}
		}
		if len(b.Endpoints) == 0 && b.State != StateDeployed {
			p.add(bp+".endpoints", "a %s build needs at least one endpoint", b.State)
		}
		for j, e := range b.Endpoints {
			ep := fmt.Sprintf("%s.endpoints[%d]", bp, j)
			checkHostPort(p, ep, e.Address, true)
			if e.Weight < 1 || e.Weight > 1000 {
				p.add(ep+".weight", "%d is outside 1..1000", e.Weight)
			}
		}
	}
	if len(stable) > 1 {
		p.add(fmt.Sprintf("%s.builds[%d].state", path, stable[1]), "a service has at most one stable build (builds[%d] is stable too)", stable[0])
	}
	if len(canary) > 1 {
		p.add(fmt.Sprintf("%s.builds[%d].state", path, canary[1]), "a service has at most one canary build (builds[%d] is canary too)", canary[0])
	}
	if len(canary) == 1 && len(stable) == 0 {
		p.add(fmt.Sprintf("%s.builds[%d].state", path, canary[0]), "a canary needs a stable build to compare with")
	}
	s.Release.validate(p, path+".release")
}

func (r *Release) validate(p *problems, path string) {
	prev := Percent(0)
	for i, st := range r.Steps {
		sp := fmt.Sprintf("%s.steps[%d]", path, i)
		if st <= 0 || st > 100 {
			p.add(sp, "%v%% is outside (0, 100]", float64(st))
		} else if st <= prev {
			p.add(sp, "%v%% does not rise above the step before (%v%%)", float64(st), float64(prev))
		}
		prev = st
	}
	if r.StepDuration <= 0 {
		p.add(path+".step_duration", "must be positive")
	}
	if r.MaxStepDuration < r.StepDuration {
		p.add(path+".max_step_duration", "%s is shorter than step_duration %s", r.MaxStepDuration.D(), r.StepDuration.D())
	}
	if r.OnInconclusive != "pause" && r.OnInconclusive != "rollback" {
		p.add(path+".on_inconclusive", "%q is not pause or rollback", r.OnInconclusive)
	}
	if r.Analysis.WarmUp < 0 {
		p.add(path+".analysis.warm_up", "must not be negative")
	}
	a := r.Analysis
	if a.Interval <= 0 {
		p.add(path+".analysis.interval", "must be positive")
	} else if a.Interval.D() > time.Minute {
		p.add(path+".analysis.interval", "%s is longer than 60s, the window the judge keeps for its ceilings (it looks every second anyway; a custom metric takes its own metrics[].interval)", a.Interval.D())
	}
	checkPercent(p, path+".analysis.max_error_rate_delta", a.MaxErrorRateDelta)
	if a.MaxLatencyDeviation < 0 {
		p.add(path+".analysis.max_latency_deviation", "must not be negative")
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"min_samples", a.MinSamples}, {"max_errors", a.MaxErrors}, {"max_users_harmed", a.MaxUsersHarmed}} {
		if v.n < 0 {
			p.add(path+".analysis."+v.name, "must not be negative, got %d", v.n)
		}
	}
	if a.MaxLatencyP99 < 0 {
		p.add(path+".analysis.max_latency_p99", "must not be negative")
	}
	r.validateChecks(p, path)
}

func (c Condition) validate(p *problems, path string) {
	subjects := 0
	for _, set := range []bool{c.Header != "", c.Claim != "", c.Cookie != "", c.PathPrefix != "", len(c.Networks) > 0} {
		if set {
			subjects++
		}
	}
	if subjects != 1 {
		p.add(path, "set exactly one of header, claim, cookie, path_prefix, networks (found %d)", subjects)
		return
	}
	tests := 0
	for _, set := range []bool{c.Equals != "", c.Matches != "", c.VersionGTE != ""} {
		if set {
			tests++
		}
	}
	if c.Header != "" || c.Claim != "" {
		if tests != 1 {
			p.add(path, "a header or claim rule needs exactly one of equals, matches, version_gte (found %d)", tests)
		}
	} else if tests != 0 {
		p.add(path, "equals, matches and version_gte apply only to header and claim rules")
	}
	if c.Matches != "" {
		if _, err := regexp.Compile(c.Matches); err != nil {
			p.add(path+".matches", "%q is not a regular expression: %v", c.Matches, err)
		}
	}
	if c.VersionGTE != "" {
		if _, ok := ParseVersion(c.VersionGTE); !ok {
			p.add(path+".version_gte", "%q is not a dotted numeric version such as 5.2", c.VersionGTE)
		}
	}
	if c.PathPrefix != "" && !strings.HasPrefix(c.PathPrefix, "/") {
		p.add(path+".path_prefix", "%q must start with /", c.PathPrefix)
	}
}

// ParseVersion parses a dotted numeric version ("5.2.1", "v5.2"); a suffix
// after the numbers ("5.2.1-beta") is ignored.
func ParseVersion(s string) ([]int, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	if i := strings.IndexAny(s, "-+ "); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	out := make([]int, 0, len(parts))
	for _, part := range parts {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return nil, false
		}
		out = append(out, n)
	}
	return out, len(out) > 0
}

// checkListen is checkHostPort for a listening address, where port 0 (a
// free port chosen by the system) is allowed.
func checkListen(p *problems, path, v string, required bool) {
	if host, port, err := net.SplitHostPort(v); err == nil && port == "0" {
		v = net.JoinHostPort(host, "1")
	}
	checkHostPort(p, path, v, required)
}

func checkHostPort(p *problems, path, v string, required bool) {
	if v == "" {
		if required {
			p.add(path, "is required (host:port)")
		}
		return
	}
	if err := CheckHostPort(v); err != nil {
		p.add(path, "%v", err)
	}
}

// CheckHostPort reports why v is not a "host:port" with a port in 1..65535.
func CheckHostPort(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%q is not host:port", v)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number in 1..65535", v, port)
	}
	if host == "" {
		return nil // ":8080" listens on every address
	}
	if strings.ContainsAny(host, "/ ?#@") {
		return fmt.Errorf("%q: %q is not a host", v, host)
	}
	return nil
}

func checkPercent(p *problems, path string, v Percent) {
	if v < 0 || v > 100 {
		p.add(path, "%v%% is outside 0..100", float64(v))
	}
}

func checkHeader(p *problems, path, name string) {
	if name == "" {
		return
	}
	if http.CanonicalHeaderKey(name) == "" || strings.ContainsAny(name, " :\t\r\n") {
		p.add(path, "%q is not a valid header name", name)
	}
}

func validCookieName(s string) bool {
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, r) {
			return false
		}
	}
	return s != ""
}

// redactURL hides a password in a store URL before it is printed.
func redactURL(s string) string {
	at := strings.LastIndex(s, "@")
	scheme := strings.Index(s, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return s
	}
	cred := s[scheme+3 : at]
	if i := strings.Index(cred, ":"); i >= 0 {
		return s[:scheme+3] + cred[:i] + ":xxxxx" + s[at:]
	}
	return s
}
