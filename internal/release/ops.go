package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/control"
	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/release/gate"
	"github.com/canaryd/canaryd/internal/store"
)

// The operations in this file are what operators ask of releases through
// the admin API. They work on any replica, leader or not: they read and
// write release records and act through the control plane, and the
// leader's controller picks their effect up from the store.

// ErrNoRelease matches (errors.Is) a service with no active release; it
// wraps store.ErrNotFound, so the API answers 404.
var ErrNoRelease = fmt.Errorf("no active release: %w", store.ErrNotFound)

// Event types the release package records beside the control plane's.
const (
	// EventHeld: the release waits at a manual gate for a person.
	EventHeld event.Type = "release.held"
	// EventApproved: a person approved the manual gate.
	EventApproved event.Type = "release.approved"
)

// List returns release records, newest first: every service's, or one
// service's when service is not "". limit ≤ 0 means the store's default
// page.
func (c *Controller) List(ctx context.Context, service string, limit int) ([]Status, error) {
	var recs []store.Release
	err := c.o.Plane.Store().View(ctx, func(r store.Reader) error {
		var err error
		recs, err = r.ListReleases(ctx, store.ReleaseFilter{Service: service, Limit: limit})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Status, 0, len(recs))
	for _, rec := range recs {
		if live, ok := c.Status(rec.Service); ok && live.Release.ID == rec.ID {
			out = append(out, live)
			continue
		}
		out = append(out, decode(rec))
	}
	return out, nil
}

// decode renders a stored record; an unreadable state leaves the
// decoded fields empty.
func decode(rec store.Release) Status {
	var st persisted
	st.Step = rec.Step - 1
	_ = json.Unmarshal(rec.State, &st)
	return statusOf(rec, st)
}

// Live returns the active release of a service: from this replica's
// memory when it runs it (current to the second), otherwise from its
// record (saved at least every 5 s by the leader). ErrNoRelease when the
// service has none.
func (c *Controller) Live(ctx context.Context, service string) (Status, error) {
	if st, ok := c.Status(service); ok {
		return st, nil
	}
	rec, err := c.active(ctx, service)
	if err != nil {
		return Status{}, err
	}
	return decode(rec), nil
}

// active reads the newest active release record of service.
func (c *Controller) active(ctx context.Context, service string) (store.Release, error) {
	var recs []store.Release
	err := c.o.Plane.Store().View(ctx, func(r store.Reader) error {
		if _, err := r.GetService(ctx, service); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("service %q: %w", service, store.ErrNotFound)
			}
			return err
		}
		var err error
		recs, err = r.ListReleases(ctx, store.ReleaseFilter{Service: service, ActiveOnly: true, Limit: 1})
		return err
	})
	if err != nil {
		return store.Release{}, err
	}
	if len(recs) == 0 {
		return store.Release{}, fmt.Errorf("service %q: %w", service, ErrNoRelease)
	}
	return recs[0], nil
}

// Abort rolls the canary back on an operator's word and closes its
// release as aborted, with the reason, which is required. The rollback
// is an ordinary rollback event; the closing adds a release.aborted
// event. The after_rollback gates are told. The rollback goes through
// plane (nil: the controller's own), so a plane from IfRevision applies
// the caller's precondition.
func (c *Controller) Abort(ctx context.Context, plane *control.Plane, actor control.Actor, service, reason string) (event.Event, error) {
	if plane == nil {
		plane = c.o.Plane
	}
	if strings.TrimSpace(reason) == "" {
		return event.Event{}, &control.FieldError{Field: "reason", Msg: "is required: say why the release is aborted"}
	}
	ev, err := plane.Rollback(ctx, actor, service, "aborted: "+reason)
	if err != nil {
		return ev, err
	}
	if err := c.close(ctx, actor, service, ev.Build, store.ReleaseAborted, "aborted by "+string(actor)+": "+reason, event.Aborted, func(st *persisted) {}); err != nil {
		c.o.Logger.Warn("abort: closing the release record failed", "service", service, "err", err.Error())
	}
	if sc := c.serviceConfig(service); sc != nil {
		rel := &running{rec: store.Release{ID: service + "-" + ev.Build, Service: service, Build: ev.Build}}
		if rec, err := c.latestOf(ctx, service, ev.Build); err == nil {
			rel.rec, rel.st = rec, decodeState(rec)
		}
		c.tell(ctx, sc, rel, nil, gate.AfterRollback, "aborted: "+reason, c.o.Now())
	}
	return ev, nil
}

