package control

import (
	"context"
	"fmt"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/route/cohort"
	"github.com/canaryd/canaryd/internal/store"
)

// StartOptions modify StartCanary.
type StartOptions struct {
	// Traffic is the first percentage (0–100).
	Traffic float64
	// Replace allows starting while another canary exists: the old canary
	// goes back to deployed first.
	Replace bool
	// FreshCohort picks a window sharing no bucket with any earlier canary
	// of the service, so users a bad canary hurt are not picked again.
	FreshCohort bool
	Reason      string
}

// SetStable makes a build the service's first stable build. A service that
// already has one changes stable only by promoting a canary.
func (p *Plane) SetStable(ctx context.Context, actor Actor, service, id, reason string) (event.Event, error) {
	const op = "set stable"
	return p.changeService(ctx, actor, service, func(tx store.Tx) (*event.Event, error) {
		l, err := load(ctx, tx, service)
		if err != nil {
			return nil, err
		}
		if l.stable != nil {
			return nil, illegal(op, "service %q already has stable build %q", "start build "+id+" as a canary and promote it", service, l.stable.ID)
		}
		b, err := transition(ctx, tx, op, service, id, store.StateStable, "only a deployed build can become the first stable")
		if err != nil {
			return nil, err
		}
		return &event.Event{Service: service, Type: event.StableSet, Build: id, Reason: reason,
			Before: mustJSON(view(l.svc, "")), After: mustJSON(view(l.svc, id)),
			Details: map[string]string{"version": b.Version}}, nil
	})
}

// StartCanary makes a deployed build the service's canary at o.Traffic.
func (p *Plane) StartCanary(ctx context.Context, actor Actor, service, id string, o StartOptions) (event.Event, error) {
	const op = "start canary"
	return p.changeService(ctx, actor, service, func(tx store.Tx) (*event.Event, error) {
		if err := checkPercent(op, o.Traffic); err != nil {
			return nil, err
		}
		l, err := load(ctx, tx, service)
		if err != nil {
			return nil, err
		}
		if l.stable == nil {
			return nil, illegal(op, "service %q has no stable build to compare with", "make a build stable first (builds set-stable)", service)
		}
		b, err := getBuild(ctx, tx, service, id)
		if err != nil {
			return nil, err
		}
		if l.canary != nil && l.canary.ID == id {
			return nil, illegal(op, "build %q is already the canary", "change its traffic instead", id)
		}
		if b.State != store.StateDeployed {
			return nil, illegal(op, "build %q is %s", "only a deployed build can become the canary", id, b.State)
		}
		before := view(l.svc, l.stable.ID)
		svc := l.svc
		if l.canary != nil {
			if !o.Replace {
				return nil, illegal(op, "service %q already has canary %q", "roll it back first, or start with replace", service, l.canary.ID)
			}
			old := *l.canary
			old.State = store.StateDeployed
			if _, err := tx.PutBuild(ctx, old); err != nil {
				return nil, err
			}
		}
		need := max(windowLen(o.Traffic), 1)
		if o.FreshCohort {
			off, err := freshOffset(svc.UsedWindows, need)
			if err != nil {
				return nil, err
			}
			svc.WindowOffset = off
		}
		svc.UsedWindows = append(svc.UsedWindows, store.Window{Start: svc.WindowOffset, Len: windowLen(o.Traffic)})
		svc.Canary, svc.Traffic, svc.Paused = id, o.Traffic, false
		if _, err := tx.PutService(ctx, svc); err != nil {
			return nil, err
		}
		b.State = store.StateCanary
		if _, err := tx.PutBuild(ctx, b); err != nil {
			return nil, err
		}
		return &event.Event{Service: service, Type: event.CanaryStarted, Build: id, Reason: o.Reason,
			Before: mustJSON(before), After: mustJSON(view(svc, l.stable.ID)),
			Details: map[string]string{"version": b.Version, "stable": l.stable.ID, "stable_version": l.stable.Version,
				"traffic": fmtPct(o.Traffic), "changelog": b.Changelog}}, nil
	})
}

// SetTraffic moves the canary's share. Raising it only adds users to the
// cohort; lowering it only removes them.
func (p *Plane) SetTraffic(ctx context.Context, actor Actor, service string, traffic float64, reason string) (event.Event, error) {
	const op = "set traffic"
	return p.changeService(ctx, actor, service, func(tx store.Tx) (*event.Event, error) {
		if err := checkPercent(op, traffic); err != nil {
			return nil, err
		}
		l, err := withCanary(ctx, tx, op, service, "start a canary first")
		if err != nil {
			return nil, err
		}
		before := view(l.svc, l.stableID())
		svc := l.svc
		svc.Traffic = traffic
		if n := len(svc.UsedWindows); n > 0 && svc.UsedWindows[n-1].Start == svc.WindowOffset {
			svc.UsedWindows[n-1].Len = max(svc.UsedWindows[n-1].Len, windowLen(traffic))
		}
		if _, err := tx.PutService(ctx, svc); err != nil {
			return nil, err
		}
		return &event.Event{Service: service, Type: event.TrafficChanged, Build: l.canary.ID, Reason: reason,
			Before: mustJSON(before), After: mustJSON(view(svc, l.stableID())),
			Details: map[string]string{"version": l.canary.Version, "traffic": fmtPct(traffic), "previous_traffic": fmtPct(before.Traffic)}}, nil
	})
}

