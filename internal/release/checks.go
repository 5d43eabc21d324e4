package release

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/release/source"
	"github.com/canaryd/canaryd/internal/store"
)

// checksOf builds the custom metric checks of a service's config. The
// config was validated, so a condition that does not parse cannot happen;
// it would be skipped.
func (c *Controller) checksOf(sc *config.Service) []checkSpec {
	var out []checkSpec
	for _, m := range sc.Release.Analysis.Metrics {
		cond, err := source.ParseCondition(m.Condition)
		if err != nil {
			continue
		}
		var src source.Source
		if m.Prometheus != nil {
			src = &source.Prometheus{Address: m.Prometheus.Address, Query: m.Prometheus.Query, Headers: m.Prometheus.Headers, Client: c.o.HTTPClient}
		} else {
			src = &source.HTTPJSON{URL: m.HTTP.URL, Path: m.HTTP.Path, Headers: m.HTTP.Headers, Client: c.o.HTTPClient}
		}
		out = append(out, checkSpec{Check: source.Check{Name: m.Name, Source: src, Condition: cond, Timeout: m.Timeout.D()},
			interval: m.Interval.D(), limit: max(m.FailureLimit, 1), kind: m.Kind})
	}
	return out
}

type checkSpec struct {
	source.Check
	interval time.Duration
	limit    int
	kind     string // config.MetricThreshold, MetricGauge or MetricCounter
}

// sequentialKind reports whether a metric of kind accumulates evidence
// over the release instead of judging each evaluation on its own.
func sequentialKind(kind string) bool {
	return kind == config.MetricGauge || kind == config.MetricCounter
}

// runChecks evaluates the checks that are due, concurrently, and records
// their results in the release state. At 100 % traffic, checks against
// stable are not evaluated: stable has no users left to compare with.
func (c *Controller) runChecks(ctx context.Context, sc *config.Service, rel *running, atFull bool) {
	specs := c.checksOf(sc)
	if len(specs) == 0 {
		rel.st.Checks = nil
		return
	}
	now := c.o.Now()
	if rel.st.CheckDue == nil {
		rel.st.CheckDue = map[string]time.Time{}
	}
	if rel.st.CheckFails == nil {
		rel.st.CheckFails = map[string]int{}
	}
	stable := stableOf(c, sc.Name)
	var due []checkSpec
	for _, s := range specs {
		if atFull && s.Condition.Stable {
			continue
		}
		if t, ok := rel.st.CheckDue[s.Name]; ok && now.Before(t) {
			continue
		}
		due = append(due, s)
	}
	results := make([]source.Result, len(due))
	var wg sync.WaitGroup
	for i, s := range due {
		wg.Go(func() {
			results[i] = s.Evaluate(ctx, sc.Name, rel.rec.Build, stable, s.interval, now)
		})
	}
	wg.Wait()
	share, alpha := 0.0, rel.st.Policy.Judge.PassAlpha
	if alpha <= 0 {
		alpha = 0.05 // the judge's default pass budget
	}
	if slices.ContainsFunc(due, func(s checkSpec) bool { return s.kind == config.MetricCounter }) {
		share = trafficOf(c, sc.Name) / 100
	}
	for i, s := range due {
		r := results[i]
		if sequentialKind(s.kind) {
			if rel.st.Sequential == nil {
				rel.st.Sequential = map[string]*seqState{}
			}
			r = sequential(rel.st.Sequential, s.kind, s.Condition, r, share, alpha)
		}
		rel.st.CheckDue[s.Name] = now.Add(s.interval)
		if r.Outcome == source.Fail {
			rel.st.CheckFails[s.Name]++
		} else {
			rel.st.CheckFails[s.Name] = 0
		}
		if r.Outcome != source.Pass {
			c.o.Logger.Info("metric check not passing", "service", sc.Name, "release", rel.rec.ID, "check", s.Name, "outcome", string(r.Outcome), "message", r.Message)
		}
		replaced := false
		for k := range rel.st.Checks {
			if rel.st.Checks[k].Name == r.Name {
				rel.st.Checks[k], replaced = r, true
			}
		}
		if !replaced {
			rel.st.Checks = append(rel.st.Checks, r)
		}
	}
	// Forget results of checks no longer configured.
	kept := rel.st.Checks[:0]
	for _, r := range rel.st.Checks {
		for _, s := range specs {
			if s.Name == r.Name {
				kept = append(kept, r)
				break
			}
		}
	}
	rel.st.Checks = kept
	for name := range rel.st.Sequential {
		if !slices.ContainsFunc(specs, func(s checkSpec) bool { return s.Name == name && sequentialKind(s.kind) }) {
			delete(rel.st.Sequential, name)
		}
	}
}

// trafficOf returns the canary's share of the service now, in percent.
func trafficOf(c *Controller, service string) float64 {
	var traffic float64
	_ = c.o.Plane.Store().View(context.Background(), func(r store.Reader) error {
		svc, err := r.GetService(context.Background(), service)
		traffic = svc.Traffic
		return err
	})
	return traffic
}

// checkState says whether a check has failed the release (its failure
// limit reached: the reason, in numbers) and whether every check passes,
// as a step needs before it may advance. A check with no result yet, or an
// inconclusive one, holds the step: it can never let it pass.
func checkState(sc *config.Service, rel *running, atFull bool) (fail string, ok bool) {
	ok = true
	for _, m := range sc.Release.Analysis.Metrics {
		var r *source.Result
		for k := range rel.st.Checks {
			if rel.st.Checks[k].Name == m.Name {
				r = &rel.st.Checks[k]
			}
		}
		cond, _ := source.ParseCondition(m.Condition)
		if atFull && cond.Stable {
			continue
		}
		if r == nil || r.Outcome != source.Pass {
			ok = false
		}
		if r != nil && r.Outcome == source.Fail && rel.st.CheckFails[m.Name] >= max(m.FailureLimit, 1) {
			msg := r.Message
			if n := rel.st.CheckFails[m.Name]; n > 1 {
				msg = fmt.Sprintf("%s (%d evaluations in a row)", msg, n)
			}
			if fail != "" {
				fail += "; "
			}
			fail += msg
		}
	}
	return fail, ok
}
