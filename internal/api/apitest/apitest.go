// Package apitest runs the admin API for tests: a real httptest server on
// 127.0.0.1 serving internal/api over a real SQLite store in a temporary
// directory, with a control.Plane synced from a small config and an
// alerting.Service built from its alerts section. The API,
// client and canaryctl tests all use it, so they test the same thing a
// deployment runs.
package apitest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/alerting"
	"github.com/canaryd/canaryd/internal/api"
	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/control"
	"github.com/canaryd/canaryd/internal/release"
	"github.com/canaryd/canaryd/internal/store"
	"github.com/canaryd/canaryd/internal/store/sqlite"
)

// Config is the default test config: service api with stable build 41 and
// deployed builds 42 and 43; service web with no stable build yet and one
// deployed build 7.
const Config = `
listen: 127.0.0.1:0
services:
  - name: api
    builds:
      - {id: "41", version: 1.0.0, state: stable, endpoints: [127.0.0.1:9001]}
      - {id: "42", version: 1.1.0, endpoints: [127.0.0.1:9002]}
      - {id: "43", version: 1.2.0, endpoints: [127.0.0.1:9003]}
  - name: web
    match: {path_prefix: /web}
    builds:
      - {id: "7", version: 0.7.0, endpoints: [127.0.0.1:9007]}
`

// The tokens every test server accepts.
const (
	AdminToken  = "admin-secret-token"
	ViewerToken = "viewer-secret-token"
	BuildToken  = "build-secret-token"
)

// Server is a running admin API.
type Server struct {
	URL   string
	Plane *control.Plane
	Srv   *httptest.Server
	// Handler is the api.New handler the server runs.
	Handler http.Handler
	// Releases is the release controller behind the release routes. The
	// server does not Run it; a test drives it (Step) when it needs a
	// release under way.
	Releases *release.Controller
	// Cfg is the parsed config.
	Cfg *config.Config
	// Alerts is the alerting service behind the alert routes, over the
	// server's store and the config's alerts section. The server does not
	// Run it: channel management and tests work without, and nothing is
	// delivered from the outbox unless a test runs it.
	Alerts *alerting.Service
}

// Options adjust New.
type Options struct {
	Config          string // "" means Config
	StreamKeepAlive time.Duration
	// Store is the store to serve (e.g. PostgreSQL from pgtest); it must be
	// empty and the caller closes it. nil means a fresh SQLite store in
	// t.TempDir(), closed when t ends.
	Store store.Store
	// Releases, when set, serves the release routes; nil means a
	// release.Controller over the server's plane and config (not run).
	Releases *release.Controller
	// Alerts, when set, serves the alert routes; nil means an
	// alerting.Service over the server's store and the config's alerts
	// section (not run).
	Alerts *alerting.Service
}

// New starts a server that stops when t ends.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	ctx := context.Background()
	s := o.Store
	if s == nil {
		lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "canaryd.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lite.Close() })
		s = lite
	}
	if o.Config == "" {
		o.Config = Config
	}
	cfg, err := config.Parse([]byte(o.Config), "test.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	p := control.New(s, control.Options{})
	if err := p.Sync(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	rc := o.Releases
	if rc == nil {
		rc = release.New(release.Options{Plane: p, Config: func() *config.Config { return cfg }})
	}
	as := o.Alerts
	if as == nil {
		if as, err = alerting.New(ctx, alerting.Options{Store: s, Config: &cfg.Alerts}); err != nil {
			t.Fatal(err)
		}
	}
	h := api.New(api.Options{Plane: p, Done: done, StreamKeepAlive: o.StreamKeepAlive, Releases: rc, Alerts: as, Tokens: []config.Token{
		{Name: "alice", Role: "admin", Value: AdminToken},
		{Name: "bob", Role: "viewer", Value: ViewerToken},
		{Name: "ci-build", Role: "admin", Value: BuildToken},
	}})
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		close(done)
		srv.Close()
	})
	return &Server{URL: srv.URL, Plane: p, Srv: srv, Handler: h, Releases: rc, Cfg: cfg, Alerts: as}
}