// Promote makes the canary stable; the old stable goes back to deployed.
func (p *Plane) Promote(ctx context.Context, actor Actor, service, reason string) (event.Event, error) {
	const op = "promote"
	return p.changeService(ctx, actor, service, func(tx store.Tx) (*event.Event, error) {
		l, err := withCanary(ctx, tx, op, service, "start a canary first")
		if err != nil {
			return nil, err
		}
		before := view(l.svc, l.stableID())
		if l.stable != nil {
			old := *l.stable
			old.State = store.StateDeployed
			if _, err := tx.PutBuild(ctx, old); err != nil {
				return nil, err
			}
		}
		nb := *l.canary
		nb.State = store.StateStable
		if _, err := tx.PutBuild(ctx, nb); err != nil {
			return nil, err
		}
		svc := l.svc
		svc.Canary, svc.Traffic, svc.Paused = "", 0, false
		if _, err := tx.PutService(ctx, svc); err != nil {
			return nil, err
		}
		return &event.Event{Service: service, Type: event.Promoted, Build: nb.ID, Reason: reason,
			Before: mustJSON(before), After: mustJSON(view(svc, nb.ID)),
			Details: map[string]string{"version": nb.Version, "previous_stable": before.Stable, "changelog": nb.Changelog}}, nil
	})
}

// Rollback sends every user back to stable: traffic 0, the canary back to
// deployed.
func (p *Plane) Rollback(ctx context.Context, actor Actor, service, reason string) (event.Event, error) {
	const op = "rollback"
	return p.changeService(ctx, actor, service, func(tx store.Tx) (*event.Event, error) {
		l, err := withCanary(ctx, tx, op, service, "nothing to roll back")
		if err != nil {
			return nil, err
		}
		before := view(l.svc, l.stableID())
		c := *l.canary
		c.State = store.StateDeployed
		if _, err := tx.PutBuild(ctx, c); err != nil {
			return nil, err
		}
		svc := l.svc
		svc.Canary, svc.Traffic, svc.Paused = "", 0, false
		if _, err := tx.PutService(ctx, svc); err != nil {
			return nil, err
		}
		return &event.Event{Service: service, Type: event.RolledBack, Severity: event.Critical, Build: c.ID, Reason: reason,
			Before: mustJSON(before), After: mustJSON(view(svc, l.stableID())),
			Details: map[string]string{"version": c.Version, "traffic": fmtPct(before.Traffic)}}, nil
	})
}

// SetPaused pauses or resumes the release controller's steps for a service.
func (p *Plane) SetPaused(ctx context.Context, actor Actor, service string, paused bool, reason string) (event.Event, error) {
	op, typ := "resume", event.Resumed
	if paused {
		op, typ = "pause", event.Paused
	}
	return p.changeService(ctx, actor, service, func(tx store.Tx) (*event.Event, error) {
		l, err := withCanary(ctx, tx, op, service, "start a canary first")
		if err != nil {
			return nil, err
		}
		if l.svc.Paused == paused {
			return nil, illegal(op, "the release of %q is already %s", "", service, map[bool]string{true: "paused", false: "running"}[paused])
		}
		before := view(l.svc, l.stableID())
		svc := l.svc
		svc.Paused = paused
		if _, err := tx.PutService(ctx, svc); err != nil {
			return nil, err
		}
		return &event.Event{Service: service, Type: typ, Build: l.canary.ID, Reason: reason,
			Before: mustJSON(before), After: mustJSON(view(svc, l.stableID()))}, nil
	})
}

// DeleteBuild retires a deployed build. The stable and the canary cannot be
// deleted.
func (p *Plane) DeleteBuild(ctx context.Context, actor Actor, service, id, reason string) (event.Event, error) {
	const op = "delete build"
	return p.changeService(ctx, actor, service, func(tx store.Tx) (*event.Event, error) {
		b, err := transition(ctx, tx, op, service, id, store.StateDeleted,
			"only a deployed build can be deleted: promote another build or roll this one back first")
		if err != nil {
			return nil, err
		}
		return &event.Event{Service: service, Type: event.BuildDeleted, Build: id, Reason: reason,
			Details: map[string]string{"version": b.Version}}, nil
	})
}

