package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/store"
)

func testChangeFeed(t *testing.T, s store.Store, _ *Clock) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	a := s.Subscribe(ctx)
	b := s.Subscribe(ctx)
	var ev event.Event
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.PutService(ctx, store.Service{Name: "api"}); err != nil {
			return err
		}
		if _, err := tx.PutBuild(ctx, store.Build{Service: "api", ID: "7", State: store.StateDeployed}); err != nil {
			return err
		}
		// Two writes of the same thing in one transaction: one Change.
		if err := tx.PutEndpoint(ctx, "api", "7", store.Endpoint{Addr: "h:1"}); err != nil {
			return err
		}
		if err := tx.PutEndpoint(ctx, "api", "7", store.Endpoint{Addr: "h:2"}); err != nil {
			return err
		}
		var err error
		ev, err = tx.AppendEvent(ctx, event.Event{Service: "api", Type: event.BuildRegistered, Build: "7"})
		return err
	})
	want := map[store.Change]bool{
		{Kind: store.ChangeService, Service: "api"}:               true,
		{Kind: store.ChangeBuild, Service: "api", Key: "7"}:       true,
		{Kind: store.ChangeEndpoint, Service: "api", Key: "7"}:    true,
		{Kind: store.ChangeEvent, Service: "api", EventID: ev.ID}: true,
	}
	for name, ch := range map[string]<-chan store.Change{"a": a, "b": b} {
		got := map[store.Change]bool{}
		for range want {
			got[next(t, ch)] = true
		}
		for c := range want {
			if !got[c] {
				t.Errorf("subscriber %s: missing %+v; got %+v", name, c, got)
			}
		}
	}
	// Quiet writes (a heartbeat of a live endpoint, a lease renewal) are not
	// published; the next change seen is the marker.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.TouchEndpoint(ctx, "api", "7", "h:1", t0.Add(time.Second)); err != nil {
			return err
		}
		_, err := tx.AcquireLease(ctx, "l", "me", time.Minute, t0)
		return err
	})
	if c := next(t, a); c.Kind != store.ChangeLease || c.Key != "l" {
		t.Fatalf("change after acquire = %+v, want the lease", c)
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.RenewLease(ctx, "l", "me", time.Minute, t0.Add(time.Second))
		return err
	})
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.PutRelease(ctx, store.Release{ID: "r", Service: "api", Status: store.ReleaseRunning})
		return err
	})
	if c := next(t, a); c.Kind != store.ChangeRelease || c.Key != "r" || c.Service != "api" {
		t.Fatalf("change after renewal = %+v, want the release marker", c)
	}
}

func testChangeFeedCancel(t *testing.T, s store.Store, _ *Clock) {
	ctx, cancel := context.WithCancel(t.Context())
	ch := s.Subscribe(ctx)
	cancel()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed 10s after its context ended")
		}
	}
}

