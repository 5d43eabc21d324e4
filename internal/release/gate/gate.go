// Package gate calls a release's webhook gates: HTTP endpoints a team
// wires to its own checks (a smoke test, an error tracker, a change
// freeze) that the release controller asks before the first step, before
// each later step, before promotion, and tells after a rollback.
//
// Each call is a signed JSON POST (the alert webhooks' scheme:
// X-Canaryd-Timestamp and X-Canaryd-Signature: v1=hex(HMAC-SHA256(secret,
// timestamp + "." + body))). A 2xx answer with an empty body or
// {"allow": true} lets the release go on; {"allow": false} or any other
// status says no; a gate that cannot be reached (or times out) says no
// too: a gate fails safe.
package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/notify/webhook"
)

// Point is when a gate is called.
type Point string

// The points of a release where gates are called.
const (
	BeforeStart   Point = "before_start"   // before the first step
	BeforeStep    Point = "before_step"    // before raising traffic to each later step
	BeforePromote Point = "before_promote" // before the canary becomes stable
	AfterRollback Point = "after_rollback" // told; the answer cannot undo a rollback
)

// Points returns every Point, in release order.
func Points() []Point { return []Point{BeforeStart, BeforeStep, BeforePromote, AfterRollback} }

// Request is the JSON body a gate receives.
type Request struct {
	Gate    string  `json:"gate"`
	Point   Point   `json:"point"`
	Service string  `json:"service"`
	Release string  `json:"release"`
	Canary  string  `json:"canary"`
	Version string  `json:"canary_version,omitempty"`
	Stable  string  `json:"stable,omitempty"`
	Step    int     `json:"step"`    // 1-based step the release is at (0 before the first)
	Traffic float64 `json:"traffic"` // canary's share now, percent
	// Next is the traffic the release is about to move to (before_step,
	// before_start), 100 before promotion.
	Next float64 `json:"next_traffic,omitempty"`
	// Verdict is the judge's outcome at the time of the call, and Reason
	// its words (for after_rollback: why it rolled back).
	Verdict string    `json:"verdict,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Time    time.Time `json:"time"`
}

// Answer is what a gate may answer in a 2xx body. An empty body allows.
type Answer struct {
	Allow  *bool  `json:"allow"`
	Reason string `json:"reason"`
}

// Gate is one webhook.
type Gate struct {
	Name string
	URL  string
	// Secret keys the signature; "" sends unsigned requests.
	Secret string
	// Points are where it is called; empty means every point.
	Points []Point
	// OnDeny is what a "no" does: "pause" (default) or "rollback".
	OnDeny string
	// Timeout bounds one call; 0 means 10 s.
	Timeout time.Duration
}

// At reports whether g is called at p.
func (g Gate) At(p Point) bool {
	if len(g.Points) == 0 {
		return true
	}
	for _, q := range g.Points {
		if q == p {
			return true
		}
	}
	return false
}

// Result is one call of a gate, as data.
type Result struct {
	Gate    string    `json:"gate"`
	Point   Point     `json:"point"`
	Allowed bool      `json:"allowed"`
	Status  int       `json:"status,omitempty"` // HTTP status; 0 if unreachable
	Message string    `json:"message"`
	OnDeny  string    `json:"on_deny"`
	At      time.Time `json:"at"`
}

// Caller calls gates. The zero value uses http.DefaultClient and
// time.Now; safe for concurrent use.
type Caller struct {
	Client *http.Client
	Now    func() time.Time
}

// Call asks g at req.Point and returns its answer. It never returns an
// error: a failure is a Result with Allowed false that says why.
func (c *Caller) Call(ctx context.Context, g Gate, req Request) Result {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	req.Gate, req.Time = g.Name, now().UTC()
	res := Result{Gate: g.Name, Point: req.Point, OnDeny: g.OnDeny, At: req.Time}
	if res.OnDeny == "" {
		res.OnDeny = "pause"
	}
	body, err := json.Marshal(req)
	if err != nil {
		res.Message = fmt.Sprintf("gate %s: encode request: %v", g.Name, err)
		return res
	}
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, g.URL, bytes.NewReader(body))
	if err != nil {
		res.Message = fmt.Sprintf("gate %s: bad url: %v", g.Name, err)
		return res
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("User-Agent", "canaryd")
	if g.Secret != "" {
		ts := strconv.FormatInt(req.Time.Unix(), 10)
		hr.Header.Set(webhook.HeaderTimestamp, ts)
		hr.Header.Set(webhook.HeaderSignature, "v1="+webhook.Sign(g.Secret, ts, body))
	}
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(hr)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap() // drop the URL: it may carry credentials
		}
		res.Message = fmt.Sprintf("gate %s unreachable (fails safe): %v", g.Name, err)
		return res
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	res.Status = resp.StatusCode
	var ans Answer
	text := strings.TrimSpace(string(b))
	jsonErr := error(nil)
	if text != "" {
		jsonErr = json.Unmarshal(b, &ans)
	}
	if resp.StatusCode/100 != 2 {
		why := ans.Reason
		if why == "" {
			why = text
		}
		if len(why) > 200 {
			why = why[:200] + "…"
		}
		res.Message = fmt.Sprintf("gate %s said no: HTTP %d %s", g.Name, resp.StatusCode, why)
		return res
	}
	switch {
	case jsonErr != nil:
		// A 2xx with a body that is not an Answer: the team's endpoint
		// answered, but not in our terms; allow only an explicit yes.
		res.Message = fmt.Sprintf("gate %s: HTTP %d with a body that is not {\"allow\": ...}: %v", g.Name, resp.StatusCode, jsonErr)
	case ans.Allow != nil && !*ans.Allow:
		res.Message = fmt.Sprintf("gate %s said no: %s", g.Name, orDefault(ans.Reason, "allow is false"))
	default:
		res.Allowed = true
		res.Message = fmt.Sprintf("gate %s allowed (HTTP %d)", g.Name, resp.StatusCode)
		if ans.Reason != "" {
			res.Message += ": " + ans.Reason
		}
	}
	return res
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
