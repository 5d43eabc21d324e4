package cohort

import (
	"math/rand/v2"
	"net/http"
	"net/netip"
)

// Mode is how the canary share is applied.
type Mode uint8

// Routing modes.
const (
	Sticky   Mode = iota // per user: the user's bucket against the window
	Weighted             // per request: an independent draw
)

// Reason says why a request went where it went; it is logged and tells the
// judge which requests were randomised.
type Reason uint8

// The reasons of a decision.
const (
	NoCanary      Reason = iota // the service has no canary taking traffic
	InWindow                    // sticky: the user's bucket is in the window
	OutsideWindow               // sticky: it is not
	Drawn                       // weighted: the per-request draw
	OutsideSegment
	OverrideHeader
	AllowList
	DenyList
	Fallback // the safety net: retried on stable after the canary failed
)

var reasonNames = [...]string{"no_canary", "cohort", "cohort", "weighted", "segment", "override", "allow_list", "deny_list", "fallback"}

// String names the reason for logs.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// Randomised reports whether the decision is a random sample of the cohort
// split, the only kind of traffic the judge may compare.
func (r Reason) Randomised() bool { return r == InWindow || r == OutsideWindow || r == Drawn }

// Rules is the compiled cohort configuration of one service at one moment.
// It is immutable once built and safe for concurrent use.
type Rules struct {
	Salt    string
	Mode    Mode
	Window  Window  // sticky mode
	Percent float64 // weighted mode, 0–100
	Segment []Condition

	OverrideHeader  string // canonical form; "" disables the header
	OverrideTrusted []netip.Prefix
	Allow, Deny     map[string]struct{}
}

// Decision is the outcome for one request.
type Decision struct {
	Canary bool
	Reason Reason
	Hash   uint64 // Hash(salt, key): for metrics and the judge, never the raw key
}

// Decide routes one request whose user key is key (never empty: the caller
// assigns anonymous users a key first). hasCanary is false when the service
// has no canary build with endpoints. It does not allocate unless a segment
// rule reads a JWT claim.
func (r *Rules) Decide(req *http.Request, key string, client netip.Addr, hasCanary bool) Decision {
	d := Decision{Hash: Hash(r.Salt, key)}
	if !hasCanary {
		d.Reason = NoCanary
		return d
	}
	if r.OverrideHeader != "" {
		if v := headerValue(req.Header, r.OverrideHeader); v != "" && r.trusted(client) {
			switch v {
			case "always":
				d.Canary, d.Reason = true, OverrideHeader
				return d
			case "never":
				d.Reason = OverrideHeader
				return d
			}
		}
	}
	if _, ok := r.Deny[key]; ok {
		d.Reason = DenyList
		return d
	}
	if _, ok := r.Allow[key]; ok {
		d.Canary, d.Reason = true, AllowList
		return d
	}
	for i := range r.Segment {
		if !r.Segment[i].Match(req, client) {
			d.Reason = OutsideSegment
			return d
		}
	}
	if r.Mode == Weighted {
		d.Reason = Drawn
		d.Canary = r.Percent > 0 && rand.Float64()*100 < r.Percent
		return d
	}
	if r.Window.Contains(uint32(d.Hash % Buckets)) {
		d.Canary, d.Reason = true, InWindow
	} else {
		d.Reason = OutsideWindow
	}
	return d
}

// Share is the probability that a randomised, eligible request or user goes
// to the canary: the judge's π.
func (r *Rules) Share() float64 {
	if r.Mode == Weighted {
		return r.Percent / 100
	}
	return r.Window.Share()
}

func (r *Rules) trusted(client netip.Addr) bool {
	if len(r.OverrideTrusted) == 0 {
		return true
	}
	for _, p := range r.OverrideTrusted {
		if p.Contains(client) {
			return true
		}
	}
	return false
}
