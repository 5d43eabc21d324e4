package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/store"
)

func testServices(t *testing.T, s store.Store, clock *Clock) {
	var created store.Service
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		created, err = tx.PutService(ctx, store.Service{
			Name: "api", Canary: "", Traffic: 12.5, WindowOffset: 42,
			UsedWindows: []store.Window{{Start: 0, Len: 100}, {Start: 9900, Len: 200}},
		})
		return err
	})
	if created.Revision != 1 || !created.UpdatedAt.Equal(t0.Truncate(time.Microsecond)) {
		t.Fatalf("created = %+v, want revision 1 and UpdatedAt %v", created, t0)
	}
	view(t, s, func(ctx context.Context, r store.Reader) error {
		got, err := r.GetService(ctx, "api")
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, created) {
			t.Errorf("GetService = %+v, want %+v", got, created)
		}
		_, err = r.GetService(ctx, "nope")
		wantErr(t, "GetService(nope)", err, store.ErrNotFound)
		return nil
	})

	clock.Advance(time.Second)
	tests := []struct {
		name string
		in   store.Service
		want error
	}{
		{"create existing", store.Service{Name: "api"}, store.ErrConflict},
		{"update missing", store.Service{Name: "ghost", Revision: 3}, store.ErrNotFound},
		{"stale revision", store.Service{Name: "api", Revision: 7}, store.ErrConflict},
		{"current revision", store.Service{Name: "api", Revision: 1, Canary: "42", Traffic: 30, Paused: true}, nil},
		{"now stale", store.Service{Name: "api", Revision: 1}, store.ErrConflict},
	}
	for _, tt := range tests {
		err := s.Update(t.Context(), func(tx store.Tx) error {
			_, err := tx.PutService(t.Context(), tt.in)
			return err
		})
		wantErr(t, tt.name, err, tt.want)
	}
	mustService(t, s, "account")
	mustService(t, s, "billing")
	view(t, s, func(ctx context.Context, r store.Reader) error {
		all, err := r.ListServices(ctx)
		if err != nil {
			return err
		}
		var names []string
		for _, sv := range all {
			names = append(names, sv.Name)
		}
		if want := []string{"account", "api", "billing"}; !reflect.DeepEqual(names, want) {
			t.Errorf("ListServices names = %v, want %v", names, want)
		}
		api := all[1]
		if api.Revision != 2 || api.Canary != "42" || api.Traffic != 30 || !api.Paused || len(api.UsedWindows) != 0 {
			t.Errorf("api after update = %+v", api)
		}
		if !api.UpdatedAt.Equal(t0.Add(time.Second).Truncate(time.Microsecond)) {
			t.Errorf("api.UpdatedAt = %v, want %v", api.UpdatedAt, t0.Add(time.Second))
		}
		return nil
	})
}

func testServiceDelete(t *testing.T, s store.Store, _ *Clock) {
	mustService(t, s, "api")
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.PutBuild(ctx, store.Build{Service: "api", ID: "1", State: store.StateStable, Endpoints: []store.Endpoint{{Addr: "10.0.0.1:80"}}}); err != nil {
			return err
		}
		_, err := tx.PutPolicy(ctx, store.Policy{Service: "api", Spec: []byte(`{"steps":[1,5]}`)})
		return err
	})
	err := s.Update(t.Context(), func(tx store.Tx) error { return tx.DeleteService(t.Context(), "api", 9) })
	wantErr(t, "DeleteService stale", err, store.ErrConflict)
	err = s.Update(t.Context(), func(tx store.Tx) error { return tx.DeleteService(t.Context(), "ghost", 0) })
	wantErr(t, "DeleteService missing", err, store.ErrNotFound)
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.DeleteService(ctx, "api", 1) })
	view(t, s, func(ctx context.Context, r store.Reader) error {
		_, err := r.GetService(ctx, "api")
		wantErr(t, "GetService after delete", err, store.ErrNotFound)
		_, err = r.GetBuild(ctx, "api", "1")
		wantErr(t, "GetBuild after delete", err, store.ErrNotFound)
		_, err = r.GetPolicy(ctx, "api")
		wantErr(t, "GetPolicy after delete", err, store.ErrNotFound)
		return nil
	})
	// The name can be used again, from revision 1.
	if got := mustService(t, s, "api"); got.Revision != 1 {
		t.Fatalf("recreated revision = %d, want 1", got.Revision)
	}
}

