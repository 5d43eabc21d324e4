// Package control is the control plane's one place of change: every
// operation an operator, a build or the release controller performs — mark a
// canary, move traffic, promote, roll back, register a build — is checked
// against the lifecycle here and stored as one transaction holding the state
// change and the event that explains it. Routing is derived from what is
// stored (Snapshot), never changed behind the store's back.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/route/cohort"
	"github.com/canaryd/canaryd/internal/store"
)

// IllegalError is an operation the lifecycle forbids in the current state.
// It says why and what would be legal; the API answers it with 409.
type IllegalError struct {
	Op, Why, Legal string
}

func (e *IllegalError) Error() string {
	if e.Legal == "" {
		return fmt.Sprintf("%s: %s", e.Op, e.Why)
	}
	return fmt.Sprintf("%s: %s; %s", e.Op, e.Why, e.Legal)
}

// ErrIllegal matches every IllegalError with errors.Is.
var ErrIllegal = errors.New("illegal in the current state")

// Is makes errors.Is(err, ErrIllegal) true for an IllegalError.
func (e *IllegalError) Is(target error) bool { return target == ErrIllegal }

func illegal(op, why, legal string, args ...any) error {
	return &IllegalError{Op: op, Why: fmt.Sprintf(why, args...), Legal: legal}
}

// Plane performs control-plane operations on a store. Safe for concurrent
// use: concurrency control is the store's (transactions and revisions).
type Plane struct {
	store store.Store
	now   func() time.Time
	log   *slog.Logger
	// expect is the service revision operations require (IfRevision); 0:
	// no check.
	expect int64
}

// Options configure New.
type Options struct {
	Now    func() time.Time // nil: time.Now
	Logger *slog.Logger     // nil: discard
}

// New returns a Plane over s.
func New(s store.Store, o Options) *Plane {
	p := &Plane{store: s, now: o.Now, log: o.Logger}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p
}

// Store returns the underlying store, for readers.
func (p *Plane) Store() store.Store { return p.store }

// Actor identifies who asked for a change: a token's name, "controller",
// "config" or a build registering itself.
type Actor string

// change runs one operation: fn reads and writes through tx and returns
// the event to append (nil for a no-op). The event's before/after and actor
// are filled here, so every change is recorded the same way.
func (p *Plane) change(ctx context.Context, actor Actor, fn func(tx store.Tx) (*event.Event, error)) (event.Event, error) {
	var out event.Event
	err := p.store.Update(ctx, func(tx store.Tx) error {
		ev, err := fn(tx)
		if err != nil || ev == nil {
			return err
		}
		ev.Actor = string(actor)
		if ev.Severity == "" {
			ev.Severity = event.Info
		}
		stored, err := tx.AppendEvent(ctx, *ev)
		if err != nil {
			return err
		}
		out = stored
		return nil
	})
	return out, err
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// serviceView is what events record as a service's before/after state.
type serviceView struct {
	Canary  string  `json:"canary,omitempty"`
	Stable  string  `json:"stable,omitempty"`
	Traffic float64 `json:"traffic"`
	Offset  int     `json:"window_offset"`
	Paused  bool    `json:"paused,omitempty"`
}

func view(s store.Service, stable string) serviceView {
	return serviceView{Canary: s.Canary, Stable: stable, Traffic: s.Traffic, Offset: s.WindowOffset, Paused: s.Paused}
}

// loaded is a service with its stable and canary builds, read in one tx.
type loaded struct {
	svc            store.Service
	stable, canary *store.Build
}

func load(ctx context.Context, r store.Reader, service string) (loaded, error) {
	var l loaded
	svc, err := r.GetService(ctx, service)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return l, fmt.Errorf("service %q: %w", service, store.ErrNotFound)
		}
		return l, err
	}
	l.svc = svc
	builds, err := r.ListBuilds(ctx, store.BuildFilter{Service: service, States: []store.BuildState{store.StateStable, store.StateCanary}})
	if err != nil {
		return l, err
	}
	for i := range builds {
		switch builds[i].State {
		case store.StateStable:
			l.stable = &builds[i]
		case store.StateCanary:
			l.canary = &builds[i]
		}
	}
	return l, nil
}

func (l loaded) stableID() string {
	if l.stable == nil {
		return ""
	}
	return l.stable.ID
}

func getBuild(ctx context.Context, r store.Reader, service, id string) (store.Build, error) {
	b, err := r.GetBuild(ctx, service, id)
	if errors.Is(err, store.ErrNotFound) {
		return b, fmt.Errorf("build %q of service %q: %w", id, service, store.ErrNotFound)
	}
	return b, err
}

// windowLen is the number of buckets a window at traffic percent covers.
func windowLen(traffic float64) int { return int(cohort.WindowFor(0, traffic).Size) }