// testConcurrentWriters: read-modify-write from many goroutines loses no
// update, because each Update sees the state the previous one left.
func testConcurrentWriters(t *testing.T, s store.Store, _ *Clock) {
	mustService(t, s, "api")
	const workers, each = 6, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				err := s.Update(t.Context(), func(tx store.Tx) error {
					sv, err := tx.GetService(t.Context(), "api")
					if err != nil {
						return err
					}
					sv.WindowOffset++
					if _, err := tx.PutService(t.Context(), sv); err != nil {
						return err
					}
					_, err = tx.AppendEvent(t.Context(), event.Event{Service: "api", Type: event.TrafficChanged, Reason: fmt.Sprintf("w%d/%d", w, i)})
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Update: %v", err)
	}
	view(t, s, func(ctx context.Context, r store.Reader) error {
		sv, err := r.GetService(ctx, "api")
		if err != nil {
			return err
		}
		if sv.WindowOffset != workers*each || sv.Revision != workers*each+1 {
			t.Errorf("after %d increments: offset %d, revision %d", workers*each, sv.WindowOffset, sv.Revision)
		}
		evs, err := r.ListEvents(ctx, store.EventQuery{Limit: store.MaxPageSize})
		if err != nil {
			return err
		}
		if len(evs) != workers*each {
			t.Errorf("events = %d, want %d", len(evs), workers*each)
		}
		return nil
	})
}

// testConcurrentEventsNoGaps: a reader that follows the log with AfterID
// while writers append never skips an event (IDs grow in commit order).
func testConcurrentEventsNoGaps(t *testing.T, s store.Store, _ *Clock) {
	const writers, each = 4, 25
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				err := s.Update(ctx, func(tx store.Tx) error {
					_, err := tx.AppendEvent(ctx, event.Event{Service: fmt.Sprintf("s%d", w), Type: event.Test, Reason: fmt.Sprint(i)})
					return err
				})
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := map[int64]bool{}
	var after int64
	finished := false
	for !finished {
		select {
		case <-done:
			finished = true // one more read below catches the tail
		default:
		}
		err := s.View(ctx, func(r store.Reader) error {
			evs, err := r.ListEvents(ctx, store.EventQuery{AfterID: after, Limit: store.MaxPageSize})
			for _, ev := range evs {
				if ev.ID <= after {
					return fmt.Errorf("event %d after %d: out of order", ev.ID, after)
				}
				seen[ev.ID] = true
				after = ev.ID
			}
			return err
		})
		if err != nil {
			t.Fatalf("follow: %v", err)
		}
	}
	if len(seen) != writers*each {
		t.Fatalf("follower saw %d events, want %d: it skipped some", len(seen), writers*each)
	}
}

// testConcurrentLease: of many replicas racing for a free lease, exactly
// one wins.
func testConcurrentLease(t *testing.T, s store.Store, _ *Clock) {
	const replicas = 6
	var wg sync.WaitGroup
	results := make(chan error, replicas)
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- s.Update(t.Context(), func(tx store.Tx) error {
				_, err := tx.AcquireLease(t.Context(), "controller", fmt.Sprintf("replica-%d", i), time.Minute, t0)
				return err
			})
		}()
	}
	wg.Wait()
	close(results)
	won := 0
	for err := range results {
		switch {
		case err == nil:
			won++
		case errors.Is(err, store.ErrConflict):
		default:
			t.Errorf("AcquireLease: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d replicas acquired the lease, want exactly 1", won)
	}
}

// testConcurrentStable: replicas racing to make different builds of one
// service stable end with exactly one stable build; the losers get
// ErrConflict, never a raw database error.
func testConcurrentStable(t *testing.T, s store.Store, _ *Clock) {
	const racers = 6
	mustService(t, s, "api")
	builds := make([]store.Build, racers)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for i := range builds {
			var err error
			if builds[i], err = tx.PutBuild(ctx, store.Build{Service: "api", ID: fmt.Sprint(i), State: store.StateDeployed}); err != nil {
				return err
			}
		}
		return nil
	})
	var wg sync.WaitGroup
	results := make(chan error, racers)
	for _, b := range builds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- s.Update(t.Context(), func(tx store.Tx) error {
				b.State = store.StateStable
				_, err := tx.PutBuild(t.Context(), b)
				return err
			})
		}()
	}
	wg.Wait()
	close(results)
	won := 0
	for err := range results {
		switch {
		case err == nil:
			won++
		case errors.Is(err, store.ErrConflict):
		default:
			t.Errorf("PutBuild stable: %v", err)
		}
	}
	view(t, s, func(ctx context.Context, r store.Reader) error {
		bs, err := r.ListBuilds(ctx, store.BuildFilter{Service: "api", States: []store.BuildState{store.StateStable}})
		if err != nil {
			return err
		}
		if won != 1 || len(bs) != 1 {
			t.Errorf("%d racers won, %d stable builds; want exactly 1 of each", won, len(bs))
		}
		return nil
	})
}
