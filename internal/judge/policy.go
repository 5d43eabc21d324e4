package judge

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Mode says what the statistical unit is, which follows from how traffic is
// randomised between the builds.
type Mode string

const (
	// PerRequest routing randomises every request: the unit is the request
	// and a Bin's Share is the router's probability of sending a request to
	// the canary.
	PerRequest Mode = "per-request"
	// Sticky routing randomises users: the unit is a user's first event in
	// the release (first failure; first exceedance of each latency
	// threshold) and a Bin's Share is the cohort window's share of eligible
	// users.
	Sticky Mode = "sticky"
)

// Policy is what the judge is asked to hold a release to. The first fields
// mirror `release.analysis` of the service config; the rest are the
// statistical settings, whose zero values take the documented defaults.
type Policy struct {
	Mode Mode `json:"mode"` // "" means PerRequest

	// Interval is the window of the absolute ceilings (MaxErrors and the
	// latency ceilings); 0 means 10 s. Longer than 60 s is capped to 60 s.
	Interval time.Duration `json:"interval"`
	// MaxErrors fails the release when the canary has more failed requests
	// than this within one Interval. 0 disables it.
	MaxErrors uint64 `json:"max_errors"`
	// MaxErrorRateDelta is the tolerance on the canary's error rate minus
	// stable's (0.01 = one percentage point): a step passes only when the
	// upper confidence bound of that excess is below it. 0 means 0.01.
	MaxErrorRateDelta float64 `json:"max_error_rate_delta"`
	// MaxLatencyP99 fails the release when the canary's p99 over the last
	// Interval is clearly above it (more than 1 % of canary requests slower,
	// at a per-look binomial p-value ≤ 1e-7), and blocks a pass while the
	// canary's p99 over the last 5 minutes is above it. In Sticky mode it
	// only blocks a pass: requests cluster by user there, and the
	// user-level latency e-process does the failing. 0 disables it.
	MaxLatencyP99 time.Duration `json:"max_latency_p99"`
	// MaxLatencyDeviation is the same check against (1+deviation) × stable's
	// p99 (0.3 = 30 %), once stable's 5-minute window holds 1000 requests.
	// 0 disables it.
	MaxLatencyDeviation float64 `json:"max_latency_deviation"`
	// MaxUsersHarmed fails the release at once when that many distinct
	// users saw a failed canary request (counted by a Tracker and fed in
	// Sample.FirstErrors). 0 disables it. It counts every harmed user, not
	// only the excess over stable's rate: see docs/analysis.md.
	MaxUsersHarmed uint64 `json:"max_users_harmed"`

	// MinSamples is the number of canary units (requests, or users with an
	// event in sticky mode: requests are used there too) that a step needs
	// before it may pass. 0 means 100.
	MinSamples uint64 `json:"min_samples"`
	// BakeTime is the minimum time a step runs before it may pass.
	BakeTime time.Duration `json:"bake_time"`
	// WarmUp is ignored after the canary turns healthy (see MarkHealthy).
	WarmUp time.Duration `json:"warm_up"`

	// ErrorThreshold is the e-value at which the error e-process fails the
	// release; 0 means 200 (0.5 % of false rollbacks per release).
	ErrorThreshold float64 `json:"error_threshold"`
	// LatencyThreshold is the same for latency; 0 means 250 (0.4 %).
	LatencyThreshold float64 `json:"latency_threshold"`
	// PassAlpha bounds the probability that a step passes while the excess
	// error rate is above MaxErrorRateDelta; 0 means 0.05.
	PassAlpha float64 `json:"pass_alpha"`
	// HarmRate is the canary error rate that fails the release at once when
	// clearly exceeded while stable is healthy; 0 means 0.2.
	HarmRate float64 `json:"harm_rate"`
	// Refresh is how often the latency thresholds (stable's p75, p90, p99
	// over the last 5 minutes) are recomputed; 0 means 5 s.
	Refresh time.Duration `json:"refresh"`
}

// withDefaults returns p with zero statistical settings replaced.
func (p Policy) withDefaults() Policy {
	if p.Mode == "" {
		p.Mode = PerRequest
	}
	if p.Interval <= 0 {
		p.Interval = 10 * time.Second
	}
	p.Interval = min(p.Interval, time.Duration(recentLen)*time.Second)
	if p.MaxErrorRateDelta == 0 {
		p.MaxErrorRateDelta = 0.01
	}
	if p.MinSamples == 0 {
		p.MinSamples = 100
	}
	if p.ErrorThreshold == 0 {
		p.ErrorThreshold = 200
	}
	if p.LatencyThreshold == 0 {
		p.LatencyThreshold = 250
	}
	if p.PassAlpha == 0 {
		p.PassAlpha = 0.05
	}
	if p.HarmRate == 0 {
		p.HarmRate = 0.2
	}
	if p.Refresh <= 0 {
		p.Refresh = 5 * time.Second
	}
	return p
}

// Validate reports every field that makes no sense.
func (p Policy) Validate() error {
	var errs []error
	bad := func(f string, v any, why string) {
		errs = append(errs, fmt.Errorf("judge policy: %s %v: %s", f, v, why))
	}
	if p.Mode != "" && p.Mode != PerRequest && p.Mode != Sticky {
		bad("mode", p.Mode, `want "per-request" or "sticky"`)
	}
	if p.MaxErrorRateDelta < 0 || p.MaxErrorRateDelta >= 1 || math.IsNaN(p.MaxErrorRateDelta) {
		bad("max_error_rate_delta", p.MaxErrorRateDelta, "want in [0, 1)")
	}
	if p.MaxLatencyDeviation < 0 || math.IsNaN(p.MaxLatencyDeviation) {
		bad("max_latency_deviation", p.MaxLatencyDeviation, "want ≥ 0")
	}
	if p.MaxLatencyP99 < 0 {
		bad("max_latency_p99", p.MaxLatencyP99, "want ≥ 0")
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"error_threshold", p.ErrorThreshold}, {"latency_threshold", p.LatencyThreshold}} {
		if f.v != 0 && !(f.v > 1) {
			bad(f.name, f.v, "want > 1 (an e-value threshold, 1/alpha)")
		}
	}
	if p.PassAlpha < 0 || p.PassAlpha >= 1 || math.IsNaN(p.PassAlpha) {
		bad("pass_alpha", p.PassAlpha, "want in (0, 1)")
	}
	if p.HarmRate < 0 || p.HarmRate >= 1 || math.IsNaN(p.HarmRate) {
		bad("harm_rate", p.HarmRate, "want in (0, 1)")
	}
	if p.BakeTime < 0 || p.WarmUp < 0 {
		bad("bake_time/warm_up", fmt.Sprint(p.BakeTime, "/", p.WarmUp), "want ≥ 0")
	}
	return errors.Join(errs...)
}
