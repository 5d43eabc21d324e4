package control

import (
	"context"
	"errors"
	"fmt"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/store"
)

// ErrStale matches every StaleError with errors.Is.
var ErrStale = errors.New("service changed since it was read")

// StaleError is an operation refused because the service's stored revision
// is not the one the caller read (the API's If-Match precondition). Nothing
// was changed; the caller should read the service again and decide anew.
type StaleError struct {
	Service   string
	Want, Got int64
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("service %q: revision is %d, not %d: it changed since you read it (read it again)", e.Service, e.Got, e.Want)
}

// Is makes errors.Is(err, ErrStale) true for a StaleError.
func (e *StaleError) Is(target error) bool { return target == ErrStale }

// IfRevision returns a Plane whose lifecycle operations on a service
// (SetStable, StartCanary, SetTraffic, Promote, Rollback, SetPaused,
// DeleteBuild, FreshCohort, ResetCohorts) first check, in the same
// transaction, that the service's stored revision is rev, and otherwise
// fail with a *StaleError and change nothing. rev 0 means no check. The
// returned Plane shares p's store, clock and logger; p is unchanged.
// Registration and heartbeats are never checked: builds do not read
// revisions.
func (p *Plane) IfRevision(rev int64) *Plane {
	q := *p
	q.expect = rev
	return &q
}

// changeService is change for an operation on one service: it applies the
// IfRevision precondition, if any, inside the operation's transaction.
func (p *Plane) changeService(ctx context.Context, actor Actor, service string, fn func(tx store.Tx) (*event.Event, error)) (event.Event, error) {
	if p.expect == 0 {
		return p.change(ctx, actor, fn)
	}
	return p.change(ctx, actor, func(tx store.Tx) (*event.Event, error) {
		svc, err := tx.GetService(ctx, service)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, fmt.Errorf("service %q: %w", service, store.ErrNotFound)
			}
			return nil, err
		}
		if svc.Revision != p.expect {
			return nil, &StaleError{Service: service, Want: p.expect, Got: svc.Revision}
		}
		return fn(tx)
	})
}