// Promote makes the canary stable on an operator's word. While a release
// is still under analysis (it has not passed every step) it is refused
// unless force is set, and force needs a reason: the record then says the
// release was promoted by force, skipping the remaining analysis and
// gates. A release waiting for a manual promote, or a service without an
// active release, is promoted as asked. The promotion goes through plane
// (nil: the controller's own), as in Abort.
func (c *Controller) Promote(ctx context.Context, plane *control.Plane, actor control.Actor, service, reason string, force bool) (event.Event, error) {
	if plane == nil {
		plane = c.o.Plane
	}
	rec, err := c.active(ctx, service)
	if err != nil && !errors.Is(err, ErrNoRelease) {
		return event.Event{}, err
	}
	underway := err == nil
	st := decodeState(rec)
	if underway && !st.Waiting && !force {
		at := "before its first step"
		if st.Step >= 0 && st.Step < len(st.Policy.Steps) {
			at = fmt.Sprintf("at step %d of %d (%g%%)", st.Step+1, len(st.Policy.Steps), st.Policy.Steps[st.Step])
		}
		return event.Event{}, &control.IllegalError{Op: "promote",
			Why:   fmt.Sprintf("the release of build %q is %s, still under analysis", rec.Build, at),
			Legal: "wait for it to pass, or promote with force and a reason to skip the remaining analysis"}
	}
	if force && strings.TrimSpace(reason) == "" {
		return event.Event{}, &control.FieldError{Field: "reason", Msg: "is required with force: say why the analysis is skipped"}
	}
	why := reason
	if force {
		why = "forced, skipping the remaining analysis: " + reason
	}
	ev, err := plane.Promote(ctx, actor, service, why)
	if err != nil || !underway {
		return ev, err
	}
	if err := c.close(ctx, actor, service, ev.Build, store.ReleasePromoted, "promoted by "+string(actor)+": "+why, "", func(st *persisted) {
		st.Forced = force && !st.Waiting
	}); err != nil {
		c.o.Logger.Warn("promote: closing the release record failed", "service", service, "err", err.Error())
	}
	return ev, nil
}

// Approve lets a release held at a manual gate go on. It is refused (409)
// when the release is not held at a manual gate. The approval is written
// into the release record with a release.approved event, in one
// transaction; the leader's controller advances within a second.
func (c *Controller) Approve(ctx context.Context, actor control.Actor, service, reason string) (event.Event, error) {
	var out event.Event
	for attempt := 0; attempt < 3; attempt++ {
		rec, err := c.active(ctx, service)
		if err != nil {
			return out, err
		}
		st := decodeState(rec)
		if st.Held == "" || st.Step < 0 || st.Step >= len(st.Policy.Steps) || st.approved(st.Step) {
			return out, &control.IllegalError{Op: "approve",
				Why:   fmt.Sprintf("the release of build %q is not waiting at a manual gate", rec.Build),
				Legal: "approve when canaryctl compare shows it held at a manual gate"}
		}
		a := Approval{Step: st.Step, Traffic: st.Policy.Steps[st.Step], Actor: string(actor), Reason: reason, At: c.o.Now()}
		if err := patchState(&rec, func(st *persisted) { st.Approvals = append(st.Approvals, a) }); err != nil {
			return out, err
		}
		err = c.o.Plane.Store().Update(ctx, func(tx store.Tx) error {
			if _, err := tx.PutRelease(ctx, rec); err != nil {
				return err
			}
			ev, err := tx.AppendEvent(ctx, event.Event{Service: service, Type: EventApproved, Severity: event.Info, Actor: string(actor),
				Build: rec.Build, Reason: reason, Details: map[string]string{"traffic": fmt.Sprintf("%g%%", a.Traffic), "release": rec.ID}})
			out = ev
			return err
		})
		if !errors.Is(err, store.ErrConflict) {
			return out, err
		}
	}
	return out, fmt.Errorf("approve: the release record of %q kept changing: %w", service, store.ErrConflict)
}

