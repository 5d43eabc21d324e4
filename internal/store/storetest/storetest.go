// Package storetest is the one behaviour suite every store.Store
// implementation must pass. Each implementation's tests call Run with a
// constructor for a fresh, empty store.
package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/store"
)

// NewStore returns a fresh, empty store whose clock is now. It registers
// its own cleanup (closing the store) with t.
type NewStore func(t *testing.T, now func() time.Time) store.Store

// Clock is a manual clock for stores under test. Safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// t0 is where every suite clock starts: a round time far from any zone
// or daylight-saving edge, with a microsecond part to catch truncation.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535_897_000, time.UTC)

// Run runs the whole suite against the stores newStore makes.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store, clock *Clock)
	}{
		{"Services", testServices},
		{"ServiceDelete", testServiceDelete},
		{"Builds", testBuilds},
		{"BuildStates", testBuildStates},
		{"Endpoints", testEndpoints},
		{"Rollback", testRollback},
		{"ConflictKeepsTxUsable", testConflictKeepsTxUsable},
		{"Invalid", testInvalid},
		{"Events", testEvents},
		{"EventPaging", testEventPaging},
		{"Releases", testReleases},
		{"Policies", testPolicies},
		{"AlertChannels", testAlertChannels},
		{"Idempotency", testIdempotency},
		{"Lease", testLease},
		{"Analysis", testAnalysis},
		{"ChangeFeed", testChangeFeed},
		{"ChangeFeedCancel", testChangeFeedCancel},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ConcurrentEventsNoGaps", testConcurrentEventsNoGaps},
		{"ConcurrentLease", testConcurrentLease},
		{"ConcurrentStable", testConcurrentStable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := NewClock(t0)
			s := newStore(t, clock.Now)
			tt.fn(t, s, clock)
		})
	}
}

// update runs fn in s.Update and fails the test on error.
func update(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := t.Context()
	if err := s.Update(ctx, func(tx store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// view runs fn in s.View and fails the test on error.
func view(t *testing.T, s store.Store, fn func(ctx context.Context, r store.Reader) error) {
	t.Helper()
	ctx := t.Context()
	if err := s.View(ctx, func(r store.Reader) error { return fn(ctx, r) }); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// wantErr fails unless err matches target (nil: no error).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	switch {
	case target == nil && err != nil:
		t.Fatalf("%s: unexpected error %v", what, err)
	case target != nil && !errors.Is(err, target):
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

func mustService(t *testing.T, s store.Store, name string) store.Service {
	t.Helper()
	var out store.Service
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		out, err = tx.PutService(ctx, store.Service{Name: name})
		return err
	})
	return out
}
