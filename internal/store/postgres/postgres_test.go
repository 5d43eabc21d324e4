package postgres

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/store"
	"github.com/canaryd/canaryd/internal/store/pgtest"
	"github.com/canaryd/canaryd/internal/store/storetest"
)

var pg pgtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

func openTest(t *testing.T, dsn string, opts Options) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		return openTest(t, pg.Database(t), Options{Now: now})
	})
}

// TestMigrations brings a database to every earlier schema version, puts
// data in it, then opens it normally: every later migration applies and
// the data survives.
func TestMigrations(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 {
		t.Fatalf("%d migrations; the upgrade test needs at least 2", len(ms))
	}
	for from := 0; from <= len(ms); from++ {
		t.Run(fmt.Sprintf("from_v%d", from), func(t *testing.T) {
			ctx := t.Context()
			dsn := pg.Database(t)
			if from > 0 {
				old, err := open(ctx, dsn, Options{}, from)
				if err != nil {
					t.Fatalf("open at v%d: %v", from, err)
				}
				if v, _ := old.SchemaVersion(ctx); v != from {
					t.Fatalf("schema version = %d, want %d", v, from)
				}
				err = old.Update(ctx, func(tx store.Tx) error {
					if _, err := tx.PutService(ctx, store.Service{Name: "api", Traffic: 5}); err != nil {
						return err
					}
					_, err := tx.AppendEvent(ctx, event.Event{Service: "api", Type: event.CanaryStarted})
					return err
				})
				if err != nil {
					t.Fatalf("write at v%d: %v", from, err)
				}
				old.Close()
			}
			s := openTest(t, dsn, Options{})
			if v, _ := s.SchemaVersion(ctx); v != len(ms) {
				t.Fatalf("schema version after upgrade = %d, want %d", v, len(ms))
			}
			err := s.Update(ctx, func(tx store.Tx) error {
				if from > 0 {
					sv, err := tx.GetService(ctx, "api")
					if err != nil || sv.Traffic != 5 {
						t.Errorf("service after upgrade = %+v, %v", sv, err)
					}
				}
				_, err := tx.AcquireLease(ctx, "controller", "me", time.Minute, time.Now())
				return err
			})
			if err != nil {
				t.Fatalf("use after upgrade: %v", err)
			}
		})
	}
}

// TestConcurrentOpen: replicas starting together migrate exactly once.
func TestConcurrentOpen(t *testing.T) {
	dsn := pg.Database(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := Open(t.Context(), dsn, Options{})
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	dsn := pg.Database(t)
	s := openTest(t, dsn, Options{})
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES (999, 'future')`); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), dsn, Options{})
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer schema: %v, want a refusal", err)
	}
}

// TestFeedAcrossReplicas: a change committed through one Store reaches a
// subscriber of another Store on the same database (another replica).
func TestFeedAcrossReplicas(t *testing.T) {
	dsn := pg.Database(t)
	a := openTest(t, dsn, Options{})
	b := openTest(t, dsn, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	changes := b.Subscribe(ctx)
	err := a.Update(ctx, func(tx store.Tx) error {
		_, err := tx.PutService(ctx, store.Service{Name: "api"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-changes:
		if c.Kind != store.ChangeService || c.Service != "api" {
			t.Fatalf("replica b got %+v, want the service change", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("replica b got nothing within 10s")
	}
}

// TestFeedReconnects: when the listening connection dies, subscribers get
// a resync and later changes still arrive.
func TestFeedReconnects(t *testing.T) {
	s := openTest(t, pg.Database(t), Options{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	changes := s.Subscribe(ctx)
	if _, err := s.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	wait := func(want store.ChangeKind) {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case c := <-changes:
				if c.Kind == want {
					return
				}
			case <-deadline:
				t.Fatalf("no %s change within 15s", want)
			}
		}
	}
	wait(store.ChangeResync)
	err := s.Update(ctx, func(tx store.Tx) error {
		_, err := tx.PutService(ctx, store.Service{Name: "after"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	wait(store.ChangeService)
}

// TestSerializationRetry: two transactions that read and write the same
// row concurrently both succeed, one of them retried, and neither update
// is lost.
func TestSerializationRetry(t *testing.T) {
	s := openTest(t, pg.Database(t), Options{})
	ctx := t.Context()
	if err := s.Update(ctx, func(tx store.Tx) error {
		_, err := tx.PutService(ctx, store.Service{Name: "api"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	proceed := make(chan struct{})
	calls := 0
	errs := make(chan error, 1)
	go func() {
		errs <- s.Update(ctx, func(tx store.Tx) error {
			calls++
			sv, err := tx.GetService(ctx, "api")
			if err != nil {
				return err
			}
			if calls == 1 {
				close(read)
				<-proceed // the other writer commits meanwhile
			}
			sv.Traffic += 10
			_, err = tx.PutService(ctx, sv)
			return err
		})
	}()
	<-read
	if err := s.Update(ctx, func(tx store.Tx) error {
		sv, err := tx.GetService(ctx, "api")
		if err != nil {
			return err
		}
		sv.Traffic += 1
		_, err = tx.PutService(ctx, sv)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	close(proceed)
	if err := <-errs; err != nil {
		t.Fatalf("retried Update: %v", err)
	}
	if calls < 2 {
		t.Fatalf("fn ran %d times, want a retry", calls)
	}
	err := s.View(ctx, func(r store.Reader) error {
		sv, err := r.GetService(ctx, "api")
		if err == nil && sv.Traffic != 11 {
			t.Errorf("traffic = %v, want 11 (both updates)", sv.Traffic)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
