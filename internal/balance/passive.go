package balance

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of [Passive], used for every zero field by [Passive.WithDefaults].
// They match the YAML defaults of services[].health in internal/config.
const (
	DefaultMaxFails    = 5
	DefaultFailTimeout = 10 * time.Second
	DefaultMaxCooldown = 5 * time.Minute
)

// Passive configures passive ejection, the nginx max_fails/fail_timeout idea
// applied to consecutive failures reported through [Endpoint.End]:
//
//   - MaxFails consecutive failures eject the endpoint for FailTimeout.
//   - When the cooldown ends the endpoint is on probation: its next failure
//     ejects it again at once, for twice the previous cooldown, up to
//     MaxCooldown. Any success ends probation and resets the cooldown to
//     FailTimeout.
//
// The zero value means "all defaults"; use Disabled to turn ejection off.
type Passive struct {
	// MaxFails is the number of consecutive failures that eject an endpoint.
	// 0 means DefaultMaxFails.
	MaxFails int
	// FailTimeout is the first cooldown. 0 means DefaultFailTimeout.
	FailTimeout time.Duration
	// MaxCooldown caps the doubled cooldown of repeated ejections.
	// 0 means DefaultMaxCooldown; it is raised to FailTimeout if smaller.
	MaxCooldown time.Duration
	// Disabled turns passive ejection off: failures are counted in
	// [EndpointStats] but never eject.
	Disabled bool
}

// WithDefaults returns p with every zero field set to its default.
func (p Passive) WithDefaults() Passive {
	if p.MaxFails == 0 {
		p.MaxFails = DefaultMaxFails
	}
	if p.FailTimeout == 0 {
		p.FailTimeout = DefaultFailTimeout
	}
	if p.MaxCooldown == 0 {
		p.MaxCooldown = DefaultMaxCooldown
	}
	if p.MaxCooldown < p.FailTimeout {
		p.MaxCooldown = p.FailTimeout
	}
	return p
}

// Validate reports every negative field. Zero fields are valid (defaults).
func (p Passive) Validate() error {
	var errs []error
	if p.MaxFails < 0 {
		errs = append(errs, fmt.Errorf("max_fails %d: must not be negative", p.MaxFails))
	}
	if p.FailTimeout < 0 {
		errs = append(errs, fmt.Errorf("fail_timeout %s: must not be negative", p.FailTimeout))
	}
	if p.MaxCooldown < 0 {
		errs = append(errs, fmt.Errorf("max_cooldown %s: must not be negative", p.MaxCooldown))
	}
	return errors.Join(errs...)
}

// cooldown returns the ejection time of the level-th ejection in a row
// (level ≥ 1): FailTimeout·2^(level-1), capped at MaxCooldown. p must have
// its defaults applied.
func (p *Passive) cooldown(level int32) time.Duration {
	d := p.FailTimeout
	for i := int32(1); i < level && d < p.MaxCooldown; i++ {
		d *= 2
	}
	return min(d, p.MaxCooldown)
}
