package storeurl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canaryd/canaryd/internal/store"
	"github.com/canaryd/canaryd/internal/store/pgtest"
)

var pg pgtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

func TestOpenSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := Open(t.Context(), "sqlite://"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file not created: %v", err)
	}
}

func TestOpenPostgres(t *testing.T) {
	// pgtest hands out key=value DSNs; build the URL form the config uses.
	dsn := pg.Database(t)
	kv := map[string]string{}
	for _, f := range strings.Fields(dsn) {
		k, v, _ := strings.Cut(f, "=")
		kv[k] = v
	}
	url := "postgres://" + kv["user"] + "@/" + kv["dbname"] + "?host=" + kv["host"] + "&port=" + kv["port"] + "&sslmode=disable"
	s, err := Open(t.Context(), url, Options{})
	if err != nil {
		t.Fatalf("Open(%q): %v", url, err)
	}
	s.Close()
}

func TestOpenErrors(t *testing.T) {
	_, err := Open(t.Context(), "mysql://u:secret@h/db", Options{})
	if !errors.Is(err, store.ErrInvalid) || strings.Contains(err.Error(), "secret") {
		t.Fatalf("unknown scheme: %v", err)
	}
	_, err = Open(t.Context(), "postgres://u:secret@127.0.0.1:1/db?connect_timeout=1", Options{})
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("unreachable postgres: %v (must fail without the password)", err)
	}
}

func TestRedact(t *testing.T) {
	tests := map[string]string{
		"postgres://u:pw@h:5432/db?x=1":  "postgres://u:xxx@h:5432/db?x=1",
		"postgres://u@h/db":              "postgres://u@h/db",
		"postgres://h/db?password=x@y":   "postgres://h/db?password=xxx",
		"postgres://h/db?password=p&a=b": "postgres://h/db?password=xxx&a=b",
		"sqlite://a.db":                  "sqlite://a.db",
		"nonsense":                       "nonsense",
	}
	for in, want := range tests {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
