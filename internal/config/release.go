package config

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/canaryd/canaryd/internal/release/source"
)

// gatePoints returns the values of release.gates[].at.
func gatePoints() []string {
	return []string{"before_start", "before_step", "before_promote", "after_rollback"}
}

// validateChecks checks manual gates, webhook gates and custom metrics.
func (r *Release) validateChecks(p *problems, path string) {
	for i, g := range r.ManualGates {
		if !slices.Contains(r.Steps, g) {
			p.add(fmt.Sprintf("%s.manual_gates[%d]", path, i), "%v%% is not one of the steps %v", float64(g), percents(r.Steps))
		}
	}
	names := map[string]bool{}
	for i, g := range r.Gates {
		gp := fmt.Sprintf("%s.gates[%d]", path, i)
		if !idPattern.MatchString(g.Name) {
			p.add(gp+".name", "%q is not a valid gate name (letters, digits, . _ -)", g.Name)
		} else if names[g.Name] {
			p.add(gp+".name", "duplicate gate name %q", g.Name)
		}
		names[g.Name] = true
		checkCheckURL(p, gp+".url", g.URL)
		for j, at := range g.At {
			if !slices.Contains(gatePoints(), at) {
				p.add(fmt.Sprintf("%s.at[%d]", gp, j), "%q is not a gate point (%s)", at, strings.Join(gatePoints(), ", "))
			}
		}
		if g.OnDeny != "pause" && g.OnDeny != "rollback" {
			p.add(gp+".on_deny", "%q is not pause or rollback", g.OnDeny)
		}
		if g.Timeout < 0 {
			p.add(gp+".timeout", "must not be negative")
		}
	}
	names = map[string]bool{}
	for i, m := range r.Analysis.Metrics {
		mp := fmt.Sprintf("%s.analysis.metrics[%d]", path, i)
		if !idPattern.MatchString(m.Name) {
			p.add(mp+".name", "%q is not a valid metric name (letters, digits, . _ -)", m.Name)
		} else if names[m.Name] {
			p.add(mp+".name", "duplicate metric name %q", m.Name)
		}
		names[m.Name] = true
		switch {
		case (m.Prometheus == nil) == (m.HTTP == nil):
			p.add(mp, "set exactly one of prometheus and http")
		case m.Prometheus != nil:
			checkCheckURL(p, mp+".prometheus.address", m.Prometheus.Address)
			if strings.TrimSpace(m.Prometheus.Query) == "" {
				p.add(mp+".prometheus.query", "is required (PromQL yielding one number)")
			}
		default:
			checkCheckURL(p, mp+".http.url", m.HTTP.URL)
			if strings.TrimSpace(m.HTTP.Path) == "" {
				p.add(mp+".http.path", "is required (where the number is in the JSON, e.g. data.count)")
			} else if _, err := source.SplitPath(m.HTTP.Path); err != nil {
				p.add(mp+".http.path", "%v", err)
			}
		}
		if m.Condition == "" {
			p.add(mp+".condition", `is required, e.g. "< 0.8" or "<= stable * 1.2"`)
		} else if cond, err := source.ParseCondition(m.Condition); err != nil {
			p.add(mp+".condition", "%v", err)
		} else {
			m.validateKind(p, mp, cond)
		}
		if m.Interval < 0 || m.Timeout < 0 || m.FailureLimit < 0 {
			p.add(mp, "interval, timeout and failure_limit must not be negative")
		}
	}
}

// metricKinds returns the values of release.analysis.metrics[].kind.
func metricKinds() []string { return []string{MetricThreshold, MetricGauge, MetricCounter} }

