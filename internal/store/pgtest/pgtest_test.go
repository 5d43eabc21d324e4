package pgtest

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

var pg Shared

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

// TestDatabases: each call gives a separate, empty, usable database.
func TestDatabases(t *testing.T) {
	ctx := t.Context()
	a, b := pg.Database(t), pg.Database(t)
	if a == b {
		t.Fatalf("two calls returned the same database %q", a)
	}
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, `CREATE TABLE t (x int); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var n int
	if err := cb.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 't'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("database b sees a's table")
	}
}

func TestServerMajor(t *testing.T) {
	for in, want := range map[string]int{"15.18 (Debian 15.18-0+deb12u1)": 15, "9.6.24": 9, "17": 17, "": 0, "devel": 0} {
		if got := serverMajor(in); got != want {
			t.Errorf("serverMajor(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestNotInstalled: a missing installation is an error naming the package.
func TestNotInstalled(t *testing.T) {
	t.Setenv(BinEnv, t.TempDir())
	_, err := Start(t.Context())
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), `"postgresql"`) {
		t.Fatalf("Start with no binaries: %v, want ErrNotInstalled naming the package", err)
	}
}
