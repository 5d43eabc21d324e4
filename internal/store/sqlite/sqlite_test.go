package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/store"
	"github.com/canaryd/canaryd/internal/store/storetest"
)

func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		s, err := Open(t.Context(), filepath.Join(t.TempDir(), "canaryd.db"), Options{Now: now})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestOpenRejectsBadPath(t *testing.T) {
	for _, p := range []string{"", ":memory:", "a.db?mode=ro", "x#y"} {
		if _, err := Open(t.Context(), p, Options{}); err == nil {
			t.Errorf("Open(%q) succeeded, want an error", p)
		}
	}
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
			path := filepath.Join(t.TempDir(), "canaryd.db")
			if from > 0 {
				old, err := open(ctx, path, Options{}, from)
				if err != nil {
					t.Fatalf("open at v%d: %v", from, err)
				}
				if v, _ := old.SchemaVersion(ctx); v != from {
					t.Fatalf("schema version = %d, want %d", v, from)
				}
				// v1 has services and events; write some.
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
			s, err := Open(ctx, path, Options{})
			if err != nil {
				t.Fatalf("upgrade from v%d: %v", from, err)
			}
			defer s.Close()
			if v, _ := s.SchemaVersion(ctx); v != len(ms) {
				t.Fatalf("schema version after upgrade = %d, want %d", v, len(ms))
			}
			err = s.Update(ctx, func(tx store.Tx) error {
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

func TestRefusesNewerSchema(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "canaryd.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(ctx, path, Options{})
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer schema: %v, want a refusal", err)
	}
}

// TestReopen: state survives closing and opening the file again.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "canaryd.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx store.Tx) error {
		_, err := tx.PutService(ctx, store.Service{Name: "api", Canary: "7", Traffic: 10})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.View(ctx, func(r store.Reader) error {
		sv, err := r.GetService(ctx, "api")
		if err == nil && (sv.Canary != "7" || sv.Traffic != 10) {
			t.Errorf("after reopen: %+v", sv)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