// FreshCohort moves the service's window to buckets no earlier canary used.
// It is refused while a canary takes traffic: that would swap its users.
func (p *Plane) FreshCohort(ctx context.Context, actor Actor, service, reason string) (event.Event, error) {
	const op = "fresh cohort"
	return p.changeService(ctx, actor, service, func(tx store.Tx) (*event.Event, error) {
		l, err := load(ctx, tx, service)
		if err != nil {
			return nil, err
		}
		if l.canary != nil && l.svc.Traffic > 0 {
			return nil, illegal(op, "canary %q takes %s of traffic", "roll it back or set its traffic to 0 first", l.canary.ID, fmtPct(l.svc.Traffic))
		}
		off, err := freshOffset(l.svc.UsedWindows, 1)
		if err != nil {
			return nil, err
		}
		before := view(l.svc, l.stableID())
		svc := l.svc
		svc.WindowOffset = off
		if _, err := tx.PutService(ctx, svc); err != nil {
			return nil, err
		}
		return &event.Event{Service: service, Type: event.CohortRefreshed, Reason: reason,
			Before: mustJSON(before), After: mustJSON(view(svc, l.stableID()))}, nil
	})
}

// ResetCohorts forgets the windows of earlier canaries, so fresh cohorts
// may use every bucket again. The current canary's window is kept.
func (p *Plane) ResetCohorts(ctx context.Context, actor Actor, service, reason string) (event.Event, error) {
	return p.changeService(ctx, actor, service, func(tx store.Tx) (*event.Event, error) {
		l, err := load(ctx, tx, service)
		if err != nil {
			return nil, err
		}
		svc := l.svc
		used := len(svc.UsedWindows)
		svc.UsedWindows = nil
		if l.canary != nil {
			svc.UsedWindows = []store.Window{{Start: svc.WindowOffset, Len: windowLen(svc.Traffic)}}
		}
		if _, err := tx.PutService(ctx, svc); err != nil {
			return nil, err
		}
		return &event.Event{Service: service, Type: event.CohortRefreshed, Reason: reason,
			Details: map[string]string{"forgotten_windows": fmt.Sprint(used)}}, nil
	})
}

// withCanary loads a service for an operation that needs its canary, and
// refuses op when there is none; legal says what to do instead.
func withCanary(ctx context.Context, tx store.Tx, op, service, legal string) (loaded, error) {
	l, err := load(ctx, tx, service)
	if err == nil && l.canary == nil {
		err = illegal(op, "service %q has no canary", legal, service)
	}
	return l, err
}

// transition moves a deployed build to state to. A build in any other state
// is illegal for op; legal says what would be.
func transition(ctx context.Context, tx store.Tx, op, service, id string, to store.BuildState, legal string) (store.Build, error) {
	b, err := getBuild(ctx, tx, service, id)
	if err != nil {
		return b, err
	}
	if b.State != store.StateDeployed {
		return b, illegal(op, "build %q is %s", legal, id, b.State)
	}
	b.State = to
	return tx.PutBuild(ctx, b)
}

// ErrCohortExhausted is returned when no fresh window is left.
var ErrCohortExhausted = fmt.Errorf("no unused cohort buckets are left")

// freshOffset returns the first bucket after the latest used window from
// which need buckets are free of every used window.
func freshOffset(used []store.Window, need int) (int, error) {
	taken := make([]bool, cohort.Buckets)
	n := 0
	for _, w := range used {
		for i := 0; i < w.Len && i < cohort.Buckets; i++ {
			b := (w.Start + i) % cohort.Buckets
			if !taken[b] {
				taken[b] = true
				n++
			}
		}
	}
	start := 0
	if k := len(used); k > 0 {
		start = (used[k-1].Start + used[k-1].Len) % cohort.Buckets
	}
	for i := 0; i < cohort.Buckets; i++ {
		off := (start + i) % cohort.Buckets
		ok := true
		for j := 0; j < need; j++ {
			if taken[(off+j)%cohort.Buckets] {
				ok = false
				break
			}
		}
		if ok {
			return off, nil
		}
	}
	return 0, &IllegalError{Op: "fresh cohort",
		Why:   fmt.Sprintf("%v: earlier canaries used %d of %d buckets and no run of %d free buckets is left", ErrCohortExhausted, n, cohort.Buckets, need),
		Legal: "reset the cohort history (canaryctl cohort reset SERVICE) to reuse users"}
}

func checkPercent(op string, v float64) error {
	if v < 0 || v > 100 || v != v {
		return &FieldError{Field: "traffic", Msg: fmt.Sprintf("%v is outside 0..100", v)}
	}
	return nil
}

// FieldError is a bad value in a request; the API answers it with 400.
type FieldError struct{ Field, Msg string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fmtPct(v float64) string { return fmt.Sprintf("%g%%", v) }
