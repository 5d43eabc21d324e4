package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/api/wire"
	"github.com/canaryd/canaryd/internal/control"
	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/judge"
	"github.com/canaryd/canaryd/internal/release"
	"github.com/canaryd/canaryd/internal/store"
)

// Releases is what the release routes need of the release controller
// (*release.Controller). Its methods work on any replica, through the
// store.
type Releases interface {
	List(ctx context.Context, service string, limit int) ([]release.Status, error)
	Live(ctx context.Context, service string) (release.Status, error)
	// Abort and Promote act through plane (which carries If-Match).
	Abort(ctx context.Context, plane *control.Plane, actor control.Actor, service, reason string) (event.Event, error)
	Promote(ctx context.Context, plane *control.Plane, actor control.Actor, service, reason string, force bool) (event.Event, error)
	Approve(ctx context.Context, actor control.Actor, service, reason string) (event.Event, error)
}

// errNoController answers release routes when the server runs without a
// release controller.
var errNoController = &apiError{status: 503, msg: "this server runs no release controller"}

func (a *api) listReleases(c *call) (any, error) {
	if a.releases == nil {
		return nil, errNoController
	}
	q := c.r.URL.Query()
	service := q.Get("service")
	if service != "" {
		if err := checkID("service", service); err != nil {
			return nil, err
		}
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxPageSize {
			return nil, badRequest("limit", fmt.Sprintf("%q is not a page size from 1 to %d", v, store.MaxPageSize))
		}
		limit = n
	}
	sts, err := a.releases.List(c.r.Context(), service, limit)
	if err != nil {
		return nil, err
	}
	out := wire.ReleaseList{Releases: []wire.Release{}}
	for _, st := range sts {
		out.Releases = append(out.Releases, releaseOf(st, a.now()))
	}
	return out, nil
}

func (a *api) compare(c *call) (any, error) {
	if a.releases == nil {
		return nil, errNoController
	}
	st, err := a.releases.Live(c.r.Context(), c.path("service"))
	if errors.Is(err, release.ErrNoRelease) {
		return wire.Comparison{Service: c.path("service"), Outcome: "none", Metrics: []wire.Metric{}}, nil
	}
	if err != nil {
		return nil, err
	}
	return comparisonOf(st, a.now()), nil
}

func (a *api) abort(c *call) (any, error) {
	if a.releases == nil {
		return nil, errNoController
	}
	reason, err := a.reason(c)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(reason) == "" {
		return nil, badRequest("reason", "is required: say why the release is aborted")
	}
	ev, err := a.releases.Abort(c.r.Context(), c.plane, c.actor(), c.path("service"), reason)
	return a.result(c, ev, err)
}

func (a *api) approve(c *call) (any, error) {
	if a.releases == nil {
		return nil, errNoController
	}
	reason, err := a.reason(c)
	if err != nil {
		return nil, err
	}
	ev, err := a.releases.Approve(c.r.Context(), c.actor(), c.path("service"), reason)
	return a.result(c, ev, err)
}

