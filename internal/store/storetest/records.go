package storetest

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/store"
)

func testEvents(t *testing.T, s store.Store, clock *Clock) {
	in := event.Event{
		Service: "api", Type: event.TrafficChanged, Severity: event.Info, Actor: "alice", Build: "42",
		Reason:  "step 2 of 5",
		Before:  json.RawMessage(`{"traffic": 10}`),
		After:   json.RawMessage(`{"traffic": 25}`),
		Details: map[string]string{"version": "1.2.3", "traffic": "25"},
		ID:      999, Time: time.Unix(1, 0), // both ignored: the store sets them
	}
	var got event.Event
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		got, err = tx.AppendEvent(ctx, in)
		return err
	})
	want := in
	want.ID = got.ID
	want.Time = t0.Truncate(time.Microsecond)
	if got.ID <= 0 || !reflect.DeepEqual(got, want) {
		t.Fatalf("AppendEvent = %+v\nwant          %+v", got, want)
	}
	view(t, s, func(ctx context.Context, r store.Reader) error {
		evs, err := r.ListEvents(ctx, store.EventQuery{})
		if err != nil {
			return err
		}
		if len(evs) != 1 || !reflect.DeepEqual(evs[0], want) {
			t.Errorf("ListEvents = %+v\nwant [%+v]", evs, want)
		}
		return nil
	})
	// A minimal event reads back with nil optional fields.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.AppendEvent(ctx, event.Event{Type: event.Test})
		return err
	})
	view(t, s, func(ctx context.Context, r store.Reader) error {
		evs, err := r.ListEvents(ctx, store.EventQuery{Types: []event.Type{event.Test}})
		if err != nil {
			return err
		}
		if len(evs) != 1 || evs[0].Before != nil || evs[0].After != nil || evs[0].Details != nil || evs[0].Service != "" {
			t.Errorf("minimal event = %+v", evs)
		}
		return nil
	})
}

func testEventPaging(t *testing.T, s store.Store, clock *Clock) {
	// 30 events: services alternate api/account, types cycle over three,
	// one second apart.
	types := []event.Type{event.CanaryStarted, event.TrafficChanged, event.Promoted}
	var ids []int64
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for i := range 30 {
			svc := "api"
			if i%2 == 1 {
				svc = "account"
			}
			ev, err := tx.AppendEvent(ctx, event.Event{Service: svc, Type: types[i%3], Build: "b" + string(rune('0'+i%5))})
			if err != nil {
				return err
			}
			ids = append(ids, ev.ID)
			clock.Advance(time.Second)
		}
		return nil
	})
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("event ids not increasing: %v", ids)
		}
	}
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	idx := func(want ...int) []int64 {
		out := make([]int64, len(want))
		for i, w := range want {
			out[i] = ids[w]
		}
		return out
	}
	seq := func(from, to, step int) []int {
		var out []int
		for i := from; i < to; i += step {
			out = append(out, i)
		}
		return out
	}
	tests := []struct {
		name string
		q    store.EventQuery
		want []int64
	}{
		{"first page", store.EventQuery{Limit: 5}, idx(0, 1, 2, 3, 4)},
		{"after id", store.EventQuery{AfterID: ids[4], Limit: 3}, idx(5, 6, 7)},
		{"desc", store.EventQuery{Desc: true, Limit: 3}, idx(29, 28, 27)},
		{"desc before id", store.EventQuery{Desc: true, BeforeID: ids[27], Limit: 2}, idx(26, 25)},
		{"service", store.EventQuery{Service: "account", Limit: 4}, idx(1, 3, 5, 7)},
		{"type", store.EventQuery{Types: []event.Type{event.Promoted}}, idx(seq(2, 30, 3)...)},
		{"two types and service", store.EventQuery{Service: "api", Types: []event.Type{event.CanaryStarted, event.Promoted}, Limit: 4}, idx(0, 2, 6, 8)},
		{"build", store.EventQuery{Build: "b3"}, idx(3, 8, 13, 18, 23, 28)},
		{"since", store.EventQuery{Since: at(27)}, idx(27, 28, 29)},
		{"until", store.EventQuery{Until: at(2)}, idx(0, 1)},
		{"window", store.EventQuery{Since: at(10), Until: at(13)}, idx(10, 11, 12)},
		{"window sub-second", store.EventQuery{Since: at(10).Add(time.Microsecond), Until: at(13)}, idx(11, 12)},
		{"default limit", store.EventQuery{}, idx(seq(0, 30, 1)...)},
		{"nothing", store.EventQuery{Service: "ghost"}, nil},
	}
	view(t, s, func(ctx context.Context, r store.Reader) error {
		for _, tt := range tests {
			evs, err := r.ListEvents(ctx, tt.q)
			if err != nil {
				return err
			}
			var got []int64
			for _, ev := range evs {
				got = append(got, ev.ID)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ListEvents(%s) = %v, want %v", tt.name, got, tt.want)
			}
		}
		// Paging through everything with AfterID sees each event once.
		var seen []int64
		var after int64
		for {
			evs, err := r.ListEvents(ctx, store.EventQuery{AfterID: after, Limit: 7})
			if err != nil {
				return err
			}
			if len(evs) == 0 {
				break
			}
			for _, ev := range evs {
				seen = append(seen, ev.ID)
			}
			after = evs[len(evs)-1].ID
		}
		if !reflect.DeepEqual(seen, ids) {
			t.Errorf("paged ids = %v, want %v", seen, ids)
		}
		return nil
	})
}