// SetOverride stores a per-release policy override for the next release
// of service (o.Build names its canary; "" means whichever comes next).
// Call it before starting the canary. A nil o removes any override, so a
// release started without one runs under the config.
func (c *Controller) SetOverride(ctx context.Context, actor control.Actor, service string, o *Override) error {
	return SetOverride(ctx, c.o.Plane.Store(), actor, service, o)
}

// SetOverride is Controller.SetOverride for callers that only hold the
// store.
func SetOverride(ctx context.Context, s store.Store, actor control.Actor, service string, o *Override) error {
	return s.Update(ctx, func(tx store.Tx) error {
		if o == nil {
			err := tx.DeletePolicy(ctx, service, 0)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		o.SetBy = string(actor)
		spec, err := json.Marshal(o)
		if err != nil {
			return err
		}
		pol := store.Policy{Service: service, Spec: spec, UpdatedBy: string(actor)}
		if old, err := tx.GetPolicy(ctx, service); err == nil {
			pol.Revision = old.Revision
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		_, err = tx.PutPolicy(ctx, pol)
		return err
	})
}

// close writes the outcome of an operator's action into the release
// record of build (if it is active, or was just closed by the leader as
// ended by an operator), with an optional event, retrying on conflicts
// with the leader's saves.
func (c *Controller) close(ctx context.Context, actor control.Actor, service, build string, status store.ReleaseStatus, reason string, typ event.Type, patch func(*persisted)) error {
	for attempt := 0; attempt < 5; attempt++ {
		rec, err := c.latestOf(ctx, service, build)
		if err != nil {
			return err
		}
		if !rec.Status.Active() && !strings.HasPrefix(rec.Reason, "ended by an operator") {
			return nil
		}
		if err := patchState(&rec, patch); err != nil {
			return err
		}
		rec.Status, rec.Reason, rec.EndedAt = status, reason, c.o.Now()
		err = c.o.Plane.Store().Update(ctx, func(tx store.Tx) error {
			if _, err := tx.PutRelease(ctx, rec); err != nil {
				return err
			}
			if typ == "" {
				return nil
			}
			_, err := tx.AppendEvent(ctx, event.Event{Service: service, Type: typ, Severity: event.Warning, Actor: string(actor),
				Build: build, Reason: reason, Details: map[string]string{"release": rec.ID, "traffic": fmt.Sprintf("%g%%", rec.Traffic)}})
			return err
		})
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
	}
	return fmt.Errorf("release record of %s/%s kept changing: %w", service, build, store.ErrConflict)
}

// latestOf returns the newest release record of a build.
func (c *Controller) latestOf(ctx context.Context, service, build string) (store.Release, error) {
	var recs []store.Release
	err := c.o.Plane.Store().View(ctx, func(r store.Reader) error {
		var err error
		recs, err = r.ListReleases(ctx, store.ReleaseFilter{Service: service, Limit: 20})
		return err
	})
	if err != nil {
		return store.Release{}, err
	}
	for _, r := range recs {
		if r.Build == build {
			return r, nil
		}
	}
	return store.Release{}, fmt.Errorf("release of %s/%s: %w", service, build, store.ErrNotFound)
}

func decodeState(rec store.Release) persisted {
	st := persisted{Step: rec.Step - 1}
	_ = json.Unmarshal(rec.State, &st)
	return st
}

// patchState applies fn to the record's state, keeping every field the
// struct does not know (the judge's state stays as stored).
func patchState(rec *store.Release, fn func(*persisted)) error {
	st := decodeState(*rec)
	fn(&st)
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	rec.State = b
	return nil
}

// serviceConfig returns the config of a service, or nil.
func (c *Controller) serviceConfig(service string) *config.Service {
	cfg := c.o.Config()
	if cfg == nil {
		return nil
	}
	for i := range cfg.Services {
		if cfg.Services[i].Name == service {
			return &cfg.Services[i]
		}
	}
	return nil
}