func testBuilds(t *testing.T, s store.Store, clock *Clock) {
	mustService(t, s, "api")
	regAt := time.Date(2026, 1, 2, 3, 4, 5, 6_000, time.UTC)
	in := store.Build{
		Service: "api", ID: "42", Version: "1.2.3",
		Labels:    map[string]string{"commit": "abc123", "team": "core"},
		Changelog: "fix the thing\nand another",
		Endpoints: []store.Endpoint{
			{Addr: "10.0.0.6:8080", TTL: 30 * time.Second},
			{Addr: "10.0.0.5:8080", TTL: 30 * time.Second, LastHeartbeat: regAt},
		},
		State: store.StateDeployed, RegisteredBy: "ci", RegisteredAt: regAt,
	}
	var created store.Build
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		created, err = tx.PutBuild(ctx, in)
		return err
	})
	now := t0.Truncate(time.Microsecond)
	want := in
	want.Endpoints = []store.Endpoint{
		{Addr: "10.0.0.5:8080", TTL: 30 * time.Second, LastHeartbeat: regAt},
		{Addr: "10.0.0.6:8080", TTL: 30 * time.Second, LastHeartbeat: now},
	}
	want.UpdatedAt = now
	want.Revision = 1
	if !reflect.DeepEqual(created, want) {
		t.Fatalf("PutBuild = %+v\nwant        %+v", created, want)
	}
	view(t, s, func(ctx context.Context, r store.Reader) error {
		got, err := r.GetBuild(ctx, "api", "42")
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GetBuild = %+v\nwant       %+v", got, want)
		}
		_, err = r.GetBuild(ctx, "api", "43")
		wantErr(t, "GetBuild missing", err, store.ErrNotFound)
		return nil
	})

	clock.Advance(time.Minute)
	// An update changes fields but neither endpoints nor registration.
	upd := created
	upd.Version, upd.Labels, upd.Endpoints, upd.RegisteredBy = "1.2.4", nil, nil, "someone-else"
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.PutBuild(ctx, upd)
		if err != nil {
			return err
		}
		if got.Revision != 2 || got.Version != "1.2.4" || got.Labels != nil || len(got.Endpoints) != 2 ||
			got.RegisteredBy != "ci" || !got.RegisteredAt.Equal(regAt) || !got.UpdatedAt.Equal(now.Add(time.Minute)) {
			t.Errorf("updated build = %+v", got)
		}
		return nil
	})

	errTests := []struct {
		name string
		in   store.Build
		want error
	}{
		{"missing service", store.Build{Service: "ghost", ID: "1", State: store.StateDeployed}, store.ErrNotFound},
		{"duplicate id", store.Build{Service: "api", ID: "42", State: store.StateDeployed}, store.ErrConflict},
		{"stale revision", store.Build{Service: "api", ID: "42", State: store.StateDeployed, Revision: 1}, store.ErrConflict},
		{"update missing", store.Build{Service: "api", ID: "99", State: store.StateDeployed, Revision: 1}, store.ErrNotFound},
		{"bad state", store.Build{Service: "api", ID: "7", State: "weird"}, store.ErrInvalid},
		{"empty id", store.Build{Service: "api", State: store.StateDeployed}, store.ErrInvalid},
		{"duplicate endpoint", store.Build{Service: "api", ID: "8", State: store.StateDeployed, Endpoints: []store.Endpoint{{Addr: "a:1"}, {Addr: "a:1"}}}, store.ErrInvalid},
	}
	for _, tt := range errTests {
		err := s.Update(t.Context(), func(tx store.Tx) error {
			_, err := tx.PutBuild(t.Context(), tt.in)
			return err
		})
		wantErr(t, tt.name, err, tt.want)
	}

	mustService(t, s, "account")
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, b := range []store.Build{
			{Service: "account", ID: "7", State: store.StateStable},
			{Service: "account", ID: "8", State: store.StateCanary},
			{Service: "api", ID: "43", State: store.StateDeleted},
		} {
			clock.Advance(time.Second)
			if _, err := tx.PutBuild(ctx, b); err != nil {
				return err
			}
		}
		return nil
	})
	listTests := []struct {
		name string
		f    store.BuildFilter
		want []string
	}{
		{"all", store.BuildFilter{}, []string{"account/7", "account/8", "api/42", "api/43"}},
		{"service", store.BuildFilter{Service: "api"}, []string{"api/42", "api/43"}},
		{"states", store.BuildFilter{States: []store.BuildState{store.StateStable, store.StateCanary}}, []string{"account/7", "account/8"}},
		{"service and state", store.BuildFilter{Service: "api", States: []store.BuildState{store.StateDeleted}}, []string{"api/43"}},
		{"none", store.BuildFilter{Service: "ghost"}, nil},
	}
	view(t, s, func(ctx context.Context, r store.Reader) error {
		for _, tt := range listTests {
			bs, err := r.ListBuilds(ctx, tt.f)
			if err != nil {
				return err
			}
			var got []string
			for _, b := range bs {
				got = append(got, b.Service+"/"+b.ID)
				if b.Service == "api" && b.ID == "42" && len(b.Endpoints) != 2 {
					t.Errorf("%s: api/42 endpoints = %v, want 2", tt.name, b.Endpoints)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ListBuilds(%s) = %v, want %v", tt.name, got, tt.want)
			}
		}
		return nil
	})
}