func testReleases(t *testing.T, s store.Store, clock *Clock) {
	state := json.RawMessage(`{"step":1,"started":"2026-03-14T15:09:26Z","verdicts":["pass"]}`)
	var r1 store.Release
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		r1, err = tx.PutRelease(ctx, store.Release{ID: "r1", Service: "api", Build: "42", Status: store.ReleaseRunning, Step: 1, Traffic: 5, State: state})
		return err
	})
	now := t0.Truncate(time.Microsecond)
	if r1.Revision != 1 || !r1.StartedAt.Equal(now) || !r1.UpdatedAt.Equal(now) || !r1.EndedAt.IsZero() {
		t.Fatalf("created release = %+v", r1)
	}
	clock.Advance(time.Hour)
	end := clock.Now()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		r := r1
		r.Status, r.Step, r.Traffic, r.Reason, r.EndedAt, r.State = store.ReleasePromoted, 5, 100, "all steps passed", end, nil
		r.StartedAt = time.Time{} // ignored on update
		got, err := tx.PutRelease(ctx, r)
		if err != nil {
			return err
		}
		if got.Revision != 2 || !got.StartedAt.Equal(now) || !got.EndedAt.Equal(end.Truncate(time.Microsecond)) || got.State != nil {
			t.Errorf("updated release = %+v", got)
		}
		_, err = tx.PutRelease(ctx, r1)
		wantErr(t, "stale release", err, store.ErrConflict)
		_, err = tx.PutRelease(ctx, store.Release{ID: "r1", Service: "api", Status: store.ReleaseRunning})
		wantErr(t, "duplicate release", err, store.ErrConflict)
		for i, st := range []store.ReleaseStatus{store.ReleasePaused, store.ReleaseRolledBack, store.ReleaseRunning} {
			clock.Advance(time.Minute)
			svc := "api"
			if i == 2 {
				svc = "account"
			}
			if _, err := tx.PutRelease(ctx, store.Release{ID: "r" + string(rune('2'+i)), Service: svc, Status: st}); err != nil {
				return err
			}
		}
		return nil
	})
	tests := []struct {
		name string
		f    store.ReleaseFilter
		want []string
	}{
		{"all newest first", store.ReleaseFilter{}, []string{"r4", "r3", "r2", "r1"}},
		{"service", store.ReleaseFilter{Service: "api"}, []string{"r3", "r2", "r1"}},
		{"active", store.ReleaseFilter{ActiveOnly: true}, []string{"r4", "r2"}},
		{"active of api", store.ReleaseFilter{ActiveOnly: true, Service: "api"}, []string{"r2"}},
		{"limit", store.ReleaseFilter{Limit: 1}, []string{"r4"}},
	}
	view(t, s, func(ctx context.Context, r store.Reader) error {
		for _, tt := range tests {
			rs, err := r.ListReleases(ctx, tt.f)
			if err != nil {
				return err
			}
			var got []string
			for _, x := range rs {
				got = append(got, x.ID)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ListReleases(%s) = %v, want %v", tt.name, got, tt.want)
			}
		}
		got, err := r.GetRelease(ctx, "r1")
		if err != nil {
			return err
		}
		if got.Status != store.ReleasePromoted || got.Reason != "all steps passed" || got.Traffic != 100 {
			t.Errorf("GetRelease(r1) = %+v", got)
		}
		_, err = r.GetRelease(ctx, "nope")
		wantErr(t, "GetRelease missing", err, store.ErrNotFound)
		return nil
	})
	// The state blob comes back byte for byte.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.PutRelease(ctx, store.Release{ID: "blob", Service: "api", Status: store.ReleaseRunning, State: state})
		return err
	})
	view(t, s, func(ctx context.Context, r store.Reader) error {
		got, err := r.GetRelease(ctx, "blob")
		if err != nil {
			return err
		}
		if string(got.State) != string(state) {
			t.Errorf("state = %s, want %s", got.State, state)
		}
		return nil
	})
}

