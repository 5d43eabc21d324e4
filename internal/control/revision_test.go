package control

import (
	"context"
	"errors"
	"testing"

	"github.com/canaryd/canaryd/internal/store"
)

// IfRevision refuses an operation over a stale revision in the same
// transaction and changes nothing; the current revision passes.
func TestIfRevision(t *testing.T) {
	ctx := context.Background()
	p, _ := newPlane(t)
	rev := func() int64 {
		var r int64
		if err := p.Store().View(ctx, func(rd store.Reader) error {
			s, err := rd.GetService(ctx, "api")
			r = s.Revision
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return r
	}
	r0 := rev()
	if _, err := p.IfRevision(r0).StartCanary(ctx, "ops", "api", "42", StartOptions{Traffic: 5}); err != nil {
		t.Fatalf("current revision: %v", err)
	}
	r1 := rev()
	for name, op := range map[string]func(q *Plane) error{
		"traffic":  func(q *Plane) error { _, err := q.SetTraffic(ctx, "ops", "api", 50, ""); return err },
		"promote":  func(q *Plane) error { _, err := q.Promote(ctx, "ops", "api", ""); return err },
		"rollback": func(q *Plane) error { _, err := q.Rollback(ctx, "ops", "api", ""); return err },
		"delete":   func(q *Plane) error { _, err := q.DeleteBuild(ctx, "ops", "api", "43", ""); return err },
	} {
		err := op(p.IfRevision(r0))
		var se *StaleError
		if !errors.Is(err, ErrStale) || !errors.As(err, &se) || se.Want != r0 || se.Got != r1 {
			t.Errorf("%s over a stale revision: %v", name, err)
		}
	}
	if rev() != r1 || states(t, p)["43"] != store.StateDeployed {
		t.Fatal("a refused operation changed the service")
	}
	if _, err := p.IfRevision(999).Promote(ctx, "ops", "nosuch", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown service: %v", err)
	}
	if _, err := p.IfRevision(0).SetTraffic(ctx, "ops", "api", 10, ""); err != nil { // 0: no check
		t.Fatal(err)
	}
}
