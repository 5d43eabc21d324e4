package api

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/api/wire"
	"github.com/canaryd/canaryd/internal/control"
	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/release"
	"github.com/canaryd/canaryd/internal/route/cohort"
	"github.com/canaryd/canaryd/internal/store"
)

// ---- reads ----

func (a *api) listServices(c *call) (any, error) {
	ctx := c.r.Context()
	out := wire.ServiceList{Services: []wire.Service{}}
	err := a.store.View(ctx, func(r store.Reader) error {
		svcs, err := r.ListServices(ctx)
		if err != nil {
			return err
		}
		live, err := r.ListBuilds(ctx, store.BuildFilter{States: []store.BuildState{store.StateStable, store.StateCanary}})
		if err != nil {
			return err
		}
		for _, s := range svcs {
			out.Services = append(out.Services, serviceOf(s, live, false, a.now()))
		}
		return nil
	})
	return out, err
}

func (a *api) getService(c *call) (any, error) {
	return a.readService(c.r.Context(), c.path("service"), true)
}

// readService reads a service with its builds (withBuilds) or only its
// stable and canary.
func (a *api) readService(ctx context.Context, name string, withBuilds bool) (wire.Service, error) {
	var out wire.Service
	err := a.store.View(ctx, func(r store.Reader) error {
		s, err := r.GetService(ctx, name)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("service %q: %w", name, store.ErrNotFound)
			}
			return err
		}
		builds, err := r.ListBuilds(ctx, store.BuildFilter{Service: name})
		if err != nil {
			return err
		}
		out = serviceOf(s, builds, withBuilds, a.now())
		return nil
	})
	return out, err
}

func (a *api) listBuilds(c *call) (any, error) {
	ctx := c.r.Context()
	q := c.r.URL.Query()
	f := store.BuildFilter{Service: q.Get("service")}
	if f.Service != "" {
		if err := checkID("service", f.Service); err != nil {
			return nil, err
		}
	}
	for _, s := range list(q, "state") {
		st := store.BuildState(s)
		if !st.Valid() {
			return nil, badRequest("state", strconv.Quote(s)+" is not a build state (deployed, canary, stable, deleted)")
		}
		f.States = append(f.States, st)
	}
	if len(f.States) == 0 {
		f.States = []store.BuildState{store.StateDeployed, store.StateCanary, store.StateStable}
	}
	out := wire.BuildList{Builds: []wire.Build{}}
	err := a.store.View(ctx, func(r store.Reader) error {
		bs, err := r.ListBuilds(ctx, f)
		for _, b := range bs {
			out.Builds = append(out.Builds, buildOf(b, a.now()))
		}
		return err
	})
	return out, err
}

func (a *api) getBuild(c *call) (any, error) {
	ctx := c.r.Context()
	var out wire.Build
	err := a.store.View(ctx, func(r store.Reader) error {
		b, err := r.GetBuild(ctx, c.path("service"), c.path("build"))
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("build %q of service %q: %w", c.path("build"), c.path("service"), store.ErrNotFound)
		}
		out = buildOf(b, a.now())
		return err
	})
	return out, err
}

func (a *api) listEvents(c *call) (any, error) {
	q := c.r.URL.Query()
	eq, err := eventQuery(q)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"since", "until"} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil, badRequest(name, strconv.Quote(v)+" is not an RFC 3339 time (e.g. 2026-11-29T16:00:00Z)")
			}
			if name == "since" {
				eq.Since = t
			} else {
				eq.Until = t
			}
		}
	}
	if eq.BeforeID, err = intParam(q, "before_id"); err != nil {
		return nil, err
	}
	switch o := q.Get("order"); o {
	case "", "asc":
	case "desc":
		eq.Desc = true
	default:
		return nil, badRequest("order", strconv.Quote(o)+" is not asc or desc")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxPageSize {
			return nil, badRequest("limit", fmt.Sprintf("%q is not a page size from 1 to %d", v, store.MaxPageSize))
		}
		eq.Limit = n
	}
	limit := eq.Limit
	if limit <= 0 {
		limit = store.DefaultPageSize
	}
	ctx := c.r.Context()
	out := wire.EventPage{Events: []event.Event{}}
	err = a.store.View(ctx, func(r store.Reader) error {
		evs, err := r.ListEvents(ctx, eq)
		out.Events = append(out.Events, evs...)
		return err
	})
	if n := len(out.Events); n == limit {
		if eq.Desc {
			out.NextBeforeID = out.Events[n-1].ID
		} else {
			out.NextAfterID = out.Events[n-1].ID
		}
	}
	return out, err
}

