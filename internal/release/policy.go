package release

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/control"
	"github.com/canaryd/canaryd/internal/judge"
)

// Policy is a service's release policy as the controller applies it.
type Policy struct {
	Steps           []float64     `json:"steps"`
	StepDuration    time.Duration `json:"step_duration"`
	MaxStepDuration time.Duration `json:"max_step_duration"`
	OnInconclusive  string        `json:"on_inconclusive"`
	AutoPromote     bool          `json:"auto_promote"`
	// ManualGates are step percentages where a passed step waits for a
	// person's approval.
	ManualGates []float64    `json:"manual_gates,omitempty"`
	Judge       judge.Policy `json:"judge"`
}

// PolicyFromConfig maps a service's config to its release policy.
func PolicyFromConfig(s *config.Service) Policy {
	r := s.Release
	p := Policy{
		StepDuration:    r.StepDuration.D(),
		MaxStepDuration: r.MaxStepDuration.D(),
		OnInconclusive:  r.OnInconclusive,
		AutoPromote:     r.AutoPromoteOn(),
	}
	for _, st := range r.Steps {
		p.Steps = append(p.Steps, float64(st))
	}
	for _, g := range r.ManualGates {
		p.ManualGates = append(p.ManualGates, float64(g))
	}
	a := r.Analysis
	p.Judge = judge.Policy{
		Mode:                judge.PerRequest,
		Interval:            a.Interval.D(),
		MaxErrors:           uint64(a.MaxErrors),
		MaxErrorRateDelta:   float64(a.MaxErrorRateDelta) / 100,
		MaxLatencyP99:       a.MaxLatencyP99.D(),
		MaxLatencyDeviation: float64(a.MaxLatencyDeviation) / 100,
		MaxUsersHarmed:      uint64(a.MaxUsersHarmed),
		MinSamples:          uint64(a.MinSamples),
		BakeTime:            r.StepDuration.D(),
		WarmUp:              a.WarmUp.D(),
	}
	if s.Routing == config.RoutingSticky {
		p.Judge.Mode = judge.Sticky
	}
	return p
}

// stepIndex returns the index of the last step at or below traffic, or -1
// when traffic is below the first step.
func (p Policy) stepIndex(traffic float64) int {
	i := -1
	for k, s := range p.Steps {
		if s <= traffic+1e-9 {
			i = k
		}
	}
	return i
}

// Override changes a service's policy for one release: what an operator
// gives `canaryctl canary start --steps ... --step-duration ...`. It is
// stored as the service's policy override (store.PutPolicy) and taken by
// the controller when the release of Build begins; the release record
// keeps the policy in force from then on. Zero fields keep the config's
// value.
type Override struct {
	// Build is the canary the override is for; "" means the next release.
	Build           string        `json:"build,omitempty"`
	Steps           []float64     `json:"steps,omitempty"`
	StepDuration    time.Duration `json:"step_duration,omitempty"`
	MaxStepDuration time.Duration `json:"max_step_duration,omitempty"`
	OnInconclusive  string        `json:"on_inconclusive,omitempty"`
	AutoPromote     *bool         `json:"auto_promote,omitempty"`
	// ManualGates replaces the config's manual gates when not nil (an
	// empty list removes them).
	ManualGates []float64 `json:"manual_gates,omitempty"`
	// SetBy and Reason say who asked and why, for the release record.
	SetBy  string `json:"set_by,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Validate reports every field of o that makes no sense.
func (o Override) Validate() error {
	var errs []error
	prev := 0.0
	for i, s := range o.Steps {
		if !(s > 0 && s <= 100) {
			errs = append(errs, &control.FieldError{Field: fmt.Sprintf("steps[%d]", i), Msg: fmt.Sprintf("%g%% is outside (0, 100]", s)})
		} else if s <= prev {
			errs = append(errs, &control.FieldError{Field: fmt.Sprintf("steps[%d]", i), Msg: fmt.Sprintf("%g%% does not rise above the step before (%g%%)", s, prev)})
		}
		prev = s
	}
	if o.StepDuration < 0 {
		errs = append(errs, &control.FieldError{Field: "step_duration", Msg: "must not be negative"})
	}
	if o.MaxStepDuration < 0 || (o.MaxStepDuration > 0 && o.StepDuration > 0 && o.MaxStepDuration < o.StepDuration) {
		errs = append(errs, &control.FieldError{Field: "max_step_duration", Msg: fmt.Sprintf("%s is negative or shorter than step_duration %s", o.MaxStepDuration, o.StepDuration)})
	}
	if o.OnInconclusive != "" && o.OnInconclusive != "pause" && o.OnInconclusive != "rollback" {
		errs = append(errs, &control.FieldError{Field: "on_inconclusive", Msg: fmt.Sprintf("%q is not pause or rollback", o.OnInconclusive)})
	}
	return errors.Join(errs...)
}

// Apply returns p with o's fields in force. Manual gates that are not
// among the resulting steps are dropped.
func (o Override) Apply(p Policy) Policy {
	if len(o.Steps) > 0 {
		p.Steps = slices.Clone(o.Steps)
	}
	if o.StepDuration > 0 {
		if o.MaxStepDuration == 0 && p.MaxStepDuration < o.StepDuration {
			p.MaxStepDuration = 5 * o.StepDuration
		}
		p.StepDuration = o.StepDuration
		p.Judge.BakeTime = o.StepDuration
	}
	if o.MaxStepDuration > 0 {
		p.MaxStepDuration = o.MaxStepDuration
	}
	if o.OnInconclusive != "" {
		p.OnInconclusive = o.OnInconclusive
	}
	if o.AutoPromote != nil {
		p.AutoPromote = *o.AutoPromote
	}
	if o.ManualGates != nil {
		p.ManualGates = slices.Clone(o.ManualGates)
	}
	var gates []float64
	for _, g := range p.ManualGates {
		if gateAt(p.Steps, g) {
			gates = append(gates, g)
		}
	}
	p.ManualGates = gates
	return p
}
