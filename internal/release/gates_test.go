package release_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/control"
	"github.com/canaryd/canaryd/internal/notify/webhook"
	"github.com/canaryd/canaryd/internal/release/gate"
	"github.com/canaryd/canaryd/internal/store"
)

const gateSecret = "gate-secret"

// gatePeer is a webhook gate: it checks the signature, records each call
// and answers what deny says for the point.
type gatePeer struct {
	t     *testing.T
	now   func() time.Time
	mu    sync.Mutex
	calls []gate.Request
	deny  map[gate.Point]bool
}

func newGatePeer(t *testing.T, now func() time.Time) (*gatePeer, *httptest.Server) {
	g := &gatePeer{t: t, now: now, deny: map[gate.Point]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(gateSecret, r.Header, body, g.now(), time.Minute); err != nil {
			t.Errorf("gate request signature: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var req gate.Request
		if err := json.Unmarshal(body, &req); err != nil {
			t.Errorf("gate body: %v", err)
		}
		g.mu.Lock()
		g.calls = append(g.calls, req)
		deny := g.deny[req.Point]
		g.mu.Unlock()
		if deny {
			_ = json.NewEncoder(w).Encode(map[string]any{"allow": false, "reason": "change freeze until 14:00"})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return g, srv
}

func (g *gatePeer) set(p gate.Point, deny bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.deny[p] = deny
}

func (g *gatePeer) points() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, c := range g.calls {
		out = append(out, fmt.Sprintf("%s@%g", c.Point, c.Traffic))
	}
	return out
}

func gateRelease(url, onDeny string, at ...string) string {
	points := ""
	if len(at) > 0 {
		points = "\n          at: [" + strings.Join(at, ", ") + "]"
	}
	return fmt.Sprintf(`%s
      gates:
        - name: freeze
          url: %s/gate?build={{build}}
          secret: %s
          on_deny: %s%s`, fastRelease, url, gateSecret, onDeny, points)
}

// A gate is asked before the first step, before each step and before
// promotion; a "no" pauses the release, and resuming asks again.
func TestGatePausesAndResumes(t *testing.T) {
	var h *harness
	peer, srv := newGatePeer(t, func() time.Time { return h.now })
	h = newHarness(t, gateRelease(srv.URL, "pause"))
	peer.set(gate.BeforeStep, true)
	h.start(20)
	if !h.run(60, func() bool { return h.service().Paused }) {
		t.Fatalf("not paused by the gate:\n%s", h.story())
	}
	evs := h.events()
	if last := evs[len(evs)-1]; last.Type != "release.paused" || !strings.Contains(last.Reason, "change freeze until 14:00") {
		t.Fatalf("pause event %+v", last)
	}
	if tr := h.service().Traffic; tr != 20 {
		t.Fatalf("traffic %v after a denied step", tr)
	}
	peer.set(gate.BeforeStep, false)
	if _, err := h.plane.SetPaused(h.ctx, "alice", "api", false, "freeze over"); err != nil {
		t.Fatal(err)
	}
	if !h.run(60, h.ended()) {
		t.Fatalf("not promoted after resume:\n%s", h.story())
	}
	want := []string{"before_start@20", "before_step@20", "before_step@20", "before_step@50", "before_promote@100"}
	if got := peer.points(); !slices.Equal(got, want) {
		t.Errorf("gate calls %v, want %v", got, want)
	}
	if rec := h.records()[0]; rec.Status != store.ReleasePromoted {
		t.Errorf("record %+v", rec)
	}
}

// on_deny: rollback rolls back, and after_rollback gates are told why.
func TestGateRollback(t *testing.T) {
	var h *harness
	peer, srv := newGatePeer(t, func() time.Time { return h.now })
	h = newHarness(t, gateRelease(srv.URL, "rollback", "before_promote", "after_rollback"))
	peer.set(gate.BeforePromote, true)
	h.start(20)
	if !h.run(90, h.ended()) {
		t.Fatalf("release did not end:\n%s", h.story())
	}
	rec := h.records()[0]
	if rec.Status != store.ReleaseRolledBack || !strings.Contains(rec.Reason, "before_promote gate: gate freeze said no: change freeze") {
		t.Fatalf("record %s %q", rec.Status, rec.Reason)
	}
	if got := peer.points(); !slices.Equal(got, []string{"before_promote@100", "after_rollback@100"}) {
		t.Errorf("gate calls %v", got)
	}
}

// A gate that cannot be reached says no: the release pauses before its
// first step.
func TestGateUnreachableFailsSafe(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	h := newHarness(t, gateRelease(url, "pause"))
	h.start(0)
	if !h.run(5, func() bool { return h.service().Paused }) {
		t.Fatalf("not paused:\n%s", h.story())
	}
	h.run(3, func() bool { return false }) // paused before the first step: holds
	if tr := h.service().Traffic; tr != 0 {
		t.Fatalf("traffic %v: an unreachable gate let the first step start", tr)
	}
	st, _ := h.ctl.Status("api")
	if len(st.Gates) != 1 || st.Gates[0].Allowed || !strings.Contains(st.Gates[0].Message, "unreachable (fails safe)") {
		t.Fatalf("gates %+v", st.Gates)
	}
}

// Abort tells the after_rollback gates.
func TestAbortTellsGates(t *testing.T) {
	var h *harness
	peer, srv := newGatePeer(t, func() time.Time { return h.now })
	h = newHarness(t, gateRelease(srv.URL, "pause", "after_rollback"))
	h.start(20)
	h.run(2, func() bool { return false })
	if _, err := h.ctl.Abort(h.ctx, nil, control.Actor("alice"), "api", "bad config"); err != nil {
		t.Fatal(err)
	}
	if got := peer.points(); len(got) != 1 || got[0] != "after_rollback@20" {
		t.Fatalf("gate calls %v", got)
	}
	peer.mu.Lock()
	defer peer.mu.Unlock()
	if c := peer.calls[0]; !strings.Contains(c.Reason, "aborted: bad config") || c.Canary != "2" || c.Stable != "1" {
		t.Errorf("after_rollback request %+v", c)
	}
}
