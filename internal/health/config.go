// Package health runs active HTTP health checks against build endpoints and
// records their verdicts in [balance.Endpoint], where [balance.Set.Pick]
// reads them. Passive ejection (failures seen by the proxy) lives in the
// balance package, because it runs inside [balance.Endpoint.End]; its
// settings are re-exported here as [Passive] so both kinds of health
// configuration can be named from one place.
package health

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/balance"
)

// Passive configures passive ejection; see [balance.Passive].
type Passive = balance.Passive

// Defaults of [Active], applied to zero fields by [Active.WithDefaults].
// They match the YAML defaults of services[].health in internal/config.
const (
	DefaultInterval           = 10 * time.Second
	DefaultTimeout            = 2 * time.Second
	DefaultHealthyThreshold   = 2
	DefaultUnhealthyThreshold = 3
)

// Active configures the active check of one endpoint: every Interval, a GET
// of Path that must answer 2xx or 3xx (redirects are not followed) within
// Timeout. UnhealthyThreshold failed probes in a row take the endpoint out
// of rotation, HealthyThreshold passed probes in a row put it back.
//
// Endpoints start healthy, so a new build serves at once; a dead one is
// taken out after UnhealthyThreshold probes, and passive ejection usually
// notices sooner.
type Active struct {
	// Path is the request path (and optional query) probed, e.g. "/health".
	// It has no default: a guessed path that the application does not
	// serve would mark every endpoint down.
	Path string
	// Host is the Host header of probes; "" means the endpoint's address.
	Host string
	// Interval between probes of one endpoint. 0 means DefaultInterval.
	Interval time.Duration
	// Timeout of one probe, connection included. 0 means DefaultTimeout.
	Timeout time.Duration
	// HealthyThreshold is the number of passed probes in a row that mark an
	// unhealthy endpoint healthy. 0 means DefaultHealthyThreshold.
	HealthyThreshold int
	// UnhealthyThreshold is the number of failed probes in a row that mark
	// a healthy endpoint unhealthy. 0 means DefaultUnhealthyThreshold.
	UnhealthyThreshold int
}

// WithDefaults returns a with every zero field but Path set to its default.
func (a Active) WithDefaults() Active {
	if a.Interval == 0 {
		a.Interval = DefaultInterval
	}
	if a.Timeout == 0 {
		a.Timeout = DefaultTimeout
	}
	if a.HealthyThreshold == 0 {
		a.HealthyThreshold = DefaultHealthyThreshold
	}
	if a.UnhealthyThreshold == 0 {
		a.UnhealthyThreshold = DefaultUnhealthyThreshold
	}
	return a
}

// Validate reports every problem of a after defaults, each naming the field
// and its value; the caller prefixes the config path.
func (a Active) Validate() error {
	a = a.WithDefaults()
	var errs []error
	if !strings.HasPrefix(a.Path, "/") {
		errs = append(errs, fmt.Errorf("path %q: must start with /", a.Path))
	}
	if a.Interval < 0 {
		errs = append(errs, fmt.Errorf("interval %s: must be positive", a.Interval))
	}
	if a.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s: must be positive", a.Timeout))
	}
	if a.Timeout > a.Interval {
		errs = append(errs, fmt.Errorf("timeout %s: longer than the interval %s", a.Timeout, a.Interval))
	}
	if a.HealthyThreshold < 0 {
		errs = append(errs, fmt.Errorf("healthy_threshold %d: must be at least 1", a.HealthyThreshold))
	}
	if a.UnhealthyThreshold < 0 {
		errs = append(errs, fmt.Errorf("unhealthy_threshold %d: must be at least 1", a.UnhealthyThreshold))
	}
	return errors.Join(errs...)
}
