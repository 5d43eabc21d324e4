package release

import (
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/judge"
)

// Policy is a service's release policy as the controller applies it.
type Policy struct {
	Steps           []float64     `json:"steps"`
	StepDuration    time.Duration `json:"step_duration"`
	MaxStepDuration time.Duration `json:"max_step_duration"`
	OnInconclusive  string        `json:"on_inconclusive"`
	AutoPromote     bool          `json:"auto_promote"`
	Judge           judge.Policy  `json:"judge"`
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
