package judge

import (
	"math"
	"time"
)

// Outcome is the judge's answer for one metric or for the whole step.
type Outcome string

const (
	// Pass: the step's bake time and samples are met and the evidence
	// bounds the canary's harm inside the policy's tolerance.
	Pass Outcome = "pass"
	// Fail: roll back now. A fail is final for the release.
	Fail Outcome = "fail"
	// Inconclusive: neither yet. A step that ends inconclusive is never a
	// pass; the release policy says whether that pauses or fails.
	Inconclusive Outcome = "inconclusive"
)

// Metric names used in Reasons.
const (
	MetricErrors         = "errors"
	MetricLatency        = "latency"
	GuardUsersHarmed     = "guardrail.users_harmed"
	GuardHarmRate        = "guardrail.error_rate"
	GuardMaxErrors       = "guardrail.max_errors"
	GuardLatencyP99      = "guardrail.latency_p99"
	GuardLatencyDeviance = "guardrail.latency_deviation"
)

// Reason is the judge's account of one metric or guardrail, as data: the
// numbers behind Message are in the fields, so the UI, `canaryctl compare`
// and events can show them without parsing words. Values that are unbounded
// are reported as math.MaxFloat64 so the struct always encodes to JSON.
type Reason struct {
	Metric  string  `json:"metric"`
	Outcome Outcome `json:"outcome"`
	Message string  `json:"message"`

	// Estimate is the metric's effect: for errors the canary's error rate
	// minus stable's (0.01 = 1 pp); for latency the rate ratio of
	// exceedances of stable's p90 (1 = no difference); for guardrails the
	// observed value that was compared with Limit.
	Estimate float64 `json:"estimate"`
	// Lower and Upper are confidence bounds of Estimate (errors: Upper is
	// the time-uniform bound used for a pass; latency: bounds of the ratio;
	// rate guardrails: Wilson bounds of the observed fraction). For the
	// latency ceilings Estimate is the fraction of canary requests above the
	// ceiling and Limit 1 %.
	Lower float64 `json:"lower"`
	Upper float64 `json:"upper"`
	// Limit is what Upper (errors) or Estimate (guardrails) is held to.
	Limit float64 `json:"limit,omitempty"`
	// EValue is the evidence against "no difference" and Threshold the
	// value at which it fails the release.
	EValue    float64 `json:"e_value,omitempty"`
	Threshold float64 `json:"threshold,omitempty"`
	// Ratio is the estimated canary/stable event rate ratio (errors).
	Ratio float64 `json:"ratio,omitempty"`
	// CanarySamples and StableSamples are requests judged in the release;
	// StepSamples the canary requests since the step started.
	CanarySamples uint64 `json:"canary_samples"`
	StableSamples uint64 `json:"stable_samples"`
	StepSamples   uint64 `json:"step_samples"`
	// UsersHarmed is the distinct users who saw a failed canary request.
	UsersHarmed uint64 `json:"users_harmed"`
}

// Verdict is the judge's answer at one moment: Fail if any reason fails,
// Pass if errors and latency both pass, otherwise Inconclusive.
type Verdict struct {
	Outcome Outcome   `json:"outcome"`
	At      time.Time `json:"at"`
	// FailedAt is when the release first failed (zero if it has not).
	FailedAt time.Time `json:"failed_at,omitzero"`
	Reasons  []Reason  `json:"reasons"`
}

// finite maps values JSON cannot carry: ±Inf to ±MaxFloat64, NaN to 0.
func finite(x float64) float64 {
	switch {
	case math.IsNaN(x):
		return 0
	case math.IsInf(x, 1):
		return math.MaxFloat64
	case math.IsInf(x, -1):
		return -math.MaxFloat64
	}
	return x
}

func (r Reason) sanitized() Reason {
	r.Estimate, r.Lower, r.Upper = finite(r.Estimate), finite(r.Lower), finite(r.Upper)
	r.EValue, r.Ratio, r.Limit = finite(r.EValue), finite(r.Ratio), finite(r.Limit)
	return r
}
