package judge_test

import (
	"fmt"
	"time"

	"github.com/canaryd/canaryd/internal/judge"
)

// The release controller's loop: once a second, drain the tracker into the
// bin the data plane's windows filled, observe it, hand the latency
// thresholds back to the tracker, and ask for a verdict.
func Example() {
	j, err := judge.New(judge.Policy{Mode: judge.Sticky, BakeTime: time.Minute, MaxUsersHarmed: 50})
	if err != nil {
		panic(err)
	}
	tr := judge.NewTracker(1) // the data plane calls tr.Observe per randomised request
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	j.MarkHealthy(start)
	for s := 1; s <= 90; s++ {
		// The data plane's work, here faked: user 7 fails once on the canary.
		if s == 5 {
			tr.Observe(7, judge.Canary, true, 20*time.Millisecond)
		}
		bin := &judge.Bin{Time: start.Add(time.Duration(s) * time.Second), Share: 0.05}
		bin.Stable.Requests, bin.Canary.Requests = 95, 5
		tr.Drain(bin)
		if err := j.Observe(bin); err != nil {
			panic(err)
		}
		tr.SetThresholds(j.Thresholds())
	}
	v := j.Verdict(start.Add(90*time.Second), start)
	fmt.Println(v.Outcome)
	for _, r := range v.Reasons {
		fmt.Println(r.Metric, r.Outcome, r.UsersHarmed, r.StepSamples)
	}
	// Output:
	// inconclusive
	// errors inconclusive 1 450
	// latency inconclusive 1 450
}
