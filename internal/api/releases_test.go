package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/api"
	"github.com/canaryd/canaryd/internal/api/apitest"
	"github.com/canaryd/canaryd/internal/api/wire"
	"github.com/canaryd/canaryd/internal/release"
	"github.com/canaryd/canaryd/internal/store"
)

var _ api.Releases = (*release.Controller)(nil)

// heldState is the controller's state of a release held at the manual
// gate of its first step (10 %), with a verdict, as the leader saves it.
const heldState = `{"policy":{"steps":[10,100],"step_duration":60000000000,"max_step_duration":300000000000,"on_inconclusive":"pause","auto_promote":true,"manual_gates":[10],"judge":{}},
"step":0,"step_start":"2026-11-29T12:00:00Z","last_bin":"2026-11-29T12:01:00Z",
"verdict":{"outcome":"pass","at":"2026-11-29T12:01:00Z","reasons":[
 {"metric":"errors","outcome":"pass","message":"canary 0.50 % (5/1000) vs stable 0.40 % (36/9000)","estimate":0.001,"lower":-0.002,"upper":0.004,"limit":0.01,"e_value":0.8,"threshold":200,"canary_samples":1000,"stable_samples":9000,"step_samples":1000,"users_harmed":5},
 {"metric":"latency","outcome":"pass","message":"no evidence of a slower canary","estimate":1.02,"lower":0.9,"upper":1.15,"e_value":1.1,"threshold":250,"canary_samples":1000,"stable_samples":9000,"step_samples":1000,"users_harmed":5}]},
"users_exposed":420,"users_harmed":5,
"totals":{"canary_requests":1000,"canary_errors":5,"stable_requests":9000,"stable_errors":36},
"checks":[{"name":"cpu","outcome":"pass","condition":"<= stable * 1.2","canary":0.5,"stable":0.45,"limit":0.54,"message":"cpu: canary 0.5 <= 0.54 holds","at":"2026-11-29T12:01:00Z"}],
"held":"manual gate at 10%: waiting for approval (canaryctl approve api)"}`

