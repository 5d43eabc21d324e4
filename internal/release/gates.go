package release

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/control"
	"github.com/canaryd/canaryd/internal/release/gate"
	"github.com/canaryd/canaryd/internal/release/source"
	"github.com/canaryd/canaryd/internal/store"
)

// gatesOf returns the service's webhook gates called at point.
func gatesOf(sc *config.Service, point gate.Point) []gate.Gate {
	var out []gate.Gate
	for _, g := range sc.Release.Gates {
		gg := gate.Gate{Name: g.Name, URL: g.URL, Secret: g.Secret.Reveal(), OnDeny: g.OnDeny, Timeout: g.Timeout.D()}
		for _, at := range g.At {
			gg.Points = append(gg.Points, gate.Point(at))
		}
		if gg.At(point) {
			out = append(out, gg)
		}
	}
	return out
}

// request describes the release to a gate.
func (c *Controller) request(sc *config.Service, rel *running, canary *store.Build, point gate.Point, next float64, reason string) gate.Request {
	r := gate.Request{Point: point, Service: sc.Name, Release: rel.rec.ID, Canary: rel.rec.Build,
		Stable: stableOf(c, sc.Name), Step: rel.st.Step + 1, Traffic: rel.rec.Traffic, Next: next, Reason: reason}
	if canary != nil {
		r.Version = canary.Version
	}
	if rel.st.Verdict != nil {
		r.Verdict = string(rel.st.Verdict.Outcome)
	}
	return r
}

// gates asks every gate of point, in order, and acts on a "no": the
// step pauses (on_deny: pause) or the release rolls back (on_deny:
// rollback). ok is true when every gate allowed; done is true when the
// release ended (rolled back).
func (c *Controller) gates(ctx context.Context, sc *config.Service, rel *running, canary *store.Build, point gate.Point, next float64, now time.Time) (ok, done bool, err error) {
	gs := gatesOf(sc, point)
	if len(gs) == 0 {
		return true, false, nil
	}
	caller := &gate.Caller{Client: c.o.HTTPClient, Now: c.o.Now}
	req := c.request(sc, rel, canary, point, next, "")
	var denied []gate.Result
	for _, g := range gs {
		g.URL = source.Vars{Service: sc.Name, Build: rel.rec.Build}.Expand(g.URL)
		res := caller.Call(ctx, g, req)
		c.recordGate(rel, res)
		if !res.Allowed {
			denied = append(denied, res)
		}
	}
	if len(denied) == 0 {
		return true, false, nil
	}
	var msgs []string
	rollback := false
	for _, d := range denied {
		msgs = append(msgs, d.Message)
		rollback = rollback || d.OnDeny == "rollback"
	}
	reason := fmt.Sprintf("%s gate: %s", point, strings.Join(msgs, "; "))
	c.o.Logger.Info("release gate said no", "service", sc.Name, "release", rel.rec.ID, "point", string(point), "reason", reason)
	if rollback {
		return false, true, c.rollback(ctx, sc, rel, canary, reason, now)
	}
	if _, err := c.o.Plane.SetPaused(ctx, Actor, sc.Name, true, reason+" (resume to ask again)"); err != nil && !errors.Is(err, control.ErrIllegal) {
		return false, false, err
	}
	return false, false, c.save(ctx, rel, true)
}

// tell calls the gates of a point whose answer cannot change anything
// (after_rollback); their results are recorded.
func (c *Controller) tell(ctx context.Context, sc *config.Service, rel *running, canary *store.Build, point gate.Point, reason string, now time.Time) {
	caller := &gate.Caller{Client: c.o.HTTPClient, Now: c.o.Now}
	for _, g := range gatesOf(sc, point) {
		g.URL = source.Vars{Service: sc.Name, Build: rel.rec.Build}.Expand(g.URL)
		res := caller.Call(ctx, g, c.request(sc, rel, canary, point, 0, reason))
		c.recordGate(rel, res)
		if !res.Allowed {
			c.o.Logger.Warn("after_rollback gate did not acknowledge", "service", sc.Name, "release", rel.rec.ID, "message", res.Message)
		}
	}
}

// recordGate keeps the latest result of each gate at each point.
func (c *Controller) recordGate(rel *running, res gate.Result) {
	for k, r := range rel.st.Gates {
		if r.Gate == res.Gate && r.Point == res.Point {
			rel.st.Gates[k] = res
			return
		}
	}
	rel.st.Gates = append(rel.st.Gates, res)
}
