package judge

import (
	"testing"
	"time"
)

// A step's samples count from its start to the second, however long the
// release has run, while the saved history stays thinned.
func TestStepSamplesFromTheStepStart(t *testing.T) {
	j, err := New(Policy{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_800_000_000, 0) // a whole minute
	const bins = 2000
	for i := 1; i <= bins; i++ {
		b := Bin{Time: t0.Add(time.Duration(i) * time.Second), Share: 0.5,
			Canary: Sample{Requests: 10}, Stable: Sample{Requests: 10}}
		if err := j.Observe(&b); err != nil {
			t.Fatal(err)
		}
	}
	now := t0.Add(bins * time.Second)
	for _, back := range []int{1, 7, 13, 599} {
		start := now.Add(-time.Duration(back) * time.Second)
		req, _ := j.stepSamples(start)
		if want := uint64(10 * back); req != want {
			t.Errorf("step started %d s ago: %d samples, want %d", back, req, want)
		}
	}
	if n := len(j.st.History); n > historyFine+(bins-historyFine)/historyStep+60 {
		t.Errorf("history holds %d points after %d bins: not thinned", n, bins)
	}
}
