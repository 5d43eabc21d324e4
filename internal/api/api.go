// Package api serves canaryd's admin API: JSON over HTTP under /api/v1,
// described by an OpenAPI 3 document at /api/v1/openapi.json.
//
// Every route is one row of a table (routes.go). The mux, the
// authorisation rules and the OpenAPI document are all built from that
// table, so a route cannot be served without being documented or
// documented without being served. Every operation goes through
// internal/control; this package only authenticates, decodes, applies the
// HTTP preconditions (If-Match, Idempotency-Key) and maps errors to
// statuses (errors.go, in one place).
package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/control"
	"github.com/canaryd/canaryd/internal/store"
)

// Prefix is where the API lives on the admin listener.
const Prefix = "/api/v1"

// Options configure New.
type Options struct {
	// Plane performs every operation; required.
	Plane *control.Plane
	// Tokens are the bearer tokens allowed in. With none, every request
	// is refused with 401: the API is never open.
	Tokens []config.Token
	// Logger receives server-side failures (5xx); nil discards. Nothing
	// is logged per request.
	Logger *slog.Logger
	// Now is the clock for endpoint liveness and idempotency expiry; nil
	// means time.Now.
	Now func() time.Time
	// MaxBodyBytes bounds a request body; a larger one gets 413. 0 means
	// 1 MiB.
	MaxBodyBytes int64
	// IdempotencyTTL is how long a response stored under an
	// Idempotency-Key is replayed; 0 means 24 h.
	IdempotencyTTL time.Duration
	// StreamKeepAlive is the interval of the comment lines an event
	// stream sends so that proxies keep it open; 0 means 15 s.
	StreamKeepAlive time.Duration
	// Releases serves the release routes (list, compare, abort, approve,
	// and promote's analysis check); nil answers them with 503 and lets
	// promote promote at once, as without a controller.
	Releases Releases
	// Alerts serves the alert routes (channels, test, dead alerts); nil
	// answers them with 503.
	Alerts Alerts
	// Done, when closed, ends every open event stream, so that
	// http.Server.Shutdown does not wait for them. nil: a stream ends only
	// when its client goes.
	Done <-chan struct{}
}

// api is the handler New returns. It is immutable after New, so safe for
// concurrent use.
type api struct {
	plane    *control.Plane
	store    store.Store
	auth     *authenticator
	log      *slog.Logger
	now      func() time.Time
	maxBody  int64
	idemTTL  time.Duration
	keep     time.Duration
	done     <-chan struct{}
	releases Releases
	alerts   Alerts
	routes   []route
	mux      *http.ServeMux
	patterns []string // every pattern registered on mux, for the tests
	openapi  []byte
}

// New returns the admin API handler. It serves only paths under Prefix
// (anything else is 404), so mount it on the admin mux with
//
//	mux.Handle(api.Prefix+"/", h)
//
// Every route needs a bearer token from o.Tokens; routes that change
// anything need the admin role.
func New(o Options) http.Handler {
	a := &api{
		plane:   o.Plane,
		store:   o.Plane.Store(),
		auth:    newAuthenticator(o.Tokens),
		log:     o.Logger,
		now:     o.Now,
		maxBody: o.MaxBodyBytes,
		idemTTL: o.IdempotencyTTL,
		keep:    o.StreamKeepAlive,
		done:    o.Done,
		mux:     http.NewServeMux(),

		releases: o.Releases,
		alerts:   o.Alerts,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.maxBody <= 0 {
		a.maxBody = 1 << 20
	}
	if a.idemTTL <= 0 {
		a.idemTTL = 24 * time.Hour
	}
	if a.keep <= 0 {
		a.keep = 15 * time.Second
	}
	a.routes = a.table()
	doc, err := json.MarshalIndent(openAPI(a.routes), "", "  ")
	if err != nil {
		panic("api: the OpenAPI document does not marshal: " + err.Error()) // a programming error, caught by the tests
	}
	a.openapi = doc
	for _, rt := range a.routes {
		pattern := rt.method + " " + rt.path
		a.mux.Handle(pattern, a.serve(rt))
		a.patterns = append(a.patterns, pattern)
	}
	a.mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody(&apiError{status: http.StatusNotFound,
			msg: "no such route " + r.Method + " " + r.URL.Path + " (see " + Prefix + "/openapi.json)"}))
	})
	return a
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