func testPolicies(t *testing.T, s store.Store, clock *Clock) {
	spec := json.RawMessage(`{"steps": [1, 5, 25, 50], "interval": "1m"}`)
	var p store.Policy
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		p, err = tx.PutPolicy(ctx, store.Policy{Service: "api", Spec: spec, UpdatedBy: "alice"})
		return err
	})
	clock.Advance(time.Second)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.PutPolicy(ctx, store.Policy{Service: "api", Spec: spec})
		wantErr(t, "duplicate policy", err, store.ErrConflict)
		p.Spec = json.RawMessage(`{"steps": [10]}`)
		p, err = tx.PutPolicy(ctx, p)
		if err != nil {
			return err
		}
		_, err = tx.PutPolicy(ctx, store.Policy{Service: "api", Spec: spec, Revision: 1})
		wantErr(t, "stale policy", err, store.ErrConflict)
		_, err = tx.PutPolicy(ctx, store.Policy{Service: "account", Spec: spec})
		return err
	})
	view(t, s, func(ctx context.Context, r store.Reader) error {
		got, err := r.GetPolicy(ctx, "api")
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, p) || got.Revision != 2 || string(got.Spec) != `{"steps": [10]}` {
			t.Errorf("GetPolicy = %+v, want %+v", got, p)
		}
		all, err := r.ListPolicies(ctx)
		if err != nil {
			return err
		}
		if len(all) != 2 || all[0].Service != "account" || all[1].Service != "api" {
			t.Errorf("ListPolicies = %+v", all)
		}
		return nil
	})
	err := s.Update(t.Context(), func(tx store.Tx) error { return tx.DeletePolicy(t.Context(), "api", 1) })
	wantErr(t, "DeletePolicy stale", err, store.ErrConflict)
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.DeletePolicy(ctx, "api", 2) })
	err = s.Update(t.Context(), func(tx store.Tx) error { return tx.DeletePolicy(t.Context(), "api", 0) })
	wantErr(t, "DeletePolicy twice", err, store.ErrNotFound)
}

