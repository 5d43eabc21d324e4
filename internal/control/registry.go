package control

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/store"
)

// BuildSpec is what a build says about itself when it registers.
type BuildSpec struct {
	Service   string            `json:"service"`
	ID        string            `json:"id"`
	Version   string            `json:"version,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Changelog string            `json:"changelog,omitempty"`
	Endpoints []string          `json:"endpoints"`
	// TTL is how long an endpoint stays routable after its last heartbeat;
	// 0 means it never expires (static).
	TTL time.Duration `json:"ttl,omitempty"`
}

// Validate names the first bad field.
func (s BuildSpec) Validate() error {
	if s.Service == "" {
		return &FieldError{Field: "service", Msg: "is required"}
	}
	if !validID(s.ID) {
		return &FieldError{Field: "id", Msg: fmt.Sprintf("%q is not a valid build id (letters, digits, . _ -; at most 64)", s.ID)}
	}
	for i, e := range s.Endpoints {
		if err := config.CheckHostPort(e); err != nil {
			return &FieldError{Field: fmt.Sprintf("endpoints[%d]", i), Msg: err.Error()}
		}
	}
	if s.TTL < 0 {
		return &FieldError{Field: "ttl", Msg: "must not be negative"}
	}
	return nil
}

// Register records a build and its endpoints. Registering again is
// idempotent: the same build with the same version refreshes its endpoints'
// heartbeats and adds new endpoints; a different version under the same id
// is refused, because build ids name one artefact.
func (p *Plane) Register(ctx context.Context, actor Actor, s BuildSpec) (store.Build, error) {
	var out store.Build
	if err := s.Validate(); err != nil {
		return out, err
	}
	_, err := p.change(ctx, actor, func(tx store.Tx) (*event.Event, error) {
		if _, err := tx.GetService(ctx, s.Service); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, fmt.Errorf("service %q is not configured: %w", s.Service, store.ErrNotFound)
			}
			return nil, err
		}
		now := p.now()
		b, err := tx.GetBuild(ctx, s.Service, s.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			nb := store.Build{Service: s.Service, ID: s.ID, Version: s.Version, Labels: s.Labels, Changelog: s.Changelog,
				State: store.StateDeployed, RegisteredBy: string(actor), RegisteredAt: now}
			for _, e := range s.Endpoints {
				nb.Endpoints = append(nb.Endpoints, store.Endpoint{Addr: e, LastHeartbeat: now, TTL: s.TTL})
			}
			if out, err = tx.PutBuild(ctx, nb); err != nil {
				return nil, err
			}
			return &event.Event{Service: s.Service, Type: event.BuildRegistered, Build: s.ID,
				Details: map[string]string{"version": s.Version, "endpoints": fmt.Sprint(s.Endpoints), "changelog": s.Changelog}}, nil
		case err != nil:
			return nil, err
		}
		if b.State == store.StateDeleted {
			return nil, illegal("register", "build %q of %q was deleted", "register it under a new id", s.ID, s.Service)
		}
		if s.Version != "" && b.Version != "" && s.Version != b.Version {
			return nil, illegal("register", "build %q is registered with version %s, not %s", "use a new build id for a new version", s.ID, b.Version, s.Version)
		}
		known := map[string]bool{}
		for _, e := range b.Endpoints {
			known[e.Addr] = true
		}
		var added []string
		for _, e := range s.Endpoints {
			if err := tx.PutEndpoint(ctx, s.Service, s.ID, store.Endpoint{Addr: e, LastHeartbeat: now, TTL: s.TTL}); err != nil {
				return nil, err
			}
			if !known[e] {
				added = append(added, e)
			}
		}
		if out, err = tx.GetBuild(ctx, s.Service, s.ID); err != nil {
			return nil, err
		}
		if len(added) == 0 {
			return nil, nil // nothing new: no event
		}
		return &event.Event{Service: s.Service, Type: event.BuildRegistered, Build: s.ID,
			Details: map[string]string{"version": b.Version, "endpoints_added": fmt.Sprint(added)}}, nil
	})
	return out, err
}

// Heartbeat keeps a registered endpoint routable for its TTL. It records no
// event (heartbeats would drown the log); an unknown endpoint gets
// store.ErrNotFound, telling the build to register again.
func (p *Plane) Heartbeat(ctx context.Context, service, build, addr string) error {
	return p.store.Update(ctx, func(tx store.Tx) error {
		_, err := tx.TouchEndpoint(ctx, service, build, addr, p.now())
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("endpoint %s of build %s/%s is not registered (register again): %w", addr, service, build, store.ErrNotFound)
		}
		return err
	})
}

// Deregister removes one endpoint of a build (a replica shutting down).
func (p *Plane) Deregister(ctx context.Context, actor Actor, service, build, addr string) error {
	_, err := p.change(ctx, actor, func(tx store.Tx) (*event.Event, error) {
		if err := tx.DeleteEndpoint(ctx, service, build, addr); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, fmt.Errorf("endpoint %s of build %s/%s: %w", addr, service, build, store.ErrNotFound)
			}
			return nil, err
		}
		return &event.Event{Service: service, Type: event.BuildDeregistered, Build: build, Details: map[string]string{"endpoint": addr}}, nil
	})
	return err
}

// Sync makes the store agree with the config at start-up and on reload.
// The precedence (docs/configuration.md):
//   - the config declares services: one missing from the store is created;
//   - a static build missing from the store is created with the config's
//     state (and the canary's traffic); one already stored keeps its stored
//     state — the store is the runtime truth, changed only by operations —
//     but takes the config's endpoints, version, labels and changelog;
//   - a config build removed from the config is deleted if it is deployed;
//     a stable or canary one stays (with a warning) until an operation
//     moves it;
//   - services in the store but not in the config are left alone (and not
//     routed), so renaming a service in the config starts a new history.
func (p *Plane) Sync(ctx context.Context, c *config.Config) error {
	for _, sc := range c.Services {
		if err := p.syncService(ctx, sc); err != nil {
			return fmt.Errorf("sync service %q: %w", sc.Name, err)
		}
	}
	return nil
}

func (p *Plane) syncService(ctx context.Context, sc config.Service) error {
	return p.store.Update(ctx, func(tx store.Tx) error {
		now := p.now()
		svc, err := tx.GetService(ctx, sc.Name)
		created := errors.Is(err, store.ErrNotFound)
		if created {
			svc = store.Service{Name: sc.Name}
		} else if err != nil {
			return err
		}
		stored, err := tx.ListBuilds(ctx, store.BuildFilter{Service: sc.Name})
		if err != nil {
			return err
		}
		byID := map[string]store.Build{}
		for _, b := range stored {
			byID[b.ID] = b
		}
		if created {
			for _, b := range sc.Builds {
				if b.State == config.StateCanary {
					svc.Canary = b.ID
					if b.Traffic != nil {
						svc.Traffic = float64(*b.Traffic)
					}
					svc.UsedWindows = []store.Window{{Start: 0, Len: windowLen(svc.Traffic)}}
				}
			}
			if svc, err = tx.PutService(ctx, svc); err != nil {
				return err
			}
			if _, err := tx.AppendEvent(ctx, event.Event{Service: sc.Name, Type: event.StableSet, Severity: event.Info, Actor: "config",
				Reason: "service created from the config"}); err != nil {
				return err
			}
		}
		inConfig := map[string]bool{}
		// Stable first, so the one-stable rule holds while builds are written.
		builds := slices.Clone(sc.Builds)
		slices.SortStableFunc(builds, func(a, b config.Build) int { return stateOrder(a.State) - stateOrder(b.State) })
		for _, cb := range builds {
			inConfig[cb.ID] = true
			b, ok := byID[cb.ID]
			if !ok {
				nb := store.Build{Service: sc.Name, ID: cb.ID, Version: cb.Version, Labels: cb.Labels, Changelog: cb.Changelog,
					State: store.StateDeployed, RegisteredBy: "config", RegisteredAt: now}
				if created || !hasState(stored, store.BuildState(cb.State)) {
					nb.State = store.BuildState(cb.State)
				}
				if nb.State == store.StateCanary && svc.Canary != cb.ID {
					nb.State = store.StateDeployed
				}
				for _, e := range cb.Endpoints {
					nb.Endpoints = append(nb.Endpoints, store.Endpoint{Addr: e.Address, LastHeartbeat: now})
				}
				if _, err := tx.PutBuild(ctx, nb); err != nil {
					return err
				}
				continue
			}
			if b.RegisteredBy != "config" {
				continue // a registered build keeps what it registered
			}
			if b.State == store.StateDeleted {
				continue
			}
			if b.Version != cb.Version || b.Changelog != cb.Changelog || !maps.Equal(b.Labels, cb.Labels) {
				b.Version, b.Changelog, b.Labels = cb.Version, cb.Changelog, cb.Labels
				if _, err := tx.PutBuild(ctx, b); err != nil {
					return err
				}
			}
			want := map[string]bool{}
			for _, e := range cb.Endpoints {
				want[e.Address] = true
				if !slices.ContainsFunc(b.Endpoints, func(x store.Endpoint) bool { return x.Addr == e.Address }) {
					if err := tx.PutEndpoint(ctx, sc.Name, cb.ID, store.Endpoint{Addr: e.Address, LastHeartbeat: now}); err != nil {
						return err
					}
				}
			}
			for _, e := range b.Endpoints {
				if !want[e.Addr] && e.TTL == 0 {
					if err := tx.DeleteEndpoint(ctx, sc.Name, cb.ID, e.Addr); err != nil {
						return err
					}
				}
			}
		}
		for _, b := range stored {
			if b.RegisteredBy != "config" || inConfig[b.ID] || b.State == store.StateDeleted {
				continue
			}
			if b.State != store.StateDeployed {
				p.log.Warn("build removed from the config is still in use; it stays until an operation moves it",
					"service", sc.Name, "build", b.ID, "state", string(b.State))
				continue
			}
			b.State = store.StateDeleted
			if _, err := tx.PutBuild(ctx, b); err != nil {
				return err
			}
			if _, err := tx.AppendEvent(ctx, event.Event{Service: sc.Name, Type: event.BuildDeleted, Severity: event.Info, Actor: "config",
				Build: b.ID, Reason: "removed from the config"}); err != nil {
				return err
			}
		}
		return nil
	})
}

func stateOrder(s string) int {
	switch s {
	case config.StateStable:
		return 0
	case config.StateCanary:
		return 1
	}
	return 2
}

func hasState(builds []store.Build, s store.BuildState) bool {
	return slices.ContainsFunc(builds, func(b store.Build) bool { return b.State == s })
}

func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || (i > 0 && (r == '.' || r == '_' || r == '-'))
		if !ok {
			return false
		}
	}
	return true
}
