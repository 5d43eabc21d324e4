package control

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/route/cohort"
	"github.com/canaryd/canaryd/internal/store"
	"github.com/canaryd/canaryd/internal/store/pgtest"
	"github.com/canaryd/canaryd/internal/store/postgres"
	"github.com/canaryd/canaryd/internal/store/sqlite"
)

const testConfig = `
listen: 127.0.0.1:0
services:
  - name: api
    builds:
      - {id: "41", version: 1.0.0, state: stable, endpoints: [127.0.0.1:9001, {address: "127.0.0.1:9002", weight: 3}]}
      - {id: "42", version: 1.1.0, endpoints: [127.0.0.1:9003]}
      - {id: "43", version: 1.2.0, endpoints: [127.0.0.1:9004]}
`

// pg is one throwaway PostgreSQL cluster for the test binary.
var pg pgtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

// stores are the two implementations every lifecycle test runs on.
var stores = []struct {
	name string
	open func(t *testing.T) store.Store
}{
	{"sqlite", func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "c.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
	{"postgres", func(t *testing.T) store.Store {
		s, err := postgres.Open(context.Background(), pg.Database(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
}

// onBothStores runs f once per store implementation.
func onBothStores(t *testing.T, f func(t *testing.T, open func(t *testing.T) store.Store)) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) { f(t, st.open) })
	}
}

func newPlane(t *testing.T) (*Plane, *config.Config) {
	t.Helper()
	return newPlaneOn(t, stores[0].open)
}

func newPlaneOn(t *testing.T, open func(t *testing.T) store.Store) (*Plane, *config.Config) {
	t.Helper()
	ctx := context.Background()
	s := open(t)
	t.Cleanup(func() { s.Close() })
	cfg, err := config.Parse([]byte(testConfig), "test", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	p := New(s, Options{})
	if err := p.Sync(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	return p, cfg
}

func states(t *testing.T, p *Plane) map[string]store.BuildState {
	t.Helper()
	out := map[string]store.BuildState{}
	err := p.Store().View(context.Background(), func(r store.Reader) error {
		bs, err := r.ListBuilds(context.Background(), store.BuildFilter{Service: "api"})
		for _, b := range bs {
			out[b.ID] = b.State
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The lifecycle as a table, on both stores: each row is an operation from
// a given start and its outcome; a refused operation changes nothing.
func TestLifecycleTable(t *testing.T) {
	onBothStores(t, lifecycleTable)
}

func lifecycleTable(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	type op func(p *Plane) error
	start42 := func(p *Plane) error {
		_, err := p.StartCanary(ctx, "ops", "api", "42", StartOptions{Traffic: 5})
		return err
	}
	for _, tc := range []struct {
		name    string
		setup   []op
		do      op
		wantErr string
		want    map[string]store.BuildState
	}{
		{"start canary", nil, start42, "", map[string]store.BuildState{"41": "stable", "42": "canary", "43": "deployed"}},
		{"second canary refused", []op{start42}, func(p *Plane) error {
			_, err := p.StartCanary(ctx, "ops", "api", "43", StartOptions{Traffic: 5})
			return err
		}, `already has canary "42"; roll it back first, or start with replace`, map[string]store.BuildState{"41": "stable", "42": "canary", "43": "deployed"}},
		{"replace canary", []op{start42}, func(p *Plane) error {
			_, err := p.StartCanary(ctx, "ops", "api", "43", StartOptions{Traffic: 5, Replace: true})
			return err
		}, "", map[string]store.BuildState{"41": "stable", "42": "deployed", "43": "canary"}},
		{"stable cannot be canary", nil, func(p *Plane) error {
			_, err := p.StartCanary(ctx, "ops", "api", "41", StartOptions{Traffic: 5})
			return err
		}, `build "41" is stable; only a deployed build can become the canary`, nil},
		{"traffic 101 refused", []op{start42}, func(p *Plane) error {
			_, err := p.SetTraffic(ctx, "ops", "api", 101, "")
			return err
		}, "traffic: 101 is outside 0..100", nil},
		{"traffic without canary", nil, func(p *Plane) error {
			_, err := p.SetTraffic(ctx, "ops", "api", 10, "")
			return err
		}, `service "api" has no canary; start a canary first`, nil},
		{"promote", []op{start42}, func(p *Plane) error {
			_, err := p.Promote(ctx, "ops", "api", "")
			return err
		}, "", map[string]store.BuildState{"41": "deployed", "42": "stable", "43": "deployed"}},
		{"rollback", []op{start42}, func(p *Plane) error {
			_, err := p.Rollback(ctx, "ops", "api", "errors")
			return err
		}, "", map[string]store.BuildState{"41": "stable", "42": "deployed", "43": "deployed"}},
		{"rollback without canary", nil, func(p *Plane) error {
			_, err := p.Rollback(ctx, "ops", "api", "")
			return err
		}, "has no canary; nothing to roll back", nil},
		{"delete stable refused", nil, func(p *Plane) error {
			_, err := p.DeleteBuild(ctx, "ops", "api", "41", "")
			return err
		}, `build "41" is stable; only a deployed build can be deleted`, nil},
		{"delete canary refused", []op{start42}, func(p *Plane) error {
			_, err := p.DeleteBuild(ctx, "ops", "api", "42", "")
			return err
		}, `build "42" is canary`, nil},
		{"delete deployed", nil, func(p *Plane) error {
			_, err := p.DeleteBuild(ctx, "ops", "api", "43", "")
			return err
		}, "", map[string]store.BuildState{"41": "stable", "42": "deployed", "43": "deleted"}},
		{"second stable refused", nil, func(p *Plane) error {
			_, err := p.SetStable(ctx, "ops", "api", "42", "")
			return err
		}, `already has stable build "41"`, nil},
		{"unknown build", nil, func(p *Plane) error {
			_, err := p.StartCanary(ctx, "ops", "api", "99", StartOptions{})
			return err
		}, `build "99" of service "api": not found`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newPlaneOn(t, open)
			for _, s := range tc.setup {
				if err := s(p); err != nil {
					t.Fatal(err)
				}
			}
			before := states(t, p)
			evBefore := countEvents(t, p)
			err := tc.do(p)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want containing %q", err, tc.wantErr)
				}
				if after := states(t, p); !equal(after, before) {
					t.Fatalf("refused operation changed states: %v -> %v", before, after)
				}
				if countEvents(t, p) != evBefore {
					t.Fatal("refused operation appended an event")
				}
				return
			}
			if got := states(t, p); !equal(got, tc.want) {
				t.Fatalf("states = %v, want %v", got, tc.want)
			}
			if countEvents(t, p) != evBefore+1 {
				t.Fatal("a change must append exactly one event")
			}
		})
	}
}

func countEvents(t *testing.T, p *Plane) int {
	var n int
	_ = p.Store().View(context.Background(), func(r store.Reader) error {
		evs, err := r.ListEvents(context.Background(), store.EventQuery{Limit: 1000})
		n = len(evs)
		return err
	})
	return n
}

func equal(a, b map[string]store.BuildState) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestIllegalIsMatchable(t *testing.T) {
	p, _ := newPlane(t)
	_, err := p.Rollback(context.Background(), "ops", "api", "")
	if !errors.Is(err, ErrIllegal) {
		t.Fatalf("errors.Is(%v, ErrIllegal) = false", err)
	}
}

// Fresh cohorts never share a bucket with an earlier window, and the space
// running out is a clear, recoverable error.
func TestFreshCohortsDoNotOverlap(t *testing.T) {
	ctx := context.Background()
	p, cfg := newPlane(t)
	seen := make([]bool, cohort.Buckets)
	ids := []string{"42", "43"}
	for round := 0; ; round++ {
		id := ids[round%2]
		_, err := p.StartCanary(ctx, "ops", "api", id, StartOptions{Traffic: 30, FreshCohort: true})
		if err != nil {
			if !strings.Contains(err.Error(), "canaryctl cohort reset") || round < 3 {
				t.Fatalf("round %d: %v", round, err)
			}
			break
		}
		snap, err := p.Snapshot(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		w := cohort.WindowFor(snap["api"].Offset, snap["api"].Traffic)
		for b := uint32(0); b < cohort.Buckets; b++ {
			if w.Contains(b) {
				if seen[b] {
					t.Fatalf("round %d: bucket %d reused", round, b)
				}
				seen[b] = true
			}
		}
		if _, err := p.Rollback(ctx, "controller", "api", "test"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.ResetCohorts(ctx, "ops", "api", "reuse"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.StartCanary(ctx, "ops", "api", "42", StartOptions{Traffic: 30, FreshCohort: true}); err != nil {
		t.Fatalf("after reset: %v", err)
	}
}

// Random operation sequences keep the invariants on both stores: one
// stable, at most one canary, traffic only with a canary.
func TestRandomOperationsKeepInvariants(t *testing.T) {
	onBothStores(t, randomOperations)
}

func randomOperations(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	p, cfg := newPlaneOn(t, open)
	rng := rand.New(rand.NewPCG(1, 2))
	ids := []string{"41", "42", "43"}
	for i := 0; i < 300; i++ {
		id := ids[rng.IntN(3)]
		switch rng.IntN(7) {
		case 0:
			p.StartCanary(ctx, "ops", "api", id, StartOptions{Traffic: float64(rng.IntN(101)), Replace: rng.IntN(2) == 0, FreshCohort: rng.IntN(2) == 0})
		case 1:
			p.SetTraffic(ctx, "ops", "api", float64(rng.IntN(120)), "")
		case 2:
			p.Promote(ctx, "ops", "api", "")
		case 3:
			p.Rollback(ctx, "ops", "api", "")
		case 4:
			p.SetPaused(ctx, "ops", "api", rng.IntN(2) == 0, "")
		case 5:
			p.ResetCohorts(ctx, "ops", "api", "")
		case 6:
			p.FreshCohort(ctx, "ops", "api", "")
		}
		st := states(t, p)
		var stable, canary int
		for _, s := range st {
			switch s {
			case store.StateStable:
				stable++
			case store.StateCanary:
				canary++
			}
		}
		snap, err := p.Snapshot(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if stable != 1 || canary > 1 || (canary == 0 && snap["api"].Traffic != 0) || (canary == 1) != (snap["api"].Canary != nil) {
			t.Fatalf("step %d: invariants broken: %v, snapshot %+v", i, st, snap["api"])
		}
	}
}

func TestRegisterHeartbeatTTL(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p, cfg := newPlane(t)
	p.now = func() time.Time { return now }
	spec := BuildSpec{Service: "api", ID: "50", Version: "2.0.0", Endpoints: []string{"127.0.0.1:9050"}, TTL: 10 * time.Second}
	if _, err := p.Register(ctx, "build-50", spec); err != nil {
		t.Fatal(err)
	}
	n := countEvents(t, p)
	if _, err := p.Register(ctx, "build-50", spec); err != nil {
		t.Fatalf("re-register: %v", err)
	}
	if countEvents(t, p) != n {
		t.Fatal("re-registering the same build must not add an event")
	}
	bad := spec
	bad.Version = "2.0.1"
	if _, err := p.Register(ctx, "build-50", bad); !errors.Is(err, ErrIllegal) {
		t.Fatalf("new version under the same id: %v", err)
	}
	if _, err := p.StartCanary(ctx, "ops", "api", "50", StartOptions{Traffic: 10}); err != nil {
		t.Fatal(err)
	}
	alive := func() int {
		snap, err := p.Snapshot(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return len(snap["api"].Canary.Endpoints)
	}
	if alive() != 1 {
		t.Fatal("registered endpoint not routed")
	}
	now = now.Add(8 * time.Second)
	if err := p.Heartbeat(ctx, "api", "50", "127.0.0.1:9050"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(8 * time.Second)
	if alive() != 1 {
		t.Fatal("heartbeat did not extend the TTL")
	}
	now = now.Add(3 * time.Second)
	if alive() != 0 {
		t.Fatal("an endpoint past its TTL must drop out of routing")
	}
	if err := p.Heartbeat(ctx, "api", "50", "127.0.0.1:9999"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("heartbeat of an unknown endpoint: %v", err)
	}
	if _, err := p.Register(ctx, "x", BuildSpec{Service: "api", ID: "bad id"}); err == nil || !strings.Contains(err.Error(), "id:") {
		t.Fatalf("bad id: %v", err)
	}
}

// Config precedence: the store keeps runtime state across a restart with
// the same config; a build removed from the config is deleted if deployed.
func TestSyncPrecedence(t *testing.T) {
	ctx := context.Background()
	p, cfg := newPlane(t)
	if _, err := p.StartCanary(ctx, "ops", "api", "42", StartOptions{Traffic: 30}); err != nil {
		t.Fatal(err)
	}
	if err := p.Sync(ctx, cfg); err != nil { // a restart
		t.Fatal(err)
	}
	snap, _ := p.Snapshot(ctx, cfg)
	if snap["api"].Canary == nil || snap["api"].Traffic != 30 {
		t.Fatalf("runtime state lost on restart: %+v", snap["api"])
	}
	if w := snap["api"].Stable.Endpoints; len(w) != 2 || w[1].Weight != 3 {
		t.Fatalf("config weights not applied: %+v", w)
	}
	cfg.Services[0].Builds = cfg.Services[0].Builds[:2] // drop 43
	if err := p.Sync(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if st := states(t, p); st["43"] != store.StateDeleted {
		t.Fatalf("build removed from the config: %v", st)
	}
	var found bool
	_ = p.Store().View(ctx, func(r store.Reader) error {
		evs, _ := r.ListEvents(ctx, store.EventQuery{Service: "api", Types: []event.Type{event.BuildDeleted}})
		found = len(evs) == 1 && evs[0].Actor == "config"
		return nil
	})
	if !found {
		t.Fatal("no event for the build the config removed")
	}
}
