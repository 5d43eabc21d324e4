package api

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/canaryd/canaryd/internal/api/wire"
	"github.com/canaryd/canaryd/internal/control"
)

// call is one request to a JSON route, after authentication and the
// checks common to every route.
type call struct {
	r     *http.Request
	who   principal
	body  []byte
	plane *control.Plane // with the If-Match precondition applied
}

func (c *call) actor() control.Actor { return control.Actor(c.who.name) }

// path returns a path wildcard that was checked against idPattern.
func (c *call) path(name string) string { return c.r.PathValue(name) }

// serve wraps one route: authentication and role, path ids, body limit
// and content type, If-Match, Idempotency-Key, then the route's handler and
// the JSON answer. The order matters: nobody learns anything about a route
// (not even that a path id is malformed) without a valid token.
func (a *api) serve(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, ok := a.auth.check(r)
		if !ok {
			unauthorized(w)
			return
		}
		if rt.admin && !who.admin {
			a.fail(w, rt, &apiError{status: http.StatusForbidden,
				msg: "token " + strconv.Quote(who.name) + " has the viewer role; " + rt.op + " needs an admin token"})
			return
		}
		for _, name := range []string{"service", "build"} {
			if strings.Contains(rt.path, "{"+name+"}") {
				if err := checkID(name, r.PathValue(name)); err != nil {
					a.fail(w, rt, err)
					return
				}
			}
		}
		if rt.raw != nil {
			rt.raw(w, r)
			return
		}
		c := &call{r: r, who: who, plane: a.plane}
		if rt.body != nil {
			if ct := r.Header.Get("Content-Type"); ct != "" {
				if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
					a.fail(w, rt, &apiError{status: http.StatusUnsupportedMediaType, field: "Content-Type",
						msg: strconv.Quote(ct) + " is not application/json"})
					return
				}
			}
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.maxBody))
			if err != nil {
				a.fail(w, rt, err)
				return
			}
			c.body = body
		}
		if rt.ifMatch {
			rev, err := ifMatch(r.Header.Get("If-Match"))
			if err != nil {
				a.fail(w, rt, err)
				return
			}
			if rev != 0 {
				c.plane = a.plane.IfRevision(rev)
			}
		}
		if key := r.Header.Get("Idempotency-Key"); key != "" && r.Method == http.MethodPost {
			a.idempotent(w, rt, c, key)
			return
		}
		st, body, etag := a.run(rt, c)
		if etag != "" {
			w.Header().Set("ETag", etag)
		}
		writeJSON(w, st, body)
	})
}

// run calls the route's handler and renders its answer.
func (a *api) run(rt route, c *call) (status int, body []byte, etag string) {
	v, err := rt.handle(c)
	if err != nil {
		return a.render(rt, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return a.render(rt, err)
	}
	if s, ok := v.(wire.Service); ok {
		etag = strconv.Quote(strconv.FormatInt(s.Revision, 10))
	}
	return rt.status, b, etag
}

// render turns an error into its status and body, logging server faults.
func (a *api) render(rt route, err error) (int, []byte, string) {
	st, body := status(err)
	if st >= 500 {
		a.log.Error("admin api: request failed", "op", rt.op, "err", err)
	}
	b, _ := json.Marshal(body)
	return st, b, ""
}

func (a *api) fail(w http.ResponseWriter, rt route, err error) {
	st, body, _ := a.render(rt, err)
	writeJSON(w, st, body)
}

// ifMatch parses an If-Match header: a service revision as an entity tag
// ("12", W/"12" or a bare 12). "" and "*" ask for no check (0).
func ifMatch(h string) (int64, error) {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return 0, nil
	}
	v := strings.Trim(strings.TrimPrefix(h, "W/"), `"`)
	rev, err := strconv.ParseInt(v, 10, 64)
	if err != nil || rev <= 0 {
		return 0, badRequest("If-Match", strconv.Quote(h)+` is not a service revision (want the ETag of GET /api/v1/services/{service}, e.g. "12")`)
	}
	return rev, nil
}