func testAlertChannels(t *testing.T, s store.Store, clock *Clock) {
	secret := []byte{0, 1, 2, 0xfe, 0xff, 'x'}
	var c store.AlertChannel
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		c, err = tx.PutAlertChannel(ctx, store.AlertChannel{ID: "ops", Kind: "slack", Name: "#ops", Filter: json.RawMessage(`{"severity":"warning"}`), Secret: secret})
		return err
	})
	clock.Advance(time.Second)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		c.Name = "#ops-alerts"
		var err error
		c, err = tx.PutAlertChannel(ctx, c)
		if err != nil {
			return err
		}
		_, err = tx.PutAlertChannel(ctx, store.AlertChannel{ID: "mail", Kind: "email"})
		return err
	})
	now := t0.Truncate(time.Microsecond)
	if c.Revision != 2 || !c.CreatedAt.Equal(now) || !c.UpdatedAt.Equal(now.Add(time.Second)) {
		t.Fatalf("channel after update = %+v", c)
	}
	view(t, s, func(ctx context.Context, r store.Reader) error {
		got, err := r.GetAlertChannel(ctx, "ops")
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("GetAlertChannel = %+v, want %+v", got, c)
		}
		all, err := r.ListAlertChannels(ctx)
		if err != nil {
			return err
		}
		if len(all) != 2 || all[0].ID != "mail" || all[0].Secret != nil || all[0].Filter != nil {
			t.Errorf("ListAlertChannels = %+v", all)
		}
		return nil
	})
	err := s.Update(t.Context(), func(tx store.Tx) error { return tx.DeleteAlertChannel(t.Context(), "ops", 1) })
	wantErr(t, "DeleteAlertChannel stale", err, store.ErrConflict)
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.DeleteAlertChannel(ctx, "ops", 0) })
	view(t, s, func(ctx context.Context, r store.Reader) error {
		_, err := r.GetAlertChannel(ctx, "ops")
		wantErr(t, "GetAlertChannel deleted", err, store.ErrNotFound)
		return nil
	})
}

func testIdempotency(t *testing.T, s store.Store, _ *Clock) {
	rec := store.Idempotency{Key: "alice:k1", RequestHash: "h1", Status: 201, Body: []byte(`{"ok":true}`), ExpiresAt: t0.Add(time.Hour)}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.GetIdempotency(ctx, rec.Key, t0)
		wantErr(t, "GetIdempotency before put", err, store.ErrNotFound)
		return tx.PutIdempotency(ctx, rec, t0)
	})
	err := s.Update(t.Context(), func(tx store.Tx) error { return tx.PutIdempotency(t.Context(), rec, t0.Add(time.Minute)) })
	wantErr(t, "PutIdempotency duplicate", err, store.ErrConflict)
	view(t, s, func(ctx context.Context, r store.Reader) error {
		got, err := r.GetIdempotency(ctx, rec.Key, t0.Add(59*time.Minute))
		if err != nil {
			return err
		}
		want := rec
		want.CreatedAt = t0.Truncate(time.Microsecond)
		want.ExpiresAt = rec.ExpiresAt.Truncate(time.Microsecond)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GetIdempotency = %+v, want %+v", got, want)
		}
		_, err = r.GetIdempotency(ctx, rec.Key, t0.Add(time.Hour))
		wantErr(t, "GetIdempotency at expiry", err, store.ErrNotFound)
		return nil
	})
	// Once expired, the key can be stored again.
	rec2 := store.Idempotency{Key: rec.Key, RequestHash: "h2", Status: 200, ExpiresAt: t0.Add(3 * time.Hour)}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.PutIdempotency(ctx, rec2, t0.Add(2*time.Hour)); err != nil {
			return err
		}
		return tx.PutIdempotency(ctx, store.Idempotency{Key: "bob:k1", Status: 200, ExpiresAt: t0.Add(time.Hour)}, t0)
	})
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.GetIdempotency(ctx, rec.Key, t0.Add(2*time.Hour))
		if err != nil {
			return err
		}
		if got.RequestHash != "h2" || got.Body != nil {
			t.Errorf("replaced record = %+v", got)
		}
		n, err := tx.PurgeIdempotency(ctx, t0.Add(2*time.Hour))
		if err != nil {
			return err
		}
		if n != 1 {
			t.Errorf("PurgeIdempotency = %d, want 1 (bob's)", n)
		}
		return nil
	})
}

