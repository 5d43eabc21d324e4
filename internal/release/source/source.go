package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Vars fill the placeholders of a query or URL: {{service}}, {{build}} and
// {{interval}} (whole seconds with an "s", which PromQL and most APIs read).
type Vars struct {
	Service  string
	Build    string
	Interval time.Duration
}

// Expand replaces the placeholders in s.
func (v Vars) Expand(s string) string {
	secs := int64(v.Interval / time.Second)
	if secs < 1 {
		secs = 1
	}
	return strings.NewReplacer("{{service}}", v.Service, "{{build}}", v.Build,
		"{{interval}}", strconv.FormatInt(secs, 10)+"s").Replace(s)
}

// A Source reads one number for one build. It must honour ctx's deadline
// and must not retry: the controller asks again next interval. A source
// that answers but has no value for the build returns an error wrapping
// ErrNoData.
type Source interface {
	Value(ctx context.Context, v Vars) (float64, error)
}

// ErrNoData means the source answered without a value (an empty query
// result, a missing JSON path): the check is inconclusive.
var ErrNoData = errors.New("no data")

// Outcome of one check.
type Outcome string

// Outcomes; the same words as the judge's.
const (
	Pass         Outcome = "pass"
	Fail         Outcome = "fail"
	Inconclusive Outcome = "inconclusive"
)

// Check is one custom metric with its condition.
type Check struct {
	Name      string
	Source    Source
	Condition Condition
	// Timeout bounds one evaluation (both builds); 0 means 5 s.
	Timeout time.Duration
}

// Result is one evaluation of a Check, as data: the numbers behind the
// outcome, for compare, events and the release record.
type Result struct {
	Name      string    `json:"name"`
	Outcome   Outcome   `json:"outcome"`
	Condition string    `json:"condition"`
	Canary    float64   `json:"canary"`
	Stable    *float64  `json:"stable,omitempty"` // only for conditions on stable
	Limit     float64   `json:"limit"`            // what the canary was held to
	Message   string    `json:"message"`
	At        time.Time `json:"at"`
	// Evidence is the sequential test behind the outcome of a gauge or
	// counter metric (nil for a threshold metric).
	Evidence *Evidence `json:"evidence,omitempty"`
}

// Evidence is a sequential metric's account in numbers, like the judge's
// reasons: what is estimated, its confidence bounds, what the upper bound
// is held to for a pass, and the e-value against its fail threshold.
// Unbounded values are reported as ±math.MaxFloat64 so it encodes to JSON.
type Evidence struct {
	Kind string `json:"kind"` // gauge or counter
	// Estimate is, for a gauge, the mean excess of the canary over the
	// condition's limit (canary − stable·F, or stable·F − canary when
	// bigger is better); for a counter the canary/stable event-rate
	// ratio per unit of traffic share.
	Estimate float64 `json:"estimate"`
	Lower    float64 `json:"lower"`
	Upper    float64 `json:"upper"`
	// Tolerance is what Upper must be within for a pass (gauge: the
	// condition's offset; counter: its factor F).
	Tolerance float64 `json:"tolerance"`
	EValue    float64 `json:"e_value"`
	Threshold float64 `json:"threshold"`
	// Samples is the evaluations used (gauge) or the events counted on
	// both builds (counter); CanaryEvents and StableEvents split the
	// latter.
	Samples      uint64 `json:"samples"`
	CanaryEvents uint64 `json:"canary_events,omitempty"`
	StableEvents uint64 `json:"stable_events,omitempty"`
}

// Finite returns x with ±Inf and NaN replaced by values JSON can carry.
func Finite(x float64) float64 { return finite(x) }

// Evaluate reads the canary's value (and stable's, for a condition on
// stable) and applies the condition. A source error or a missing value is
// Inconclusive with the error in Message.
func (c Check) Evaluate(ctx context.Context, service, canary, stable string, interval time.Duration, now time.Time) Result {
	r := Result{Name: c.Name, Condition: c.Condition.String(), At: now, Outcome: Inconclusive}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cv, err := c.Source.Value(ctx, Vars{Service: service, Build: canary, Interval: interval})
	if err != nil {
		r.Message = fmt.Sprintf("%s: canary %s: %v", c.Name, canary, err)
		return r
	}
	r.Canary = finite(cv)
	var sv float64
	if c.Condition.Stable {
		if stable == "" {
			r.Message = fmt.Sprintf("%s: no stable build to compare with", c.Name)
			return r
		}
		sv, err = c.Source.Value(ctx, Vars{Service: service, Build: stable, Interval: interval})
		if err != nil {
			r.Message = fmt.Sprintf("%s: stable %s: %v", c.Name, stable, err)
			return r
		}
		s := finite(sv)
		r.Stable = &s
	}
	r.Limit = finite(c.Condition.Limit(sv))
	cond := c.Condition.Op + " " + strconv.FormatFloat(r.Limit, 'g', 6, 64)
	if c.Condition.Stable {
		cond += fmt.Sprintf(" (%s with stable %s)", c.Condition, strconv.FormatFloat(sv, 'g', 6, 64))
	}
	if c.Condition.Holds(cv, c.Condition.Limit(sv)) {
		r.Outcome = Pass
		r.Message = fmt.Sprintf("%s: canary %s %s holds", c.Name, strconv.FormatFloat(cv, 'g', 6, 64), cond)
	} else {
		r.Outcome = Fail
		r.Message = fmt.Sprintf("%s: canary %s is not %s", c.Name, strconv.FormatFloat(cv, 'g', 6, 64), cond)
	}
	return r
}

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

// get sends a GET and returns the body of a 2xx answer (at most 4 MiB).
func get(ctx context.Context, client *http.Client, url string, headers map[string]string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "canaryd")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("unreachable: %w", redact(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(b))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
	}
	return b, nil
}

// redact drops the URL from a client error (it may hold credentials),
// keeping the operation and the cause.
func redact(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
