package control

import (
	"context"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/route"
	"github.com/canaryd/canaryd/internal/store"
)

// Snapshot reads the routing state of the configured services from the
// store: stable and canary builds with the endpoints alive now, traffic and
// window offset. Endpoint weights come from the config for static builds.
func (p *Plane) Snapshot(ctx context.Context, c *config.Config) (map[string]route.State, error) {
	out := make(map[string]route.State, len(c.Services))
	now := p.now()
	err := p.store.View(ctx, func(r store.Reader) error {
		for _, sc := range c.Services {
			l, err := load(ctx, r, sc.Name)
			if err != nil {
				return err
			}
			st := route.State{Traffic: l.svc.Traffic, Offset: uint32(l.svc.WindowOffset)}
			st.Stable = routeBuild(l.stable, sc, now)
			st.Canary = routeBuild(l.canary, sc, now)
			if st.Canary == nil {
				st.Traffic = 0
			}
			out[sc.Name] = st
		}
		return nil
	})
	return out, err
}

func routeBuild(b *store.Build, sc config.Service, now time.Time) *route.BuildState {
	if b == nil {
		return nil
	}
	weights := map[string]int{}
	for _, cb := range sc.Builds {
		if cb.ID == b.ID {
			for _, e := range cb.Endpoints {
				weights[e.Address] = e.Weight
			}
		}
	}
	rb := &route.BuildState{ID: b.ID, Version: b.Version}
	for _, e := range b.Endpoints {
		if !e.Alive(now) {
			continue
		}
		w := weights[e.Addr]
		if w == 0 {
			w = 1
		}
		rb.Endpoints = append(rb.Endpoints, config.Endpoint{Address: e.Addr, Weight: w})
	}
	return rb
}
