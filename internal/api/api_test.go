package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/api"
	"github.com/canaryd/canaryd/internal/api/apitest"
	"github.com/canaryd/canaryd/internal/api/wire"
	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/store"
	"github.com/canaryd/canaryd/internal/store/pgtest"
	"github.com/canaryd/canaryd/internal/store/postgres"
)

// do sends one request and returns the status, headers and body.
func do(t *testing.T, srv *apitest.Server, method, path, token, body string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

type doc struct {
	Paths map[string]map[string]struct {
		OperationID string `json:"operationId"`
		Role        string `json:"x-role"`
	} `json:"paths"`
}

func openapi(t *testing.T, srv *apitest.Server) doc {
	t.Helper()
	st, _, b := do(t, srv, "GET", "/api/v1/openapi.json", apitest.ViewerToken, "")
	if st != 200 {
		t.Fatalf("openapi.json: %d %s", st, b)
	}
	var d doc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// Every route the mux serves is in the OpenAPI document and every
// documented route is served, with the same method.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	d := openapi(t, srv)
	var documented []string
	for path, ops := range d.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	served := slices.Clone(api.Patterns(srv.Handler))
	sort.Strings(documented)
	sort.Strings(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("documented routes:\n%s\nserved routes:\n%s", strings.Join(documented, "\n"), strings.Join(served, "\n"))
	}
	if len(served) < 18 {
		t.Fatalf("only %d routes", len(served))
	}
}

// fill replaces path wildcards with ids that exist.
func fill(path string) string {
	return strings.NewReplacer("{service}", "api", "{build}", "42").Replace(path)
}

func eventCount(t *testing.T, srv *apitest.Server) int {
	t.Helper()
	n := 0
	err := srv.Plane.Store().View(context.Background(), func(r store.Reader) error {
		evs, err := r.ListEvents(context.Background(), store.EventQuery{Limit: store.MaxPageSize})
		n = len(evs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The auth walk: every documented route refuses an anonymous caller and a
// wrong token with 401 and a challenge, and every admin route refuses a
// viewer with 403 and changes nothing. A viewer may call every read route.
func TestAuthWalk(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	d := openapi(t, srv)
	before := eventCount(t, srv)
	n := 0
	for path, ops := range d.Paths {
		for method, op := range ops {
			method = strings.ToUpper(method)
			body := ""
			if method == "POST" {
				body = `{}`
			}
			t.Run(op.OperationID, func(t *testing.T) {
				for _, tok := range []string{"", "wrong-token", "Basic " + apitest.AdminToken} {
					req, _ := http.NewRequest(method, srv.URL+fill(path), strings.NewReader(body))
					switch {
					case strings.HasPrefix(tok, "Basic "):
						req.Header.Set("Authorization", tok)
					case tok != "":
						req.Header.Set("Authorization", "Bearer "+tok)
					}
					resp, err := srv.Srv.Client().Do(req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
						t.Errorf("token %q: status %d, WWW-Authenticate %q; want 401 with a Bearer challenge", tok, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
					}
				}
				if op.Role == "admin" {
					st, _, b := do(t, srv, method, fill(path), apitest.ViewerToken, body)
					if st != 403 {
						t.Errorf("viewer: %d %s; want 403", st, b)
					}
					return
				}
				if op.Role != "viewer" {
					t.Fatalf("x-role %q", op.Role)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, method, srv.URL+fill(path), nil)
				req.Header.Set("Authorization", "Bearer "+apitest.ViewerToken)
				resp, err := srv.Srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close() // the stream ends when we go
				if resp.StatusCode != 200 {
					t.Errorf("viewer read: %d; want 200", resp.StatusCode)
				}
			})
			n++
		}
	}
	if after := eventCount(t, srv); after != before {
		t.Errorf("refused calls recorded %d events", after-before)
	}
	t.Logf("%d routes walked", n)
}

func service(t *testing.T, srv *apitest.Server, name string) (wire.Service, string) {
	t.Helper()
	st, h, b := do(t, srv, "GET", "/api/v1/services/"+name, apitest.ViewerToken, "")
	if st != 200 {
		t.Fatalf("get service: %d %s", st, b)
	}
	var s wire.Service
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s, h.Get("ETag")
}

// Bad input is answered 4xx with a JSON error naming the field, and
// changes nothing.
func TestBadInput(t *testing.T) { eachStore(t, testBadInput) }

func testBadInput(t *testing.T, o apitest.Options) {
	srv := apitest.New(t, withOpts(o, apitest.Options{}))
	// a running canary at 5 %, so traffic changes would be legal
	if st, _, b := do(t, srv, "POST", "/api/v1/services/api/canary", apitest.AdminToken, `{"build":"42","traffic":5}`); st != 200 {
		t.Fatalf("start: %d %s", st, b)
	}
	big := `{"reason":"` + strings.Repeat("x", 1<<20+10) + `"}`
	for _, tc := range []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		field                    string
		msg                      string
	}{
		{"invalid JSON", "POST", "/api/v1/services/api/traffic", `{"traffic": 10`, nil, 400, "", "invalid JSON"},
		{"not JSON", "POST", "/api/v1/services/api/traffic", `traffic=10`, nil, 400, "", "invalid JSON"},
		{"unknown field", "POST", "/api/v1/services/api/traffic", `{"traffic": 10, "trafic": 5}`, nil, 400, "trafic", "unknown field"},
		{"wrong type", "POST", "/api/v1/services/api/traffic", `{"traffic": "10"}`, nil, 400, "traffic", "want a number"},
		{"array body", "POST", "/api/v1/services/api/traffic", `[10]`, nil, 400, "", "want a JSON object"},
		{"trailing data", "POST", "/api/v1/services/api/traffic", `{"traffic": 10} {}`, nil, 400, "", "after the JSON object"},
		{"empty body", "POST", "/api/v1/services/api/traffic", ``, nil, 400, "", "body is empty"},
		{"missing traffic", "POST", "/api/v1/services/api/traffic", `{"reason":"x"}`, nil, 400, "traffic", "required"},
		{"traffic 101", "POST", "/api/v1/services/api/traffic", `{"traffic": 101}`, nil, 400, "traffic", "0 to 100"},
		{"traffic negative", "POST", "/api/v1/services/api/traffic", `{"traffic": -1}`, nil, 400, "traffic", "0 to 100"},
		{"canary traffic 101", "POST", "/api/v1/services/api/canary", `{"build":"43","traffic":101,"replace":true}`, nil, 400, "traffic", "0 to 100"},
		{"too big", "POST", "/api/v1/services/api/promote", big, nil, 413, "", "larger than"},
		{"wrong content type", "POST", "/api/v1/services/api/promote", `{}`, []string{"Content-Type", "text/plain"}, 415, "Content-Type", "not application/json"},
		{"odd service id", "POST", "/api/v1/services/a%20b/promote", `{}`, nil, 400, "service", "not a valid id"},
		{"odd build id", "POST", "/api/v1/services/api/canary", `{"build":"../42"}`, nil, 400, "build", "not a valid id"},
		{"odd path build", "DELETE", "/api/v1/services/api/builds/4$2", ``, nil, 400, "build", "not a valid id"},
		{"dot-first id", "GET", "/api/v1/services/.api", ``, nil, 400, "service", "not a valid id"},
		{"bad register id", "POST", "/api/v1/services/api/builds", `{"id":"a/b","endpoints":["127.0.0.1:1"]}`, nil, 400, "id", "not a valid build id"},
		{"bad endpoint", "POST", "/api/v1/services/api/builds", `{"id":"50","endpoints":["nohost"]}`, nil, 400, "endpoints[0]", ""},
		{"bad ttl", "POST", "/api/v1/services/api/builds", `{"id":"50","endpoints":["127.0.0.1:1"],"ttl":"soon"}`, nil, 400, "ttl", "not a duration"},
		{"bad If-Match", "POST", "/api/v1/services/api/promote", `{}`, []string{"If-Match", `"abc"`}, 400, "If-Match", "not a service revision"},
		{"bad limit", "GET", "/api/v1/events?limit=0", ``, nil, 400, "limit", "page size"},
		{"bad since", "GET", "/api/v1/events?since=yesterday", ``, nil, 400, "since", "RFC 3339"},
		{"bad state", "GET", "/api/v1/builds?state=happy", ``, nil, 400, "state", "not a build state"},
		{"bad event type", "GET", "/api/v1/events?type=DROP%20TABLE", ``, nil, 400, "type", "not an event type"},
		{"unknown service", "POST", "/api/v1/services/nosuch/promote", `{}`, nil, 404, "", "not found"},
		{"unknown build", "GET", "/api/v1/services/api/builds/999", ``, nil, 404, "", "not found"},
		{"illegal: delete canary", "DELETE", "/api/v1/services/api/builds/42", ``, nil, 409, "", "only a deployed build can be deleted"},
		{"illegal: second canary", "POST", "/api/v1/services/api/canary", `{"build":"43"}`, nil, 409, "", "roll it back first, or start with replace"},
		{"no route", "GET", "/api/v1/nothing", ``, nil, 404, "", "no such route"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			beforeSvc, _ := service(t, srv, "api")
			beforeEvents := eventCount(t, srv)
			st, h, b := do(t, srv, tc.method, tc.path, apitest.AdminToken, tc.body, tc.hdr...)
			if st != tc.status {
				t.Fatalf("status %d, want %d: %s", st, tc.status, b)
			}
			if ct := h.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var e wire.Error
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("body %q: %v", b, err)
			}
			if e.Field != tc.field || !strings.Contains(e.Error, tc.msg) || e.Error == "" {
				t.Errorf("got field %q error %q; want field %q and %q", e.Field, e.Error, tc.field, tc.msg)
			}
			afterSvc, _ := service(t, srv, "api")
			if afterSvc.Revision != beforeSvc.Revision || afterSvc.Traffic != 5 || afterSvc.Canary != "42" {
				t.Errorf("service changed: %+v -> %+v", beforeSvc, afterSvc)
			}
			if n := eventCount(t, srv); n != beforeEvents {
				t.Errorf("%d events recorded", n-beforeEvents)
			}
		})
	}
}

// A 409 of the lifecycle carries what is legal.
func TestIllegalSaysWhatIsLegal(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	st, _, b := do(t, srv, "POST", "/api/v1/services/api/promote", apitest.AdminToken, "")
	var e wire.Error
	_ = json.Unmarshal(b, &e)
	if st != 409 || e.Legal != "start a canary first" || !strings.Contains(e.Error, `service "api" has no canary`) {
		t.Fatalf("%d %+v", st, e)
	}
}

func TestIfMatch(t *testing.T) { eachStore(t, testIfMatch) }

func testIfMatch(t *testing.T, o apitest.Options) {
	srv := apitest.New(t, withOpts(o, apitest.Options{}))
	s, etag := service(t, srv, "api")
	if etag == "" || etag != `"`+itoa(s.Revision)+`"` {
		t.Fatalf("ETag %q for revision %d", etag, s.Revision)
	}
	// Operator 1 starts a canary with the revision it read.
	st, _, b := do(t, srv, "POST", "/api/v1/services/api/canary", apitest.AdminToken, `{"build":"42","traffic":5}`, "If-Match", etag)
	if st != 200 {
		t.Fatalf("start with current If-Match: %d %s", st, b)
	}
	// Operator 2 read before that and would now overwrite it: 412.
	st, _, b = do(t, srv, "POST", "/api/v1/services/api/traffic", apitest.AdminToken, `{"traffic":50}`, "If-Match", etag)
	var e wire.Error
	_ = json.Unmarshal(b, &e)
	if st != 412 || e.Field != "If-Match" || !strings.Contains(e.Error, "changed since you read it") {
		t.Fatalf("stale If-Match: %d %s", st, b)
	}
	if s2, _ := service(t, srv, "api"); s2.Traffic != 5 {
		t.Fatalf("traffic %v after a refused change", s2.Traffic)
	}
	// Reading again and retrying works; "*" and W/ tags are understood.
	_, etag = service(t, srv, "api")
	for _, im := range []string{"W/" + etag, "*"} {
		if st, _, b := do(t, srv, "POST", "/api/v1/services/api/traffic", apitest.AdminToken, `{"traffic":10}`, "If-Match", im); st != 200 {
			t.Fatalf("If-Match %s: %d %s", im, st, b)
		}
	}
	// DELETE honours it too.
	st, _, _ = do(t, srv, "DELETE", "/api/v1/services/api/builds/43", apitest.AdminToken, "", "If-Match", etag)
	if st != 412 {
		t.Fatalf("stale delete: %d", st)
	}
}

func itoa(n int64) string {
	return strings.TrimSpace(strings.Replace(string(must(json.Marshal(n))), "\"", "", -1))
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestIdempotencyReplay(t *testing.T) { eachStore(t, testIdempotencyReplay) }

func testIdempotencyReplay(t *testing.T, o apitest.Options) {
	srv := apitest.New(t, withOpts(o, apitest.Options{}))
	if st, _, b := do(t, srv, "POST", "/api/v1/services/api/canary", apitest.AdminToken, `{"build":"42","traffic":5}`); st != 200 {
		t.Fatalf("%d %s", st, b)
	}
	before := eventCount(t, srv)
	st1, _, b1 := do(t, srv, "POST", "/api/v1/services/api/traffic", apitest.AdminToken, `{"traffic":20}`, "Idempotency-Key", "k-1")
	// Someone else moves traffic meanwhile; the retry must not undo it.
	if st, _, b := do(t, srv, "POST", "/api/v1/services/api/traffic", apitest.AdminToken, `{"traffic":30}`); st != 200 {
		t.Fatalf("%d %s", st, b)
	}
	st2, h2, b2 := do(t, srv, "POST", "/api/v1/services/api/traffic", apitest.AdminToken, `{"traffic":20}`, "Idempotency-Key", "k-1")
	if st1 != 200 || st2 != 200 || !bytes.Equal(b1, b2) || h2.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("first %d %s\nretry %d %s (replayed %q)", st1, b1, st2, b2, h2.Get("Idempotent-Replayed"))
	}
	if s, _ := service(t, srv, "api"); s.Traffic != 30 {
		t.Fatalf("traffic %v: the retry was applied again", s.Traffic)
	}
	if n := eventCount(t, srv) - before; n != 2 {
		t.Fatalf("%d events, want 2", n)
	}
	// Same key, different request: 422, nothing applied.
	st, _, b := do(t, srv, "POST", "/api/v1/services/api/traffic", apitest.AdminToken, `{"traffic":40}`, "Idempotency-Key", "k-1")
	if st != 422 || !strings.Contains(string(b), "different request") {
		t.Fatalf("reused key: %d %s", st, b)
	}
	// The key belongs to its token: another token's same key is a new request.
	st, h, _ := do(t, srv, "POST", "/api/v1/services/api/traffic", apitest.BuildToken, `{"traffic":20}`, "Idempotency-Key", "k-1")
	if st != 200 || h.Get("Idempotent-Replayed") != "" {
		t.Fatalf("other token: %d replayed=%q", st, h.Get("Idempotent-Replayed"))
	}
	// A refused request is stored too: the retry gets the same 409.
	for range 2 {
		st, _, b := do(t, srv, "POST", "/api/v1/services/web/canary", apitest.AdminToken, `{"build":"7"}`, "Idempotency-Key", "k-2")
		if st != 409 {
			t.Fatalf("%d %s", st, b)
		}
	}
	if s, _ := service(t, srv, "api"); s.Traffic != 20 {
		t.Fatalf("traffic %v", s.Traffic)
	}
}

// The actor of an event is the name of the token that asked.
func TestActorIsTokenName(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	st, _, b := do(t, srv, "POST", "/api/v1/services/api/builds", apitest.BuildToken,
		`{"id":"50","version":"2.0.0","endpoints":["127.0.0.1:9050"],"ttl":"30s","labels":{"git":"abc"}}`)
	if st != 200 {
		t.Fatalf("%d %s", st, b)
	}
	var bl wire.Build
	_ = json.Unmarshal(b, &bl)
	if bl.State != "deployed" || bl.RegisteredBy != "ci-build" || len(bl.Endpoints) != 1 || bl.Endpoints[0].TTL != "30s" || !bl.Endpoints[0].Alive {
		t.Fatalf("%+v", bl)
	}
	st, _, b = do(t, srv, "POST", "/api/v1/services/api/canary", apitest.AdminToken, `{"build":"50","traffic":1,"reason":"try"}`)
	var res wire.Result
	_ = json.Unmarshal(b, &res)
	if st != 200 || res.Event.Actor != "alice" || res.Event.Type != event.CanaryStarted || res.Event.Reason != "try" ||
		res.Service.Canary != "50" || res.Service.Traffic != 1 || res.Service.Stable != "41" {
		t.Fatalf("%d %+v", st, res)
	}
	st, _, b = do(t, srv, "GET", "/api/v1/events?service=api&type=build.registered", apitest.ViewerToken, "")
	var page wire.EventPage
	_ = json.Unmarshal(b, &page)
	if st != 200 || len(page.Events) != 1 || page.Events[0].Actor != "ci-build" {
		t.Fatalf("%d %s", st, b)
	}
}

// Heartbeats keep an endpoint; an unknown one gets 404 (register again);
// deregister removes it.
func TestRegisterHeartbeatDeregister(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	reg := `{"id":"60","version":"3.0.0","endpoints":["127.0.0.1:9060"],"ttl":"1m"}`
	for range 2 { // registering again is harmless
		if st, _, b := do(t, srv, "POST", "/api/v1/services/api/builds", apitest.BuildToken, reg); st != 200 {
			t.Fatalf("%d %s", st, b)
		}
	}
	if st, _, b := do(t, srv, "POST", "/api/v1/services/api/builds/60/heartbeat", apitest.BuildToken, `{"endpoint":"127.0.0.1:9060"}`); st != 200 {
		t.Fatalf("%d %s", st, b)
	}
	if st, _, b := do(t, srv, "POST", "/api/v1/services/api/builds/60/heartbeat", apitest.BuildToken, `{"endpoint":"127.0.0.1:1"}`); st != 404 || !strings.Contains(string(b), "register again") {
		t.Fatalf("%d %s", st, b)
	}
	if st, _, b := do(t, srv, "POST", "/api/v1/services/api/builds/60/deregister", apitest.BuildToken, `{"endpoint":"127.0.0.1:9060"}`); st != 200 {
		t.Fatalf("%d %s", st, b)
	}
	st, _, b := do(t, srv, "GET", "/api/v1/services/api/builds/60", apitest.ViewerToken, "")
	var bl wire.Build
	_ = json.Unmarshal(b, &bl)
	if st != 200 || len(bl.Endpoints) != 0 {
		t.Fatalf("%d %s", st, b)
	}
	// a new version under the same id is refused
	if st, _, b := do(t, srv, "POST", "/api/v1/services/api/builds", apitest.BuildToken, `{"id":"60","version":"3.0.1"}`); st != 409 || !strings.Contains(string(b), "new build id") {
		t.Fatalf("%d %s", st, b)
	}
}

func TestEventPaging(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	do(t, srv, "POST", "/api/v1/services/api/canary", apitest.AdminToken, `{"build":"42","traffic":1}`)
	for _, p := range []string{"2", "3", "4", "5"} {
		do(t, srv, "POST", "/api/v1/services/api/traffic", apitest.AdminToken, `{"traffic":`+p+`}`)
	}
	var all []event.Event
	after := ""
	for pages := 0; ; pages++ {
		st, _, b := do(t, srv, "GET", "/api/v1/events?service=api&type=traffic.changed,canary.started&limit=2"+after, apitest.ViewerToken, "")
		var page wire.EventPage
		if err := json.Unmarshal(b, &page); st != 200 || err != nil {
			t.Fatalf("%d %s", st, b)
		}
		all = append(all, page.Events...)
		if page.NextAfterID == 0 || pages > 10 {
			break
		}
		after = "&after_id=" + itoa(page.NextAfterID)
	}
	if len(all) != 5 || all[0].Type != event.CanaryStarted || all[4].Details["traffic"] != "5%" {
		t.Fatalf("%d events: %+v", len(all), all)
	}
	st, _, b := do(t, srv, "GET", "/api/v1/events?order=desc&limit=1", apitest.ViewerToken, "")
	var page wire.EventPage
	_ = json.Unmarshal(b, &page)
	if st != 200 || len(page.Events) != 1 || page.Events[0].ID != all[4].ID || page.NextBeforeID != all[4].ID {
		t.Fatalf("%d %s", st, b)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	st, _, b = do(t, srv, "GET", "/api/v1/events?since="+future, apitest.ViewerToken, "")
	_ = json.Unmarshal(b, &page)
	if st != 200 || len(page.Events) != 0 {
		t.Fatalf("%d %s", st, b)
	}
}

// The stream delivers an event made by a later operation, resumes after
// Last-Event-ID, and sends keep-alive comments.
func TestEventStream(t *testing.T) { eachStore(t, testEventStream) }

func testEventStream(t *testing.T, o apitest.Options) {
	srv := apitest.New(t, withOpts(o, apitest.Options{StreamKeepAlive: 50 * time.Millisecond}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	open := func(lastID string) (*bufio.Reader, func()) {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events/stream?service=api", nil)
		req.Header.Set("Authorization", "Bearer "+apitest.ViewerToken)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := srv.Srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return bufio.NewReader(resp.Body), func() { resp.Body.Close() }
	}
	// next reads one event (id, type, data), counting keep-alives.
	keepalives := 0
	next := func(r *bufio.Reader) (id, typ string, ev event.Event) {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("stream: %v", err)
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == ": keep-alive":
				keepalives++
			case strings.HasPrefix(line, "id: "):
				id = line[4:]
			case strings.HasPrefix(line, "event: "):
				typ = line[7:]
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(line[6:]), &ev); err != nil {
					t.Fatal(err)
				}
			case line == "" && typ != "":
				return id, typ, ev
			}
		}
	}
	r, stop := open("")
	time.Sleep(150 * time.Millisecond)                                                     // let a keep-alive through
	do(t, srv, "POST", "/api/v1/services/web/stable", apitest.AdminToken, `{"build":"7"}`) // another service: filtered out
	do(t, srv, "POST", "/api/v1/services/api/canary", apitest.AdminToken, `{"build":"42","traffic":5}`)
	id1, typ, ev := next(r)
	if typ != "canary.started" || ev.Build != "42" || ev.Actor != "alice" || id1 != itoa(ev.ID) {
		t.Fatalf("first event %s %s %+v", id1, typ, ev)
	}
	if keepalives == 0 {
		t.Error("no keep-alive comment")
	}
	stop()
	// Missed while away: resumes after Last-Event-ID.
	do(t, srv, "POST", "/api/v1/services/api/traffic", apitest.AdminToken, `{"traffic":9}`)
	r, stop = open(id1)
	defer stop()
	_, typ, ev = next(r)
	if typ != "traffic.changed" || ev.Details["traffic"] != "9%" {
		t.Fatalf("resumed event %s %+v", typ, ev)
	}
	do(t, srv, "POST", "/api/v1/services/api/promote", apitest.AdminToken, `{"reason":"good"}`)
	if _, typ, ev = next(r); typ != "release.promoted" || ev.Reason != "good" {
		t.Fatalf("live event %s %+v", typ, ev)
	}
}

// Concurrent retries with one key apply the request once: the others get
// the stored answer or are told to retry (409), never a second change.
func TestIdempotencyConcurrent(t *testing.T) { eachStore(t, testIdempotencyConcurrent) }

func testIdempotencyConcurrent(t *testing.T, o apitest.Options) {
	srv := apitest.New(t, withOpts(o, apitest.Options{}))
	if st, _, b := do(t, srv, "POST", "/api/v1/services/api/canary", apitest.AdminToken, `{"build":"42","traffic":5}`); st != 200 {
		t.Fatalf("%d %s", st, b)
	}
	before := eventCount(t, srv)
	const n = 8
	statuses := make(chan int, n)
	for range n {
		go func() {
			req, _ := http.NewRequest("POST", srv.URL+"/api/v1/services/api/traffic", strings.NewReader(`{"traffic":12}`))
			req.Header.Set("Authorization", "Bearer "+apitest.AdminToken)
			req.Header.Set("Idempotency-Key", "same")
			resp, err := srv.Srv.Client().Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	ok := 0
	for range n {
		switch st := <-statuses; st {
		case 200:
			ok++
		case 409:
		default:
			t.Errorf("status %d", st)
		}
	}
	if ok == 0 {
		t.Error("no request succeeded")
	}
	if got := eventCount(t, srv) - before; got != 1 {
		t.Fatalf("%d events for one idempotent request", got)
	}
}

// Every $ref of the document resolves and every path template has its
// parameters declared.
func TestOpenAPIWellFormed(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	_, _, b := do(t, srv, "GET", "/api/v1/openapi.json", apitest.ViewerToken, "")
	var d struct {
		OpenAPI    string `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &d); err != nil || !strings.HasPrefix(d.OpenAPI, "3.") {
		t.Fatalf("%v %q", err, d.OpenAPI)
	}
	refs := regexpAll(`"\$ref":\s*"#/components/schemas/([A-Za-z]+)"`, string(b))
	if len(refs) == 0 {
		t.Fatal("no $ref")
	}
	for _, r := range refs {
		if _, ok := d.Components.Schemas[r]; !ok {
			t.Errorf("$ref %s does not resolve", r)
		}
	}
	for path, ops := range d.Paths {
		for method, raw := range ops {
			var op struct {
				Parameters []struct{ Name, In string }
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatal(err)
			}
			for _, name := range regexpAll(`\{([a-z_]+)\}`, path) {
				if !slices.ContainsFunc(op.Parameters, func(p struct{ Name, In string }) bool { return p.Name == name && p.In == "path" }) {
					t.Errorf("%s %s: path parameter %s not declared", method, path, name)
				}
			}
		}
	}
}

func regexpAll(re, s string) []string {
	var out []string
	for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// docs/api.md lists every route (and no route that is not served).
func TestDocsListEveryRoute(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	b, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, p := range api.Patterns(srv.Handler) {
		method, path, _ := strings.Cut(p, " ")
		served[method+" "+path] = true
		if !strings.Contains(string(b), "| "+method+" | `"+path+"` |") {
			t.Errorf("docs/api.md does not list %s %s", method, path)
		}
	}
	for _, m := range regexp.MustCompile("\\| (GET|POST|DELETE|PUT|PATCH) \\| `([^`]+)` \\|").FindAllStringSubmatch(string(b), -1) {
		if !served[m[1]+" "+m[2]] {
			t.Errorf("docs/api.md lists %s %s, which is not served", m[1], m[2])
		}
	}
}

// Mounted as the server mounts it, beside /healthz and /metrics: only
// health is open, and RequireToken closes /metrics.
func TestMountBesideHealth(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	tokens := []config.Token{{Name: "prom", Role: "viewer", Value: "scrape"}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.Handle("GET /metrics", api.RequireToken(tokens, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("up 1\n"))
	})))
	mux.Handle(api.Prefix+"/", srv.Handler)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	for _, tc := range []struct {
		path, token string
		status      int
	}{
		{"/healthz", "", 200},
		{"/metrics", "", 401},
		{"/metrics", "scrape", 200},
		{"/api/v1/services", "", 401},
		{"/api/v1/services", apitest.ViewerToken, 200},
		{"/api/v1/nothing", apitest.ViewerToken, 404},
		{"/other", apitest.ViewerToken, 404},
	} {
		req, _ := http.NewRequest("GET", hs.URL+tc.path, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("GET %s (token %q): %d, want %d", tc.path, tc.token, resp.StatusCode, tc.status)
		}
	}
}

var pg pgtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

// eachStore runs f over SQLite and over PostgreSQL (a throwaway cluster
// from Debian's postgresql package; the test fails if it is missing): the
// preconditions, idempotency and the stream must hold on both.
func eachStore(t *testing.T, f func(*testing.T, apitest.Options)) {
	t.Run("sqlite", func(t *testing.T) { f(t, apitest.Options{}) })
	t.Run("postgres", func(t *testing.T) {
		s, err := postgres.Open(t.Context(), pg.Database(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f(t, apitest.Options{Store: s})
	})
}

// withOpts is base with the store of o.
func withOpts(o, base apitest.Options) apitest.Options {
	base.Store = o.Store
	return base
}