// eventQuery reads the filters the event list and the stream share.
func eventQuery(q url.Values) (store.EventQuery, error) {
	var eq store.EventQuery
	for _, name := range []string{"service", "build"} {
		if v := q.Get(name); v != "" {
			if err := checkID(name, v); err != nil {
				return eq, err
			}
		}
	}
	eq.Service, eq.Build = q.Get("service"), q.Get("build")
	for _, t := range list(q, "type") {
		if strings.Trim(t, "abcdefghijklmnopqrstuvwxyz._") != "" || len(t) > 64 {
			return eq, badRequest("type", strconv.Quote(t)+" is not an event type (e.g. release.promoted)")
		}
		eq.Types = append(eq.Types, event.Type(t))
	}
	var err error
	eq.AfterID, err = intParam(q, "after_id")
	return eq, err
}

// list reads a parameter given several times or comma-separated.
func list(q url.Values, name string) []string {
	var out []string
	for _, v := range q[name] {
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func intParam(q url.Values, name string) (int64, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest(name, strconv.Quote(v)+" is not a non-negative integer")
	}
	return n, nil
}

// ---- builds ----

func (a *api) register(c *call) (any, error) {
	var req wire.RegisterRequest
	if err := decode(c.body, &req, false); err != nil {
		return nil, err
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d < 0 {
			return nil, badRequest("ttl", strconv.Quote(req.TTL)+` is not a duration (e.g. "30s"; "0s" never expires)`)
		}
		ttl = d
	}
	b, err := c.plane.Register(c.r.Context(), c.actor(), control.BuildSpec{Service: c.path("service"), ID: req.ID, Version: req.Version,
		Labels: req.Labels, Changelog: req.Changelog, Endpoints: req.Endpoints, TTL: ttl})
	if err != nil {
		return nil, err
	}
	return buildOf(b, a.now()), nil
}

func endpointOf(c *call) (string, error) {
	var req wire.EndpointRequest
	if err := decode(c.body, &req, false); err != nil {
		return "", err
	}
	if req.Endpoint == "" {
		return "", badRequest("endpoint", "is required (host:port)")
	}
	return req.Endpoint, nil
}

func (a *api) heartbeat(c *call) (any, error) {
	ep, err := endpointOf(c)
	if err != nil {
		return nil, err
	}
	if err := c.plane.Heartbeat(c.r.Context(), c.path("service"), c.path("build"), ep); err != nil {
		return nil, err
	}
	return wire.Empty{OK: true}, nil
}

func (a *api) deregister(c *call) (any, error) {
	ep, err := endpointOf(c)
	if err != nil {
		return nil, err
	}
	if err := c.plane.Deregister(c.r.Context(), c.actor(), c.path("service"), c.path("build"), ep); err != nil {
		return nil, err
	}
	return wire.Empty{OK: true}, nil
}

// ---- lifecycle: each answers a wire.Result ----

// result reads the service after an operation that recorded ev. The
// operation is already applied, so a failed read is logged and answered
// with the event alone rather than as an error a client would retry.
func (a *api) result(c *call, ev event.Event, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	name := c.path("service")
	s, rerr := a.readService(context.WithoutCancel(c.r.Context()), name, false)
	if rerr != nil {
		a.log.Warn("admin api: reading the service after a change failed", "service", name, "err", rerr)
		s = wire.Service{Name: name}
	}
	return wire.Result{Event: ev, Service: s}, nil
}

func (a *api) reason(c *call) (string, error) {
	var req wire.ReasonRequest
	err := decode(c.body, &req, true)
	return req.Reason, err
}

func (a *api) setStable(c *call) (any, error) {
	var req wire.SetStableRequest
	if err := decode(c.body, &req, false); err != nil {
		return nil, err
	}
	if err := checkID("build", req.Build); err != nil {
		return nil, err
	}
	ev, err := c.plane.SetStable(c.r.Context(), c.actor(), c.path("service"), req.Build, req.Reason)
	return a.result(c, ev, err)
}

func (a *api) startCanary(c *call) (any, error) {
	var req wire.StartCanaryRequest
	if err := decode(c.body, &req, false); err != nil {
		return nil, err
	}
	if err := checkID("build", req.Build); err != nil {
		return nil, err
	}
	if err := checkPercent(req.Traffic); err != nil {
		return nil, err
	}
	var override *release.Override
	if req.Policy != nil {
		o, err := overrideOf(req.Policy, req.Build)
		if err != nil {
			return nil, err
		}
		override = o
	}
	ctx := c.r.Context()
	// The override is stored before the canary starts, so the controller
	// finds it when the release begins; a start without one clears any
	// left over. A failed start removes it again.
	if override != nil || a.releases != nil {
		if err := release.SetOverride(ctx, a.store, c.actor(), c.path("service"), override); err != nil {
			return nil, err
		}
	}
	ev, err := c.plane.StartCanary(ctx, c.actor(), c.path("service"), req.Build,
		control.StartOptions{Traffic: req.Traffic, Replace: req.Replace, FreshCohort: req.FreshCohort, Reason: req.Reason})
	if err != nil && override != nil {
		if derr := release.SetOverride(context.WithoutCancel(ctx), a.store, c.actor(), c.path("service"), nil); derr != nil {
			a.log.Warn("admin api: removing the policy override of a failed start failed", "service", c.path("service"), "err", derr)
		}
	}
	return a.result(c, ev, err)
}

func (a *api) setTraffic(c *call) (any, error) {
	var req wire.TrafficRequest
	if err := decode(c.body, &req, false); err != nil {
		return nil, err
	}
	if req.Traffic == nil {
		return nil, badRequest("traffic", "is required (a percentage from 0 to 100)")
	}
	if err := checkPercent(*req.Traffic); err != nil {
		return nil, err
	}
	ev, err := c.plane.SetTraffic(c.r.Context(), c.actor(), c.path("service"), *req.Traffic, req.Reason)
	return a.result(c, ev, err)
}

func checkPercent(v float64) error {
	if !(v >= 0 && v <= 100) {
		return badRequest("traffic", strconv.FormatFloat(v, 'g', -1, 64)+" is not a percentage from 0 to 100")
	}
	return nil
}

// reasonOp adapts the operations that take only a reason.
func (a *api) reasonOp(c *call, do func(ctx context.Context, p *control.Plane, reason string) (event.Event, error)) (any, error) {
	reason, err := a.reason(c)
	if err != nil {
		return nil, err
	}
	ev, err := do(c.r.Context(), c.plane, reason)
	return a.result(c, ev, err)
}

func (a *api) promote(c *call) (any, error) {
	var req wire.PromoteRequest
	if err := decode(c.body, &req, true); err != nil {
		return nil, err
	}
	if req.Force && strings.TrimSpace(req.Reason) == "" {
		return nil, badRequest("reason", "is required with force: say why the analysis is skipped")
	}
	if a.releases == nil {
		ev, err := c.plane.Promote(c.r.Context(), c.actor(), c.path("service"), req.Reason)
		return a.result(c, ev, err)
	}
	ev, err := a.releases.Promote(c.r.Context(), c.plane, c.actor(), c.path("service"), req.Reason, req.Force)
	return a.result(c, ev, err)
}

func (a *api) rollback(c *call) (any, error) {
	return a.reasonOp(c, func(ctx context.Context, p *control.Plane, reason string) (event.Event, error) {
		return p.Rollback(ctx, c.actor(), c.path("service"), reason)
	})
}

func (a *api) pause(c *call) (any, error) {
	return a.reasonOp(c, func(ctx context.Context, p *control.Plane, reason string) (event.Event, error) {
		return p.SetPaused(ctx, c.actor(), c.path("service"), true, reason)
	})
}

func (a *api) resume(c *call) (any, error) {
	return a.reasonOp(c, func(ctx context.Context, p *control.Plane, reason string) (event.Event, error) {
		return p.SetPaused(ctx, c.actor(), c.path("service"), false, reason)
	})
}

func (a *api) freshCohort(c *call) (any, error) {
	return a.reasonOp(c, func(ctx context.Context, p *control.Plane, reason string) (event.Event, error) {
		return p.FreshCohort(ctx, c.actor(), c.path("service"), reason)
	})
}

func (a *api) resetCohorts(c *call) (any, error) {
	return a.reasonOp(c, func(ctx context.Context, p *control.Plane, reason string) (event.Event, error) {
		return p.ResetCohorts(ctx, c.actor(), c.path("service"), reason)
	})
}

func (a *api) deleteBuild(c *call) (any, error) {
	ev, err := c.plane.DeleteBuild(c.r.Context(), c.actor(), c.path("service"), c.path("build"), c.r.URL.Query().Get("reason"))
	return a.result(c, ev, err)
}

// ---- conversions ----

func buildOf(b store.Build, now time.Time) wire.Build {
	out := wire.Build{Service: b.Service, ID: b.ID, Version: b.Version, Labels: b.Labels, Changelog: b.Changelog,
		State: string(b.State), Endpoints: []wire.Endpoint{}, RegisteredBy: b.RegisteredBy, RegisteredAt: b.RegisteredAt,
		UpdatedAt: b.UpdatedAt, Revision: b.Revision}
	for _, e := range b.Endpoints {
		we := wire.Endpoint{Addr: e.Addr, LastHeartbeat: e.LastHeartbeat, Alive: e.Alive(now)}
		if e.TTL > 0 {
			we.TTL = e.TTL.String()
		}
		out.Endpoints = append(out.Endpoints, we)
	}
	return out
}

// serviceOf renders s; builds may hold other services' builds (only s's
// are used). withBuilds lists s's builds too.
func serviceOf(s store.Service, builds []store.Build, withBuilds bool, now time.Time) wire.Service {
	out := wire.Service{Name: s.Name, Traffic: s.Traffic, WindowOffset: s.WindowOffset, Paused: s.Paused,
		UsedBuckets: usedBuckets(s.UsedWindows), UpdatedAt: s.UpdatedAt, Revision: s.Revision}
	for _, b := range builds {
		if b.Service != s.Name {
			continue
		}
		switch b.State {
		case store.StateStable:
			out.Stable, out.StableVersion = b.ID, b.Version
		case store.StateCanary:
			out.Canary, out.CanaryVersion = b.ID, b.Version
		}
		if withBuilds {
			out.Builds = append(out.Builds, buildOf(b, now))
		}
	}
	if out.Canary == "" {
		out.Traffic = 0
	}
	if withBuilds && out.Builds == nil {
		out.Builds = []wire.Build{}
	}
	return out
}

func usedBuckets(ws []store.Window) int {
	taken := make([]bool, cohort.Buckets)
	n := 0
	for _, w := range ws {
		for i := 0; i < w.Len && i < cohort.Buckets; i++ {
			if b := (w.Start + i) % cohort.Buckets; !taken[b] {
				taken[b] = true
				n++
			}
		}
	}
	return n
}