// validateKind checks that the condition means something to the metric's
// kind. The sequential kinds compare with stable, and need a margin in the
// canary's favour: with none, an identical canary can be failed when worse
// but never shown to be within the condition, so every step would hold.
func (m *Metric) validateKind(p *problems, mp string, cond source.Condition) {
	switch m.Kind {
	case MetricThreshold:
		return
	case MetricGauge:
		switch {
		case !cond.Stable || cond.Op == "==" || cond.Op == "!=":
			p.add(mp+".condition", `%q: a gauge is compared with stable: write "<= stable * F + X" (smaller is better) or ">= stable * F - X" (bigger is better), e.g. "<= stable * 1.1"`, m.Condition)
		case (cond.Op == "<" || cond.Op == "<=") && cond.Factor <= 1 && cond.Offset <= 0,
			(cond.Op == ">" || cond.Op == ">=") && cond.Factor >= 1 && cond.Offset >= 0:
			p.add(mp+".condition", `%q leaves no margin, so an identical canary could never pass: allow one, e.g. "<= stable * 1.1" or "<= stable + 0.05"`, m.Condition)
		}
	case MetricCounter:
		if !cond.Stable || (cond.Op != "<" && cond.Op != "<=") || cond.Offset != 0 || cond.Factor <= 1 {
			p.add(mp+".condition", `%q: a counter is held to a ratio of stable's event rate, "<= stable * F" with F > 1, e.g. "<= stable * 1.5"`, m.Condition)
		}
	default:
		p.add(mp+".kind", "%q is not a metric kind (%s)", m.Kind, strings.Join(metricKinds(), ", "))
		return
	}
	if m.FailureLimit > 1 {
		p.add(mp+".failure_limit", "applies to threshold metrics only; a %s fails on its evidence (e-value ≥ 1000)", m.Kind)
	}
}

// MaxLoadRate bounds release.load_test.rate: the gateway loads itself,
// so a typo must not turn it into a flood.
const MaxLoadRate = 10000

// validateLoadTest checks the load-test gate against its service: its
// requests must reach this service, be randomised like real ones (no
// override header), and name their synthetic users the way the service
// recognises users.
func (s *Service) validateLoadTest(p *problems, path string, tls bool) {
	lt := s.Release.LoadTest
	if lt == nil {
		return
	}
	if !(lt.Rate > 0 && lt.Rate <= MaxLoadRate) {
		p.add(path+".rate", "%v is outside (0, %d] requests per second", lt.Rate, MaxLoadRate)
	}
	if lt.Users < 1 || lt.Users > 1000000 {
		p.add(path+".users", "%d is outside 1..1000000", lt.Users)
	}
	checkHeader(p, path+".user_header", lt.UserHeader)
	if s.Routing == RoutingSticky && !slices.ContainsFunc(s.User.Sources, func(u UserSource) bool {
		return u.Kind == "header" && strings.EqualFold(u.Name, lt.UserHeader)
	}) {
		p.add(path+".user_header", "%q is not one of the service's user header sources: sticky routing would not see the synthetic users", lt.UserHeader)
	}
	if lt.Method == "" || strings.ToUpper(lt.Method) != lt.Method || strings.ContainsAny(lt.Method, " \t/:") {
		p.add(path+".method", "%q is not an HTTP method such as GET or POST", lt.Method)
	}
	if !strings.HasPrefix(lt.Path, s.Match.PathPrefix) {
		p.add(path+".path", "%q does not start with the service's path_prefix %q: the gateway would not route it here", lt.Path, s.Match.PathPrefix)
	}
	for _, k := range slices.Sorted(maps.Keys(lt.Headers)) {
		hp := path + ".headers." + k
		checkHeader(p, hp, k)
		switch {
		case strings.EqualFold(k, s.Overrides.Header) && !s.Overrides.DisableHeader:
			p.add(hp, "%q is the override header: forced requests are not judged", k)
		case strings.EqualFold(k, lt.UserHeader):
			p.add(hp, "%q is the user header, which the load test fills with its synthetic users", k)
		case strings.EqualFold(k, "Host"):
			p.add(hp, "the Host header comes from match.host")
		}
	}
	if lt.Concurrency < 1 || lt.Concurrency > 10000 {
		p.add(path+".concurrency", "%d is outside 1..10000", lt.Concurrency)
	}
	if lt.Timeout <= 0 {
		p.add(path+".timeout", "must be positive")
	}
	if lt.MaxRequests < 0 {
		p.add(path+".max_requests", "must not be negative, got %d", lt.MaxRequests)
	}
	if lt.Target != "" {
		checkCheckURL(p, path+".target", lt.Target)
	} else if tls && s.Match.Host == "" {
		p.add(path+".target", "is required when the gateway serves TLS and the service matches no host: the load test could not verify the certificate of 127.0.0.1")
	}
}

// checkCheckURL wants an absolute http(s) URL once placeholders are filled.
func checkCheckURL(p *problems, path, v string) {
	filled := source.Vars{Service: "svc", Build: "1"}.Expand(v)
	u, err := url.Parse(filled)
	if v == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.add(path, "%q is not an http:// or https:// URL", redactURL(v))
	}
}

func percents(ps []Percent) []float64 {
	out := make([]float64, len(ps))
	for i, v := range ps {
		out[i] = float64(v)
	}
	return out
}
