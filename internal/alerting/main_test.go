package alerting

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/store"
	"github.com/canaryd/canaryd/internal/store/pgtest"
	"github.com/canaryd/canaryd/internal/store/postgres"
	"github.com/canaryd/canaryd/internal/store/sqlite"
)

var pg pgtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

// backend opens a fresh store of one kind; reopen opens the same database
// again (a restart).
type backend struct {
	name string
	open func(t testing.TB) (st store.Store, reopen func(t testing.TB) store.Store)
}

func openSQLite(t testing.TB, path string, now func() time.Time) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path, sqlite.Options{Now: now})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func openPostgres(t testing.TB, dsn string, now func() time.Time) store.Store {
	t.Helper()
	st, err := postgres.Open(t.Context(), dsn, postgres.Options{Now: now})
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// backends returns both stores; now is the stores' clock (nil: wall clock).
func backends(now func() time.Time) []backend {
	return []backend{
		{"sqlite", func(t testing.TB) (store.Store, func(t testing.TB) store.Store) {
			path := filepath.Join(t.TempDir(), "canaryd.db")
			return openSQLite(t, path, now), func(t testing.TB) store.Store { return openSQLite(t, path, now) }
		}},
		{"postgres", func(t testing.TB) (store.Store, func(t testing.TB) store.Store) {
			dsn := pg.Database(t)
			return openPostgres(t, dsn, now), func(t testing.TB) store.Store { return openPostgres(t, dsn, now) }
		}},
	}
}