// putRecord stores an active release record of build, as the leader
// would.
func putRecord(t *testing.T, srv *apitest.Server, build, state string) {
	t.Helper()
	ctx := context.Background()
	err := srv.Plane.Store().Update(ctx, func(tx store.Tx) error {
		_, err := tx.PutRelease(ctx, store.Release{ID: "api-" + build, Service: "api", Build: build, Status: store.ReleaseRunning,
			Step: 1, Traffic: 10, StartedAt: time.Now().Add(-time.Minute), State: json.RawMessage(state)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestReleaseRoutes(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	admin := apitest.AdminToken
	st, _, b := do(t, srv, "GET", "/api/v1/releases", apitest.ViewerToken, "")
	if st != 200 || string(b) != `{"releases":[]}` {
		t.Fatalf("empty list: %d %s", st, b)
	}
	// A per-release policy is checked, then stored for the build.
	for _, tc := range []struct{ body, field string }{
		{`{"build":"42","policy":{"steps":[50,20]}}`, "steps[1]"},
		{`{"build":"42","policy":{"steps":[10,100],"manual_gates":[50]}}`, "policy.manual_gates[0]"},
		{`{"build":"42","policy":{"step_duration":"soon"}}`, "policy.step_duration"},
		{`{"build":"42","policy":{"on_inconclusive":"shrug"}}`, "on_inconclusive"},
	} {
		st, _, b := do(t, srv, "POST", "/api/v1/services/api/canary", admin, tc.body)
		var e wire.Error
		_ = json.Unmarshal(b, &e)
		if st != 400 || e.Field != tc.field {
			t.Errorf("%s: %d %s; want 400 on %s", tc.body, st, b, tc.field)
		}
	}
	st, _, b = do(t, srv, "POST", "/api/v1/services/api/canary", admin,
		`{"build":"42","traffic":10,"policy":{"steps":[10,100],"step_duration":"1m","manual_gates":[10],"auto_promote":false}}`)
	if st != 200 {
		t.Fatalf("start with a policy: %d %s", st, b)
	}
	var pol store.Policy
	_ = srv.Plane.Store().View(context.Background(), func(r store.Reader) error {
		var err error
		pol, err = r.GetPolicy(context.Background(), "api")
		return err
	})
	var o release.Override
	if err := json.Unmarshal(pol.Spec, &o); err != nil || o.Build != "42" || o.StepDuration != time.Minute || o.SetBy != "alice" || *o.AutoPromote {
		t.Fatalf("stored override %s (%v)", pol.Spec, err)
	}

	// With no record yet, compare says nothing is under way.
	st, _, b = do(t, srv, "GET", "/api/v1/services/api/compare", apitest.ViewerToken, "")
	if st != 200 || !strings.Contains(string(b), `"active":false`) {
		t.Fatalf("compare before a record: %d %s", st, b)
	}
	if st, _, _ := do(t, srv, "GET", "/api/v1/services/nosuch/compare", apitest.ViewerToken, ""); st != 404 {
		t.Errorf("compare of an unknown service: %d", st)
	}
	putRecord(t, srv, "42", heldState)
	st, _, b = do(t, srv, "GET", "/api/v1/services/api/compare", apitest.ViewerToken, "")
	var cmp wire.Comparison
	if err := json.Unmarshal(b, &cmp); st != 200 || err != nil {
		t.Fatalf("compare: %d %s", st, b)
	}
	if !cmp.Active || cmp.Outcome != "pass" || cmp.Release.Held == "" || len(cmp.Metrics) != 3 {
		t.Fatalf("compare %+v", cmp)
	}
	if m := cmp.Metrics[0]; m.Metric != "errors" || m.Kind != "judge" || m.Stable != 0.004 || m.Canary != 0.005 || m.Upper != 0.004 || m.EValue != 0.8 || m.Threshold != 200 {
		t.Errorf("errors row %+v", m)
	}
	if m := cmp.Metrics[2]; m.Metric != "cpu" || m.Kind != "check" || m.Stable != 0.45 || m.Limit != 0.54 || m.Result != "pass" {
		t.Errorf("check row %+v", m)
	}

	// Promote during analysis needs force and a reason.
	st, _, b = do(t, srv, "POST", "/api/v1/services/api/promote", admin, `{}`)
	if st != 409 || !strings.Contains(string(b), "force") {
		t.Errorf("plain promote: %d %s", st, b)
	}
	if st, _, b := do(t, srv, "POST", "/api/v1/services/api/promote", admin, `{"force":true}`); st != 400 || !strings.Contains(string(b), `"field":"reason"`) {
		t.Errorf("force without reason: %d %s", st, b)
	}
	// Approve the held gate: once.
	st, _, b = do(t, srv, "POST", "/api/v1/services/api/approve", admin, `{"reason":"dashboards fine"}`)
	var res wire.Result
	if err := json.Unmarshal(b, &res); st != 200 || err != nil || res.Event.Type != release.EventApproved || res.Event.Actor != "alice" {
		t.Fatalf("approve: %d %s", st, b)
	}
	if st, _, b := do(t, srv, "POST", "/api/v1/services/api/approve", admin, ``); st != 409 {
		t.Errorf("second approve: %d %s", st, b)
	}
	if st, _, _ := do(t, srv, "POST", "/api/v1/services/api/approve", apitest.ViewerToken, ``); st != 403 {
		t.Errorf("viewer approve: %d", st)
	}
	// Abort needs a reason, then closes the record.
	if st, _, _ := do(t, srv, "POST", "/api/v1/services/api/abort", admin, `{}`); st != 400 {
		t.Errorf("abort without reason: %d", st)
	}
	st, _, b = do(t, srv, "POST", "/api/v1/services/api/abort", admin, `{"reason":"wrong flag"}`)
	if st != 200 || !strings.Contains(string(b), `"type":"release.rolled_back"`) {
		t.Fatalf("abort: %d %s", st, b)
	}
	st, _, b = do(t, srv, "GET", "/api/v1/releases?service=api", apitest.ViewerToken, "")
	var list wire.ReleaseList
	if err := json.Unmarshal(b, &list); st != 200 || err != nil || len(list.Releases) != 1 {
		t.Fatalf("list: %d %s", st, b)
	}
	r := list.Releases[0]
	if r.Status != "aborted" || !strings.Contains(r.Reason, "wrong flag") || r.EndedAt == nil || r.Duration == "" ||
		len(r.Approvals) != 1 || r.Approvals[0].Reason != "dashboards fine" || r.UsersHarmed != 5 || len(r.Policy.Steps) != 2 {
		t.Errorf("release %+v", r)
	}

	// A forced promote of the next canary is recorded as forced.
	if st, _, b := do(t, srv, "POST", "/api/v1/services/api/canary", admin, `{"build":"43","traffic":10}`); st != 200 {
		t.Fatalf("start 43: %d %s", st, b)
	}
	putRecord(t, srv, "43", strings.Replace(heldState, `"held":"manual gate at 10%: waiting for approval (canaryctl approve api)"`, `"held":""`, 1))
	st, _, b = do(t, srv, "POST", "/api/v1/services/api/promote", admin, `{"force":true,"reason":"hotfix"}`)
	if st != 200 || !strings.Contains(string(b), "forced, skipping the remaining analysis: hotfix") {
		t.Fatalf("forced promote: %d %s", st, b)
	}
	_, _, b = do(t, srv, "GET", "/api/v1/releases?limit=1", apitest.ViewerToken, "")
	if !strings.Contains(string(b), `"forced":true`) || !strings.Contains(string(b), `"status":"promoted"`) {
		t.Errorf("forced record: %s", b)
	}
	if st, _, _ := do(t, srv, "GET", "/api/v1/releases?limit=0", apitest.ViewerToken, ""); st != 400 {
		t.Errorf("limit=0: %d", st)
	}
}

// GET /controller names the lease holder and each replica's publication
// for the active release: live when recent, the leader marked.
func TestController(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	ctx := context.Background()
	st, _, b := do(t, srv, "GET", "/api/v1/controller", apitest.ViewerToken, "")
	var got wire.Controller
	if err := json.Unmarshal(b, &got); st != 200 || err != nil || got.Holder != "" || len(got.Replicas) != 0 {
		t.Fatalf("before any lease: %d %s", st, b)
	}
	putRecord(t, srv, "42", heldState)
	now := time.Now()
	err := srv.Plane.Store().Update(ctx, func(tx store.Tx) error {
		if _, err := tx.AcquireLease(ctx, release.LeaseName, "host-a/1/00aa", 10*time.Second, now); err != nil {
			return err
		}
		return tx.PublishAnalysis(ctx, nil, []store.AnalysisMark{
			{Replica: "host-a/1/00aa", Service: "api", Through: now.Unix() - 1, At: now},
			{Replica: "host-b/2/00bb", Service: "api", Through: now.Unix() - 60, At: now.Add(-time.Minute)},
		}, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	st, _, b = do(t, srv, "GET", "/api/v1/controller", apitest.ViewerToken, "")
	got = wire.Controller{}
	if err := json.Unmarshal(b, &got); st != 200 || err != nil {
		t.Fatalf("controller: %d %s", st, b)
	}
	if got.Holder != "host-a/1/00aa" || got.Epoch != 1 || got.ExpiresAt == nil || len(got.Replicas) != 2 {
		t.Fatalf("controller %+v", got)
	}
	a, bb := got.Replicas[0], got.Replicas[1]
	if a.Replica != "host-a/1/00aa" || !a.Live || !a.Leader || a.Service != "api" || a.Through.Unix() != now.Unix()-1 {
		t.Errorf("leader's publication %+v", a)
	}
	if bb.Replica != "host-b/2/00bb" || bb.Live || bb.Leader {
		t.Errorf("gone replica's publication %+v", bb)
	}
	if st, _, _ := do(t, srv, "GET", "/api/v1/controller", "", ""); st != 401 {
		t.Errorf("without a token: %d, want 401", st)
	}
}