// testBuildStates checks the one-stable, one-canary rule and a promotion
// done the legal way (demote first) in one transaction.
func testBuildStates(t *testing.T, s store.Store, _ *Clock) {
	mustService(t, s, "api")
	var stable, canary store.Build
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		if stable, err = tx.PutBuild(ctx, store.Build{Service: "api", ID: "1", State: store.StateStable}); err != nil {
			return err
		}
		canary, err = tx.PutBuild(ctx, store.Build{Service: "api", ID: "2", State: store.StateCanary})
		return err
	})
	tests := []struct {
		name string
		in   store.Build
	}{
		{"second stable", store.Build{Service: "api", ID: "3", State: store.StateStable}},
		{"second canary", store.Build{Service: "api", ID: "3", State: store.StateCanary}},
		{"canary to stable while stable exists", func() store.Build { b := canary; b.State = store.StateStable; return b }()},
	}
	for _, tt := range tests {
		err := s.Update(t.Context(), func(tx store.Tx) error {
			_, err := tx.PutBuild(t.Context(), tt.in)
			return err
		})
		wantErr(t, tt.name, err, store.ErrConflict)
	}
	// Promote: old stable to deployed, canary to stable, one transaction.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		old := stable
		old.State = store.StateDeployed
		if _, err := tx.PutBuild(ctx, old); err != nil {
			return err
		}
		c := canary
		c.State = store.StateStable
		_, err := tx.PutBuild(ctx, c)
		return err
	})
	view(t, s, func(ctx context.Context, r store.Reader) error {
		bs, err := r.ListBuilds(ctx, store.BuildFilter{Service: "api", States: []store.BuildState{store.StateStable}})
		if err != nil {
			return err
		}
		if len(bs) != 1 || bs[0].ID != "2" {
			t.Errorf("stable builds after promotion = %+v, want only 2", bs)
		}
		return nil
	})
}

