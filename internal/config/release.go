package config

import (
	"fmt"
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
		} else if _, err := source.ParseCondition(m.Condition); err != nil {
			p.add(mp+".condition", "%v", err)
		}
		if m.Interval < 0 || m.Timeout < 0 || m.FailureLimit < 0 {
			p.add(mp, "interval, timeout and failure_limit must not be negative")
		}
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