// overrideOf checks a per-release policy from the API.
func overrideOf(p *wire.ReleasePolicy, build string) (*release.Override, error) {
	o := &release.Override{Build: build, Steps: p.Steps, OnInconclusive: p.OnInconclusive, AutoPromote: p.AutoPromote, ManualGates: p.ManualGates}
	for _, d := range []struct {
		field, v string
		to       *time.Duration
	}{{"policy.step_duration", p.StepDuration, &o.StepDuration}, {"policy.max_step_duration", p.MaxStepDuration, &o.MaxStepDuration}} {
		if d.v == "" {
			continue
		}
		v, err := time.ParseDuration(d.v)
		if err != nil || v <= 0 {
			return nil, badRequest(d.field, strconv.Quote(d.v)+` is not a positive duration (e.g. "1m")`)
		}
		*d.to = v
	}
	steps := p.Steps
	for i, g := range p.ManualGates {
		if len(steps) > 0 && !contains(steps, g) {
			return nil, badRequest(fmt.Sprintf("policy.manual_gates[%d]", i), fmt.Sprintf("%g%% is not one of the steps %v", g, steps))
		}
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return o, nil
}

func contains(xs []float64, x float64) bool {
	for _, v := range xs {
		if math.Abs(v-x) < 1e-9 {
			return true
		}
	}
	return false
}

// ---- conversions ----

func policyOf(p release.Policy) wire.ReleasePolicy {
	ap := p.AutoPromote
	return wire.ReleasePolicy{Steps: p.Steps, StepDuration: p.StepDuration.String(), MaxStepDuration: p.MaxStepDuration.String(),
		OnInconclusive: p.OnInconclusive, AutoPromote: &ap, ManualGates: p.ManualGates}
}

func releaseOf(st release.Status, now time.Time) wire.Release {
	r := st.Release
	out := wire.Release{ID: r.ID, Service: r.Service, Build: r.Build, Status: string(r.Status), Step: r.Step, Steps: st.Steps,
		Traffic: r.Traffic, Reason: r.Reason, StartedAt: r.StartedAt, UpdatedAt: r.UpdatedAt,
		UsersExposed: st.Exposed, UsersHarmed: st.Harmed, Held: st.Held, Waiting: st.Waiting, Forced: st.Forced,
		Policy: policyOf(st.Policy)}
	if out.Steps == nil {
		out.Steps = []float64{}
	}
	end := now
	if !r.EndedAt.IsZero() {
		t := r.EndedAt
		out.EndedAt, end = &t, t
	}
	if !r.StartedAt.IsZero() {
		out.Duration = end.Sub(r.StartedAt).Round(time.Second).String()
	}
	if st.Verdict != nil {
		out.Verdict = string(st.Verdict.Outcome)
	}
	for _, a := range st.Approvals {
		out.Approvals = append(out.Approvals, wire.Approval{Traffic: a.Traffic, Actor: a.Actor, Reason: a.Reason, At: a.At})
	}
	for _, g := range st.Gates {
		out.Gates = append(out.Gates, wire.GateResult{Gate: g.Gate, Point: string(g.Point), Allowed: g.Allowed, Status: g.Status,
			Message: g.Message, OnDeny: g.OnDeny, At: g.At})
	}
	for _, m := range st.Checks {
		out.Checks = append(out.Checks, wire.MetricResult{Name: m.Name, Outcome: string(m.Outcome), Condition: m.Condition,
			Canary: m.Canary, Stable: m.Stable, Limit: m.Limit, Message: m.Message, At: m.At})
	}
	if lt := st.LoadTest; lt != nil {
		out.LoadTest = &wire.LoadTest{Traffic: lt.Traffic, Target: lt.Target, Rate: lt.Rate, Started: lt.Started, Sent: lt.Sent,
			Dropped: lt.Dropped, Classes: lt.Classes, Builds: lt.Builds, Done: lt.Done, Why: lt.Why, Error: lt.Error}
	}
	return out
}

func rate(x, n uint64) float64 {
	if n == 0 {
		return 0
	}
	return float64(x) / float64(n)
}

// comparisonOf lays a release's state out per metric: the judge's
// reasons (errors, latency, guardrails), then the custom checks.
func comparisonOf(st release.Status, now time.Time) wire.Comparison {
	rel := releaseOf(st, now)
	out := wire.Comparison{Service: rel.Service, Active: true, Release: &rel, Outcome: string(judge.Inconclusive), StepStart: st.StepStart, Metrics: []wire.Metric{}}
	t := st.Totals
	if v := st.Verdict; v != nil {
		out.Outcome, out.At = string(v.Outcome), v.At
		for _, r := range v.Reasons {
			m := wire.Metric{Metric: r.Metric, Kind: "guardrail", Unit: "value", Estimate: r.Estimate, Lower: r.Lower, Upper: r.Upper,
				Limit: r.Limit, EValue: r.EValue, Threshold: r.Threshold, Samples: r.CanarySamples, Result: string(r.Outcome), Message: r.Message}
			switch {
			case r.Metric == judge.MetricErrors:
				m.Kind, m.Unit = "judge", "rate"
				m.Stable, m.Canary = rate(t.StableErrors, t.StableRequests), rate(t.CanaryErrors, t.CanaryRequests)
				m.Difference = m.Canary - m.Stable
			case r.Metric == judge.MetricLatency:
				m.Kind, m.Unit = "judge", "seconds"
				if l := st.Latency; l != nil {
					m.Stable, m.Canary = l.StableP99.Seconds(), l.CanaryP99.Seconds()
					m.Difference = m.Canary - m.Stable
				}
			case r.Metric == judge.GuardUsersHarmed:
				m.Unit, m.Canary = "users", r.Estimate
			case r.Metric == judge.GuardMaxErrors:
				m.Unit, m.Canary = "requests", r.Estimate
			default:
				m.Unit, m.Canary = "rate", r.Estimate
			}
			out.Metrics = append(out.Metrics, m)
		}
	}
	for _, c := range st.Checks {
		m := wire.Metric{Metric: c.Name, Kind: "check", Unit: "value", Canary: c.Canary, Limit: c.Limit, Result: string(c.Outcome), Message: c.Message}
		if c.Stable != nil {
			m.Stable, m.Difference = *c.Stable, c.Canary-*c.Stable
		}
		if ev := c.Evidence; ev != nil { // a gauge or counter judged sequentially
			m.Estimate, m.Lower, m.Upper, m.Limit = ev.Estimate, ev.Lower, ev.Upper, ev.Tolerance
			m.EValue, m.Threshold, m.Samples = ev.EValue, ev.Threshold, ev.Samples
		}
		out.Metrics = append(out.Metrics, m)
	}
	return out
}

// controller says who holds the release controller's lease and how far
// each replica has published the active releases' traffic.
func (a *api) controller(c *call) (any, error) {
	ctx := c.r.Context()
	now := a.now()
	out := wire.Controller{Replicas: []wire.ReplicaPublication{}}
	err := a.store.View(ctx, func(r store.Reader) error {
		l, err := r.GetLease(ctx, release.LeaseName)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			if l.HeldBy(l.Holder, now) {
				out.Holder = l.Holder
			}
			out.Epoch, out.AcquiredAt, out.ExpiresAt = l.Epoch, &l.AcquiredAt, &l.ExpiresAt
		}
		recs, err := r.ListReleases(ctx, store.ReleaseFilter{ActiveOnly: true})
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, rec := range recs {
			if seen[rec.Service] {
				continue
			}
			seen[rec.Service] = true
			marks, err := r.ListAnalysisMarks(ctx, rec.Service)
			if err != nil {
				return err
			}
			for _, m := range marks {
				out.Replicas = append(out.Replicas, wire.ReplicaPublication{Replica: m.Replica, Service: m.Service,
					Through: time.Unix(m.Through, 0).UTC(), At: m.At, Live: !m.At.Before(now.Add(-release.PeerTimeout)),
					Leader: m.Replica == out.Holder})
			}
		}
		return nil
	})
	slices.SortFunc(out.Replicas, func(x, y wire.ReplicaPublication) int {
		return cmp.Or(strings.Compare(x.Service, y.Service), strings.Compare(x.Replica, y.Replica))
	})
	return out, err
}
