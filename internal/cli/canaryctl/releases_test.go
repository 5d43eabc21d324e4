package canaryctl_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/api/apitest"
	"github.com/canaryd/canaryd/internal/api/wire"
	"github.com/canaryd/canaryd/internal/store"
)

// heldState is a release held at the manual gate of its first step with
// a verdict, as the controller saves it.
const heldState = `{"policy":{"steps":[10,100],"step_duration":60000000000,"max_step_duration":300000000000,"on_inconclusive":"pause","auto_promote":true,"manual_gates":[10],"judge":{}},
"step":0,"step_start":"2026-11-29T12:00:00Z",
"verdict":{"outcome":"pass","at":"2026-11-29T12:01:00Z","reasons":[
 {"metric":"errors","outcome":"pass","message":"canary 0.50 % (5/1000) vs stable 0.40 % (36/9000); bounded inside the tolerance","estimate":0.001,"lower":-0.002,"upper":0.004,"limit":0.01,"e_value":0.8,"threshold":200,"canary_samples":1000,"stable_samples":9000,"step_samples":1000,"users_harmed":5},
 {"metric":"latency","outcome":"pass","message":"no evidence of a slower canary","estimate":1.02,"lower":0.9,"upper":1.15,"e_value":1.1,"threshold":250,"canary_samples":1000,"stable_samples":9000,"step_samples":1000,"users_harmed":5}]},
"users_exposed":420,"users_harmed":5,
"totals":{"canary_requests":1000,"canary_errors":5,"stable_requests":9000,"stable_errors":36},
"checks":[{"name":"cpu","outcome":"pass","condition":"<= stable * 1.2","canary":0.5,"stable":0.45,"limit":0.54,"message":"cpu: canary 0.5 <= 0.54 holds","at":"2026-11-29T12:01:00Z"}],
"held":"manual gate at 10%: waiting for approval (canaryctl approve api)"}`

func putRecord(t *testing.T, srv *apitest.Server, build string) {
	t.Helper()
	ctx := context.Background()
	err := srv.Plane.Store().Update(ctx, func(tx store.Tx) error {
		_, err := tx.PutRelease(ctx, store.Release{ID: "api-" + build + "-1", Service: "api", Build: build, Status: store.ReleaseRunning,
			Step: 1, Traffic: 10, StartedAt: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC), State: json.RawMessage(heldState)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The release commands, in the order an operator uses them.
func TestReleaseCommands(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	steps := []struct {
		name   string
		args   []string
		code   int
		stdout string // must appear in stdout
		stderr string // must appear in stderr
	}{
		{"releases-none", []string{"releases"}, 0, "SERVICE  BUILD", ""},
		{"compare-none", []string{"compare", "api"}, 0, "api: no release under way", ""},
		{"usage-steps", []string{"canary", "start", "api", "--build", "42", "--steps", "5,x"}, 2, "", "want a percentage"},
		{"usage-inconclusive", []string{"canary", "start", "api", "--build", "42", "--on-inconclusive", "shrug"}, 2, "", "want pause or rollback"},
		{"bad-gate", []string{"canary", "start", "api", "--build", "42", "--steps", "10,100", "--manual-gates", "50"}, 1, "", "is not one of the steps"},
		{"start-policy", []string{"canary", "start", "api", "--build", "42", "--traffic", "10", "--steps", "10,100", "--step-duration", "1m", "--manual-gates", "10"}, 0, "canary 42 (1.1.0) started at 10%", ""},
		{"record", nil, 0, "", ""},
		{"compare", []string{"compare", "api"}, 0, "held:     manual gate at 10%", ""},
		{"promote-refused", []string{"promote", "api"}, 4, "", "still under analysis"},
		{"usage-force", []string{"promote", "api", "--force"}, 2, "", "--reason is required"},
		{"approve", []string{"approve", "api", "--reason", "looks fine"}, 0, "manual gate at 10% approved: looks fine", ""},
		{"approve-again", []string{"approve", "api"}, 4, "", "not waiting at a manual gate"},
		{"usage-abort", []string{"abort", "api"}, 2, "", "--reason is required"},
		{"abort", []string{"abort", "api", "--reason", "wrong flag"}, 0, "rolled back", ""},
		{"releases", []string{"releases", "api"}, 0, "aborted", ""},
		{"abort-nothing", []string{"abort", "api", "--reason", "again"}, 4, "", "nothing to roll back"},
		{"compare-unknown", []string{"compare", "nosuch"}, 3, "", "not found"},
		{"start-43", []string{"canary", "start", "api", "--build", "43", "--traffic", "10"}, 0, "", ""},
		{"record-43", nil, 0, "", ""},
		{"force", []string{"promote", "api", "--force", "--reason", "hotfix"}, 0, "promoted to stable", ""},
		{"releases-forced", []string{"releases", "--limit", "1"}, 0, "promoted (forced)", ""},
	}
	for _, st := range steps {
		if st.args == nil {
			putRecord(t, srv, strings.TrimPrefix(strings.TrimPrefix(st.name, "record"), "-")+map[bool]string{true: "42", false: ""}[st.name == "record"])
			continue
		}
		code, out, errOut := run(t, srv, nil, st.args...)
		if code != st.code || !strings.Contains(out, st.stdout) || !strings.Contains(errOut, st.stderr) {
			t.Fatalf("%s: canaryctl %s: exit %d (want %d)\nstdout: %s(want %q)\nstderr: %s(want %q)", st.name, strings.Join(st.args, " "),
				code, st.code, out, st.stdout, errOut, st.stderr)
		}
		if st.name == "compare" {
			golden(t, "compare", out)
		}
	}
	code, out, _ := run(t, srv, nil, "releases", "api", "-o", "json")
	var list wire.ReleaseList
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list.Releases) != 2 {
		t.Fatalf("releases -o json: %d %v\n%s", code, err, out)
	}
	if r := list.Releases[1]; r.Build != "42" || r.Status != "aborted" || len(r.Approvals) != 1 {
		t.Errorf("release %+v", r)
	}
	code, out, _ = run(t, srv, nil, "compare", "api", "-o", "json")
	var cmp wire.Comparison
	if err := json.Unmarshal([]byte(out), &cmp); code != 0 || err != nil || cmp.Active {
		t.Fatalf("compare -o json after the release: %d %v\n%s", code, err, out)
	}
}

// canaryctl controller names the lease holder and each replica's
// publication; with no lease it says so.
func TestControllerCommand(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	if code, out, _ := run(t, srv, nil, "controller"); code != 0 || !strings.Contains(out, "controller: none") || !strings.Contains(out, "no active release") {
		t.Fatalf("controller with no lease: exit %d\n%s", code, out)
	}
	putRecord(t, srv, "42")
	ctx := context.Background()
	now := time.Now()
	err := srv.Plane.Store().Update(ctx, func(tx store.Tx) error {
		if _, err := tx.AcquireLease(ctx, "release-controller", "host-a/1/00aa", 10*time.Second, now); err != nil {
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
	code, out, _ := run(t, srv, nil, "controller")
	if code != 0 || !strings.Contains(out, "controller: host-a/1/00aa (epoch 1") ||
		!strings.Contains(out, "host-a/1/00aa  live, leader") || !strings.Contains(out, "host-b/2/00bb  gone") {
		t.Fatalf("controller: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, srv, nil, "controller", "-o", "json")
	var c wire.Controller
	if err := json.Unmarshal([]byte(out), &c); code != 0 || err != nil || c.Holder != "host-a/1/00aa" || len(c.Replicas) != 2 {
		t.Fatalf("controller -o json: %d %v\n%s", code, err, out)
	}
}