func testEndpoints(t *testing.T, s store.Store, clock *Clock) {
	mustService(t, s, "api")
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.PutBuild(ctx, store.Build{Service: "api", ID: "1", State: store.StateDeployed})
		return err
	})
	ttl := 10 * time.Second
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.PutEndpoint(ctx, "api", "1", store.Endpoint{Addr: "10.0.0.1:80", TTL: ttl}); err != nil {
			return err
		}
		// Re-registering is idempotent: same address, new TTL.
		return tx.PutEndpoint(ctx, "api", "1", store.Endpoint{Addr: "10.0.0.1:80", TTL: 2 * ttl})
	})
	err := s.Update(t.Context(), func(tx store.Tx) error {
		return tx.PutEndpoint(t.Context(), "api", "9", store.Endpoint{Addr: "10.0.0.1:80"})
	})
	wantErr(t, "PutEndpoint unknown build", err, store.ErrNotFound)
	err = s.Update(t.Context(), func(tx store.Tx) error {
		return tx.PutEndpoint(t.Context(), "api", "1", store.Endpoint{})
	})
	wantErr(t, "PutEndpoint empty addr", err, store.ErrInvalid)

	touch := func(at time.Time) (bool, error) {
		var revived bool
		err := s.Update(t.Context(), func(tx store.Tx) error {
			var err error
			revived, err = tx.TouchEndpoint(t.Context(), "api", "1", "10.0.0.1:80", at)
			return err
		})
		return revived, err
	}
	start := clock.Now()
	steps := []struct {
		name    string
		at      time.Time
		revived bool
	}{
		{"fresh", start.Add(5 * time.Second), false},
		{"late duplicate", start.Add(time.Second), false},
		{"within ttl", start.Add(20 * time.Second), false},
		{"after expiry", start.Add(time.Minute), true},
		{"alive again", start.Add(time.Minute + time.Second), false},
	}
	for _, st := range steps {
		revived, err := touch(st.at)
		wantErr(t, st.name, err, nil)
		if revived != st.revived {
			t.Errorf("TouchEndpoint(%s) revived = %v, want %v", st.name, revived, st.revived)
		}
	}
	view(t, s, func(ctx context.Context, r store.Reader) error {
		b, err := r.GetBuild(ctx, "api", "1")
		if err != nil {
			return err
		}
		want := []store.Endpoint{{Addr: "10.0.0.1:80", TTL: 2 * ttl, LastHeartbeat: start.Add(time.Minute + time.Second).Truncate(time.Microsecond)}}
		if !reflect.DeepEqual(b.Endpoints, want) {
			t.Errorf("endpoints = %+v, want %+v", b.Endpoints, want)
		}
		if b.Revision != 1 {
			t.Errorf("build revision = %d after heartbeats, want 1", b.Revision)
		}
		if !b.Endpoints[0].Alive(start.Add(time.Minute+20*time.Second)) || b.Endpoints[0].Alive(start.Add(2*time.Minute)) {
			t.Errorf("Alive around expiry is wrong for %+v", b.Endpoints[0])
		}
		return nil
	})
	err = s.Update(t.Context(), func(tx store.Tx) error {
		_, err := tx.TouchEndpoint(t.Context(), "api", "1", "10.9.9.9:80", start)
		return err
	})
	wantErr(t, "TouchEndpoint unknown", err, store.ErrNotFound)
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.DeleteEndpoint(ctx, "api", "1", "10.0.0.1:80") })
	err = s.Update(t.Context(), func(tx store.Tx) error { return tx.DeleteEndpoint(t.Context(), "api", "1", "10.0.0.1:80") })
	wantErr(t, "DeleteEndpoint twice", err, store.ErrNotFound)
}

// testRollback: fn returning an error leaves no state, no event and no
// change, and Update returns fn's error itself.
func testRollback(t *testing.T, s store.Store, _ *Clock) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	changes := s.Subscribe(ctx)
	svc := mustService(t, s, "api")
	if c := next(t, changes); c.Kind != store.ChangeService || c.Service != "api" {
		t.Fatalf("first change = %+v, want service api", c)
	}
	boom := errors.New("boom")
	err := s.Update(t.Context(), func(tx store.Tx) error {
		svc.Traffic = 50
		if _, err := tx.PutService(t.Context(), svc); err != nil {
			return err
		}
		if _, err := tx.PutBuild(t.Context(), store.Build{Service: "api", ID: "1", State: store.StateCanary}); err != nil {
			return err
		}
		if _, err := tx.AppendEvent(t.Context(), event.Event{Service: "api", Type: event.TrafficChanged}); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Update error = %v, want the error fn returned", err)
	}
	view(t, s, func(ctx context.Context, r store.Reader) error {
		got, err := r.GetService(ctx, "api")
		if err != nil {
			return err
		}
		if got.Traffic != 0 || got.Revision != 1 {
			t.Errorf("service after rollback = %+v, want untouched", got)
		}
		if _, err := r.GetBuild(ctx, "api", "1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("build after rollback: %v, want ErrNotFound", err)
		}
		evs, err := r.ListEvents(ctx, store.EventQuery{})
		if err != nil {
			return err
		}
		if len(evs) != 0 {
			t.Errorf("events after rollback = %+v, want none", evs)
		}
		return nil
	})
	// The first change delivered must be this marker, not the rolled-back write.
	mustService(t, s, "marker")
	c := next(t, changes)
	if c.Kind != store.ChangeService || c.Service != "marker" {
		t.Fatalf("first change after rollback = %+v, want the marker service", c)
	}
}