func testLease(t *testing.T, s store.Store, _ *Clock) {
	ttl := 15 * time.Second
	type step struct {
		name    string
		op      func(ctx context.Context, tx store.Tx) (store.Lease, error)
		err     error
		holder  string
		epoch   int64
		expires time.Time
	}
	acquire := func(h string, at time.Duration) func(context.Context, store.Tx) (store.Lease, error) {
		return func(ctx context.Context, tx store.Tx) (store.Lease, error) {
			return tx.AcquireLease(ctx, "controller", h, ttl, t0.Add(at))
		}
	}
	renew := func(h string, at time.Duration) func(context.Context, store.Tx) (store.Lease, error) {
		return func(ctx context.Context, tx store.Tx) (store.Lease, error) {
			return tx.RenewLease(ctx, "controller", h, ttl, t0.Add(at))
		}
	}
	release := func(h string) func(context.Context, store.Tx) (store.Lease, error) {
		return func(ctx context.Context, tx store.Tx) (store.Lease, error) {
			if err := tx.ReleaseLease(ctx, "controller", h); err != nil {
				return store.Lease{}, err
			}
			return tx.GetLease(ctx, "controller")
		}
	}
	exp := func(at time.Duration) time.Time { return t0.Add(at + ttl).Truncate(time.Microsecond) }
	steps := []step{
		{"renew never taken", renew("a", 0), store.ErrNotFound, "", 0, time.Time{}},
		{"release never taken", release("a"), store.ErrNotFound, "", 0, time.Time{}},
		{"a acquires", acquire("a", 0), nil, "a", 1, exp(0)},
		{"b is refused", acquire("b", 5*time.Second), store.ErrConflict, "a", 1, exp(0)},
		{"a re-acquires (renewal)", acquire("a", 5*time.Second), nil, "a", 1, exp(5 * time.Second)},
		{"a renews", renew("a", 10*time.Second), nil, "a", 1, exp(10 * time.Second)},
		{"b cannot renew", renew("b", 10*time.Second), store.ErrConflict, "a", 1, exp(10 * time.Second)},
		{"b refused just before expiry", acquire("b", 25*time.Second-time.Microsecond), store.ErrConflict, "a", 1, exp(10 * time.Second)},
		{"b takes expired lease", acquire("b", 25*time.Second), nil, "b", 2, exp(25 * time.Second)},
		{"a lost it", renew("a", 26*time.Second), store.ErrConflict, "b", 2, exp(25 * time.Second)},
		{"a cannot release", release("a"), store.ErrConflict, "", 0, time.Time{}},
		{"b releases", release("b"), nil, "", 2, exp(25 * time.Second)},
		{"b releases again", release("b"), nil, "", 2, exp(25 * time.Second)},
		{"b cannot renew released", renew("b", 27*time.Second), store.ErrConflict, "", 2, exp(25 * time.Second)},
		{"a takes released lease at once", acquire("a", 27*time.Second), nil, "a", 3, exp(27 * time.Second)},
	}
	for _, st := range steps {
		var got store.Lease
		err := s.Update(t.Context(), func(tx store.Tx) error {
			var err error
			got, err = st.op(t.Context(), tx)
			return err
		})
		wantErr(t, st.name, err, st.err)
		if st.holder == "" && st.epoch == 0 {
			continue // nothing to compare
		}
		if got.Holder != st.holder || got.Epoch != st.epoch || !got.ExpiresAt.Equal(st.expires) {
			t.Errorf("%s: lease = %+v, want holder %q epoch %d expires %v", st.name, got, st.holder, st.epoch, st.expires)
		}
	}
	view(t, s, func(ctx context.Context, r store.Reader) error {
		l, err := r.GetLease(ctx, "controller")
		if err != nil {
			return err
		}
		if !l.HeldBy("a", t0.Add(30*time.Second)) || l.HeldBy("a", t0.Add(time.Minute)) || l.HeldBy("b", t0.Add(30*time.Second)) {
			t.Errorf("HeldBy wrong for %+v", l)
		}
		_, err = r.GetLease(ctx, "other")
		wantErr(t, "GetLease missing", err, store.ErrNotFound)
		return nil
	})
}
