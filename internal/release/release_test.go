package release_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/control"
	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/release"
	"github.com/canaryd/canaryd/internal/route"
	"github.com/canaryd/canaryd/internal/store"
)

const fastRelease = `      steps: [20, 50, 100]
      step_duration: 3s
      max_step_duration: 60s
      analysis: {min_samples: 50, max_error_rate_delta: 10%, max_latency_deviation: 500%}`

// A healthy canary is promoted through every step.
func TestHealthyReleasePromotes(t *testing.T) {
	h := newHarness(t, fastRelease)
	h.start(20)
	if !h.run(120, h.ended()) {
		t.Fatalf("not promoted within 120 s:\n%s", h.story())
	}
	if got := h.trafficSteps(); !slices.Equal(got, []string{"50%", "100%"}) {
		t.Errorf("steps %v, want [50%% 100%%]", got)
	}
	recs := h.records()
	if len(recs) != 1 || recs[0].Status != store.ReleasePromoted {
		t.Fatalf("records %+v", recs)
	}
	list, err := h.ctl.List(h.ctx, "api", 0)
	if err != nil || len(list) != 1 || list[0].Totals.CanaryRequests == 0 || list[0].Verdict == nil {
		t.Fatalf("List = %+v, %v", list, err)
	}
}

// A manual gate holds the release at its step until approved.
func TestManualGate(t *testing.T) {
	h := newHarness(t, fastRelease+"\n      manual_gates: [50]")
	h.start(20)
	held := func() bool {
		st, ok := h.ctl.Status("api")
		return ok && st.Held != ""
	}
	if !h.run(60, held) {
		t.Fatalf("never held:\n%s", h.story())
	}
	if tr := h.service().Traffic; tr != 50 {
		t.Fatalf("held at %v%%, want 50", tr)
	}
	if _, err := h.ctl.Approve(h.ctx, "bob", "api", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ctl.Approve(h.ctx, "bob", "api", "again"); !errors.Is(err, control.ErrIllegal) {
		t.Fatalf("second approve: %v, want illegal", err)
	}
	// Approved on the store only; the leader picks it up.
	if !h.run(60, h.ended()) {
		t.Fatalf("not promoted after approval:\n%s", h.story())
	}
	st := h.records()[0]
	if st.Status != store.ReleasePromoted {
		t.Fatalf("status %s", st.Status)
	}
	list, _ := h.ctl.List(h.ctx, "api", 1)
	if len(list[0].Approvals) != 1 || list[0].Approvals[0].Actor != "bob" || list[0].Approvals[0].Traffic != 50 {
		t.Errorf("approvals %+v", list[0].Approvals)
	}
	if !slices.ContainsFunc(h.events(), func(ev event.Event) bool {
		return ev.Type == release.EventHeld && ev.Actor == "controller" && strings.Contains(ev.Reason, "manual gate at 50%")
	}) {
		t.Errorf("no held event:\n%s", h.story())
	}
	if !slices.ContainsFunc(h.events(), func(ev event.Event) bool { return ev.Type == release.EventApproved && ev.Actor == "bob" }) {
		t.Errorf("no approval event:\n%s", h.story())
	}
}

// A stalled approve is refused when nothing is held.
func TestApproveNotHeld(t *testing.T) {
	h := newHarness(t, fastRelease)
	if _, err := h.ctl.Approve(h.ctx, "bob", "api", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("approve without a release: %v, want not found", err)
	}
	h.start(20)
	h.second()
	if _, err := h.ctl.Approve(h.ctx, "bob", "api", ""); !errors.Is(err, control.ErrIllegal) {
		t.Fatalf("approve while not held: %v, want illegal", err)
	}
}

// A per-release override changes steps and bake time of that release
// only.
func TestPolicyOverride(t *testing.T) {
	h := newHarness(t, fastRelease)
	o := &release.Override{Build: "2", Steps: []float64{10, 100}, StepDuration: 2 * time.Second}
	if err := h.ctl.SetOverride(h.ctx, "alice", "api", o); err != nil {
		t.Fatal(err)
	}
	bad := &release.Override{Steps: []float64{50, 20}}
	if err := h.ctl.SetOverride(h.ctx, "alice", "api", bad); err == nil || !strings.Contains(err.Error(), "does not rise") {
		t.Fatalf("bad override: %v", err)
	}
	h.start(0)
	if !h.run(120, h.ended()) {
		t.Fatalf("not promoted:\n%s", h.story())
	}
	if got := h.trafficSteps(); !slices.Equal(got, []string{"10%", "100%"}) {
		t.Errorf("steps %v, want [10%% 100%%]\n%s", got, h.story())
	}
	list, _ := h.ctl.List(h.ctx, "api", 1)
	if p := list[0].Policy; !slices.Equal(p.Steps, []float64{10, 100}) || p.StepDuration != 2*time.Second || p.Judge.BakeTime != 2*time.Second {
		t.Errorf("policy in the record %+v", p)
	}
}

// Abort rolls back and closes the release as aborted, and the leader does
// not overwrite it.
func TestAbort(t *testing.T) {
	h := newHarness(t, fastRelease)
	h.start(20)
	h.run(3, func() bool { return false })
	if _, err := h.ctl.Abort(h.ctx, nil, "alice", "api", " "); err == nil {
		t.Fatal("abort without a reason accepted")
	}
	ev, err := h.ctl.Abort(h.ctx, nil, "alice", "api", "wrong config")
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != event.RolledBack || !strings.Contains(ev.Reason, "aborted: wrong config") {
		t.Errorf("event %+v", ev)
	}
	h.run(3, func() bool { return false })
	recs := h.records()
	if recs[0].Status != store.ReleaseAborted || !strings.Contains(recs[0].Reason, "wrong config") {
		t.Fatalf("record %+v", recs[0])
	}
	if !slices.ContainsFunc(h.events(), func(ev event.Event) bool { return ev.Type == event.Aborted }) {
		t.Errorf("no release.aborted event:\n%s", h.story())
	}
}

// promote is refused during analysis unless forced with a reason.
func TestForcePromote(t *testing.T) {
	h := newHarness(t, fastRelease)
	h.start(20)
	h.run(2, func() bool { return false })
	_, err := h.ctl.Promote(h.ctx, nil, "alice", "api", "", false)
	var ie *control.IllegalError
	if !errors.As(err, &ie) || !strings.Contains(ie.Why, "still under analysis") || !strings.Contains(ie.Legal, "force") {
		t.Fatalf("plain promote: %v", err)
	}
	var fe *control.FieldError
	if _, err := h.ctl.Promote(h.ctx, nil, "alice", "api", "", true); !errors.As(err, &fe) || fe.Field != "reason" {
		t.Fatalf("force without reason: %v", err)
	}
	ev, err := h.ctl.Promote(h.ctx, nil, "alice", "api", "hotfix", true)
	if err != nil || ev.Type != event.Promoted || !strings.Contains(ev.Reason, "forced") {
		t.Fatalf("forced promote: %+v %v", ev, err)
	}
	h.run(2, func() bool { return false })
	list, _ := h.ctl.List(h.ctx, "api", 1)
	if r := list[0]; r.Release.Status != store.ReleasePromoted || !r.Forced || !strings.Contains(r.Release.Reason, "hotfix") {
		t.Fatalf("record %+v", r.Release)
	}
}

// Live answers from memory on the leader and from the record elsewhere.
func TestLiveFromRecord(t *testing.T) {
	h := newHarness(t, fastRelease)
	if _, err := h.ctl.Live(h.ctx, "api"); !errors.Is(err, release.ErrNoRelease) {
		t.Fatalf("no release: %v", err)
	}
	if _, err := h.ctl.Live(h.ctx, "nosuch"); !errors.Is(err, store.ErrNotFound) || errors.Is(err, release.ErrNoRelease) {
		t.Fatalf("no service: %v", err)
	}
	h.start(20)
	h.run(7, func() bool { return false })
	other := release.New(release.Options{Plane: h.plane, Config: h.ctl2cfg()})
	st, err := other.Live(h.ctx, "api")
	if err != nil || st.Release.Build != "2" || st.Verdict == nil || len(st.Steps) != 3 {
		t.Fatalf("Live on a follower: %+v, %v", st, err)
	}
}

// A new controller (a restart, or another replica taking the lease)
// resumes a release held at a manual gate under its overridden policy,
// and the approval given meanwhile lets it finish.
func TestResumeHeldRelease(t *testing.T) {
	h := newHarness(t, fastRelease)
	no := false
	o := &release.Override{Build: "2", Steps: []float64{10, 60, 100}, StepDuration: 2 * time.Second, ManualGates: []float64{60}, AutoPromote: &no}
	if err := h.ctl.SetOverride(h.ctx, "alice", "api", o); err != nil {
		t.Fatal(err)
	}
	h.start(10)
	held := func() bool { st, ok := h.ctl.Status("api"); return ok && st.Held != "" }
	if !h.run(60, held) {
		t.Fatalf("never held:\n%s", h.story())
	}
	// The overridden policy is in the record: drop the override so a
	// resume could only find it there.
	if err := h.ctl.SetOverride(h.ctx, "alice", "api", nil); err != nil {
		t.Fatal(err)
	}
	h.ctl = release.New(release.Options{Plane: h.plane, Config: h.ctl2cfg(), Judged: h.judged, Analysis: func(s string) *route.Analysis {
		if h.analysis[s] == nil {
			h.analysis[s] = &route.Analysis{}
		}
		return h.analysis[s]
	}, Holder: "test", Now: func() time.Time { return h.now }})
	h.run(5, func() bool { return false })
	st, ok := h.ctl.Status("api")
	if !ok || st.Held == "" || h.service().Traffic != 60 || !slices.Equal(st.Policy.Steps, []float64{10, 60, 100}) {
		t.Fatalf("after resume: %+v (traffic %v)", st, h.service().Traffic)
	}
	if _, err := h.ctl.Approve(h.ctx, "bob", "api", "ok"); err != nil {
		t.Fatal(err)
	}
	waiting := func() bool { st, ok := h.ctl.Status("api"); return ok && st.Waiting }
	if !h.run(60, waiting) {
		t.Fatalf("not waiting for a manual promote after the last step:\n%s", h.story())
	}
	if _, err := h.ctl.Promote(h.ctx, nil, "carol", "api", "looks good", false); err != nil {
		t.Fatalf("manual promote of a waiting release: %v", err)
	}
	h.run(2, func() bool { return false })
	if rec := h.records()[0]; rec.Status != store.ReleasePromoted || !strings.Contains(rec.Reason, "carol") {
		t.Fatalf("record %+v", rec)
	}
	if got := h.trafficSteps(); !slices.Equal(got, []string{"60%", "100%"}) {
		t.Errorf("steps %v", got)
	}
}