// testConflictKeepsTxUsable: ErrConflict from a Tx method must not poison
// the transaction (PostgreSQL aborts a transaction on a constraint error).
func testConflictKeepsTxUsable(t *testing.T, s store.Store, _ *Clock) {
	mustService(t, s, "api")
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.PutBuild(ctx, store.Build{Service: "api", ID: "1", State: store.StateStable}); err != nil {
			return err
		}
		_, err := tx.PutService(ctx, store.Service{Name: "api"})
		wantErr(t, "duplicate service", err, store.ErrConflict)
		_, err = tx.PutBuild(ctx, store.Build{Service: "api", ID: "2", State: store.StateStable})
		wantErr(t, "second stable", err, store.ErrConflict)
		_, err = tx.PutBuild(ctx, store.Build{Service: "api", ID: "1", State: store.StateStable})
		wantErr(t, "duplicate build", err, store.ErrConflict)
		_, err = tx.PutService(ctx, store.Service{Name: "account"})
		return err
	})
	view(t, s, func(ctx context.Context, r store.Reader) error {
		if _, err := r.GetService(ctx, "account"); err != nil {
			t.Errorf("write after conflicts was lost: %v", err)
		}
		if _, err := r.GetBuild(ctx, "api", "1"); err != nil {
			t.Errorf("write before conflicts was lost: %v", err)
		}
		return nil
	})
}

func testInvalid(t *testing.T, s store.Store, _ *Clock) {
	mustService(t, s, "api")
	ctx := t.Context()
	tests := []struct {
		name string
		fn   func(tx store.Tx) error
	}{
		{"service no name", func(tx store.Tx) error { _, err := tx.PutService(ctx, store.Service{}); return err }},
		{"service traffic 101", func(tx store.Tx) error {
			_, err := tx.PutService(ctx, store.Service{Name: "x", Traffic: 101})
			return err
		}},
		{"event no type", func(tx store.Tx) error { _, err := tx.AppendEvent(ctx, event.Event{Service: "api"}); return err }},
		{"event bad json", func(tx store.Tx) error {
			_, err := tx.AppendEvent(ctx, event.Event{Service: "api", Type: event.Test, Before: []byte("{")})
			return err
		}},
		{"release bad status", func(tx store.Tx) error {
			_, err := tx.PutRelease(ctx, store.Release{ID: "r", Service: "api", Status: "later"})
			return err
		}},
		{"policy bad json", func(tx store.Tx) error {
			_, err := tx.PutPolicy(ctx, store.Policy{Service: "api", Spec: []byte("nope")})
			return err
		}},
		{"channel no kind", func(tx store.Tx) error { _, err := tx.PutAlertChannel(ctx, store.AlertChannel{ID: "c"}); return err }},
		{"lease no holder", func(tx store.Tx) error { _, err := tx.AcquireLease(ctx, "l", "", time.Second, t0); return err }},
		{"lease zero ttl", func(tx store.Tx) error { _, err := tx.AcquireLease(ctx, "l", "a", 0, t0); return err }},
		{"idempotency expired", func(tx store.Tx) error {
			return tx.PutIdempotency(ctx, store.Idempotency{Key: "k", ExpiresAt: t0}, t0)
		}},
	}
	for _, tt := range tests {
		err := s.Update(ctx, tt.fn)
		wantErr(t, tt.name, err, store.ErrInvalid)
	}
}

// next waits for one change, failing after a generous bound.
func next(t *testing.T, ch <-chan store.Change) store.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("change feed closed")
		}
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no change delivered within 10s")
	}
	return store.Change{}
}
