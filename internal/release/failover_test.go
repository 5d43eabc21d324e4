package release_test

import (
	"slices"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/store"
)

// A controller that dies mid-release is replaced by another replica once
// its lease expires; the new one resumes the same release at the step the
// store says, neither repeating nor skipping an action, and finishes it.
func TestFailoverResumesTheRelease(t *testing.T) {
	h := newHarness(t, fastRelease)
	h.start(20)
	at50 := func() bool { return h.service().Traffic == 50 }
	if !h.run(60, at50) {
		t.Fatalf("never reached 50 %%:\n%s", h.story())
	}
	// The first controller dies: it never steps again and never releases
	// its lease. Traffic keeps flowing; nobody acts until the lease expires.
	h.ctl = h.controller("replica-b")
	for i := 0; i < 9; i++ {
		h.second()
		if tr := h.service().Traffic; tr != 50 {
			t.Fatalf("traffic moved to %v%% while the dead controller still held the lease", tr)
		}
	}
	if !h.run(120, h.ended()) {
		t.Fatalf("the new controller did not finish the release:\n%s", h.story())
	}
	if got := h.trafficSteps(); !slices.Equal(got, []string{"50%", "100%"}) {
		t.Fatalf("traffic steps %v, want [50%% 100%%]: an action was repeated or skipped", got)
	}
	var promoted int
	for _, ev := range h.events() {
		if ev.Type == event.Promoted {
			promoted++
		}
	}
	recs := h.records()
	if promoted != 1 || len(recs) != 1 || recs[0].Status != store.ReleasePromoted {
		t.Fatalf("promotions %d, records %+v: want one release, resumed, promoted once", promoted, recs)
	}
	if d := recs[0].EndedAt.Sub(recs[0].StartedAt); d > 3*time.Minute {
		t.Fatalf("release took %s", d)
	}
}
