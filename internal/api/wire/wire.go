// Package wire holds the JSON shapes of the admin API (/api/v1): what
// internal/api writes and internal/client reads. Keeping them in one small
// package with no behaviour means the server, the Go client, canaryctl and
// the OpenAPI document (generated from these types) cannot disagree.
//
// Durations travel as Go duration strings ("30s"), times as RFC 3339,
// percentages as numbers from 0 to 100.
package wire

import (
	"time"

	"github.com/canaryd/canaryd/internal/event"
)

// Error is the body of every 4xx and 5xx answer.
type Error struct {
	// Error says what went wrong, in words a person can act on.
	Error string `json:"error"`
	// Field names the request field (or path or query parameter) at fault,
	// when one is.
	Field string `json:"field,omitempty"`
	// Legal says what would be allowed instead, for 409 answers of the
	// lifecycle.
	Legal string `json:"legal,omitempty"`
}

// Endpoint is one replica of a build.
type Endpoint struct {
	Addr          string    `json:"addr"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	// TTL is how long the endpoint stays routable after a heartbeat, as a
	// Go duration; "" for a static endpoint that never expires.
	TTL string `json:"ttl,omitempty"`
	// Alive reports whether the endpoint takes part in routing now.
	Alive bool `json:"alive"`
}

// Build is one version of a service.
type Build struct {
	Service      string            `json:"service"`
	ID           string            `json:"id"`
	Version      string            `json:"version,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Changelog    string            `json:"changelog,omitempty"`
	State        string            `json:"state" openapi:"enum=deployed|canary|stable|deleted"`
	Endpoints    []Endpoint        `json:"endpoints"`
	RegisteredBy string            `json:"registered_by,omitempty"`
	RegisteredAt time.Time         `json:"registered_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
	Revision     int64             `json:"revision"`
}

// Service is the release state of one service.
type Service struct {
	Name string `json:"name"`
	// Stable and Canary are build IDs, "" when there is none.
	Stable        string `json:"stable,omitempty"`
	StableVersion string `json:"stable_version,omitempty"`
	Canary        string `json:"canary,omitempty"`
	CanaryVersion string `json:"canary_version,omitempty"`
	// Traffic is the canary's share in percent.
	Traffic float64 `json:"traffic" openapi:"minimum=0,maximum=100"`
	// WindowOffset is the first cohort bucket of the canary window.
	WindowOffset int  `json:"window_offset"`
	Paused       bool `json:"paused"`
	// UsedBuckets counts the cohort buckets earlier canaries used (what a
	// fresh cohort avoids).
	UsedBuckets int       `json:"used_buckets"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Revision is the service's optimistic-concurrency revision; GET
	// answers it as the ETag too, and mutations accept it in If-Match.
	Revision int64 `json:"revision"`
	// Builds are the service's builds (only in GET of one service).
	Builds []Build `json:"builds,omitempty"`
}

// ServiceList answers GET /api/v1/services.
type ServiceList struct {
	Services []Service `json:"services"`
}

// BuildList answers GET /api/v1/builds.
type BuildList struct {
	Builds []Build `json:"builds"`
}

// RegisterRequest is what a build sends at start-up (POST
// /api/v1/services/{service}/builds). Registering again with the same id
// and version is harmless: it refreshes heartbeats and adds endpoints.
type RegisterRequest struct {
	ID        string            `json:"id"`
	Version   string            `json:"version,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Changelog string            `json:"changelog,omitempty"`
	// Endpoints are host:port addresses of the build's replicas.
	Endpoints []string `json:"endpoints,omitempty"`
	// TTL is how long an endpoint stays routable after its last heartbeat,
	// as a Go duration ("30s"); "" or "0s" means it never expires.
	TTL string `json:"ttl,omitempty"`
}

// EndpointRequest names one endpoint of a build, for heartbeat and
// deregister.
type EndpointRequest struct {
	Endpoint string `json:"endpoint"`
}

// ReasonRequest is the body of operations that only take a reason
// (promote, rollback, pause, resume, cohort fresh/reset). The body may be
// empty.
type ReasonRequest struct {
	Reason string `json:"reason,omitempty"`
}

// SetStableRequest makes a deployed build the service's first stable one.
type SetStableRequest struct {
	Build  string `json:"build"`
	Reason string `json:"reason,omitempty"`
}

// StartCanaryRequest makes a deployed build the canary.
type StartCanaryRequest struct {
	Build string `json:"build"`
	// Traffic is the first percentage, 0 to 100 (default 0).
	Traffic float64 `json:"traffic,omitempty" openapi:"minimum=0,maximum=100"`
	// Replace allows starting while another canary runs (it goes back to
	// deployed).
	Replace bool `json:"replace,omitempty"`
	// FreshCohort picks cohort buckets no earlier canary used.
	FreshCohort bool   `json:"fresh_cohort,omitempty"`
	Reason      string `json:"reason,omitempty"`
	// Policy overrides the service's release policy for this release
	// (steps, step_duration, ...); nil runs it under the config.
	Policy *ReleasePolicy `json:"policy,omitempty"`
}

// TrafficRequest moves the canary's share. Traffic is required.
type TrafficRequest struct {
	Traffic *float64 `json:"traffic" openapi:"minimum=0,maximum=100"`
	Reason  string   `json:"reason,omitempty"`
}

// Result answers every lifecycle operation: the event it recorded and the
// service as it is afterwards (without builds).
type Result struct {
	Event   event.Event `json:"event"`
	Service Service     `json:"service"`
}

// EventPage answers GET /api/v1/events. NextAfterID is the after_id that
// fetches the next page in ascending order (0 when this page is the last
// one); NextBeforeID does the same for order=desc.
type EventPage struct {
	Events       []event.Event `json:"events"`
	NextAfterID  int64         `json:"next_after_id,omitempty"`
	NextBeforeID int64         `json:"next_before_id,omitempty"`
}

// Empty answers operations that return nothing else (heartbeat,
// deregister).
type Empty struct {
	OK bool `json:"ok"`
}

// PromoteRequest is the body of promote. While the release controller is
// still analysing the canary, promote is refused (409) unless Force is set
// with a Reason: the release record then says it was promoted by force,
// skipping the remaining analysis.
type PromoteRequest struct {
	Reason string `json:"reason,omitempty"`
	Force  bool   `json:"force,omitempty"`
}

// ReleasePolicy is the policy a release runs under, or (in
// StartCanaryRequest) the fields of the service's policy one release
// overrides. Durations are Go duration strings; percentages 0 to 100.
type ReleasePolicy struct {
	Steps           []float64 `json:"steps,omitempty"`
	StepDuration    string    `json:"step_duration,omitempty"`
	MaxStepDuration string    `json:"max_step_duration,omitempty"`
	// OnInconclusive is pause or rollback.
	OnInconclusive string `json:"on_inconclusive,omitempty" openapi:"enum=pause|rollback"`
	AutoPromote    *bool  `json:"auto_promote,omitempty"`
	// ManualGates are steps where a passed step waits for approve.
	ManualGates []float64 `json:"manual_gates,omitempty"`
}

// Release is one release record: the journal of a canary deployment.
type Release struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	Build   string `json:"build"`
	// Status is running, paused, promoted, rolled_back or aborted.
	Status string `json:"status" openapi:"enum=running|paused|promoted|rolled_back|aborted"`
	// Step is the 1-based step reached (0 before the first); Traffic the
	// canary's share then.
	Step    int       `json:"step"`
	Steps   []float64 `json:"steps"`
	Traffic float64   `json:"traffic"`
	// Reason says why it ended (or is held), in words and numbers.
	Reason    string     `json:"reason,omitempty"`
	StartedAt time.Time  `json:"started_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	// Duration is from start to end (or to now while active), as a Go
	// duration.
	Duration string `json:"duration"`
	// Verdict is the judge's last outcome: pass, fail or inconclusive.
	Verdict      string  `json:"verdict,omitempty"`
	UsersExposed float64 `json:"users_exposed"`
	UsersHarmed  float64 `json:"users_harmed"`
	// Held says why the release waits for a person (a manual gate).
	Held string `json:"held,omitempty"`
	// Waiting is true when every step passed and a manual promote is
	// awaited.
	Waiting bool `json:"waiting_for_promote,omitempty"`
	// Forced is true when an operator promoted it skipping the analysis.
	Forced    bool           `json:"forced,omitempty"`
	Policy    ReleasePolicy  `json:"policy"`
	Approvals []Approval     `json:"approvals,omitempty"`
	Gates     []GateResult   `json:"gates,omitempty"`
	Checks    []MetricResult `json:"checks,omitempty"`
	// LoadTest is the load-test gate's run of the current (or last) step,
	// when the service has one.
	LoadTest *LoadTest `json:"load_test,omitempty"`
}

// LoadTest is what a release's load test sent during one step.
type LoadTest struct {
	Traffic float64   `json:"traffic"` // the step's canary percentage
	Target  string    `json:"target"`
	Rate    float64   `json:"rate"` // requests per second asked for
	Started time.Time `json:"started"`
	Sent    uint64    `json:"sent"`
	// Dropped were not sent because the concurrency cap was reached.
	Dropped uint64 `json:"dropped"`
	// Classes counts the finished requests by status class (2xx, 5xx,
	// error…); Builds by the build that answered, when the service
	// exposes it.
	Classes map[string]uint64 `json:"classes,omitempty"`
	Builds  map[string]uint64 `json:"builds,omitempty"`
	Done    bool              `json:"done,omitempty"`
	Why     string            `json:"why,omitempty"`   // why the run ended
	Error   string            `json:"error,omitempty"` // why it could not start
}

// Approval is a person's approval of a manual gate.
type Approval struct {
	Traffic float64   `json:"traffic"`
	Actor   string    `json:"actor"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// GateResult is the latest call of one webhook gate at one point.
type GateResult struct {
	Gate    string    `json:"gate"`
	Point   string    `json:"point" openapi:"enum=before_start|before_step|before_promote|after_rollback"`
	Allowed bool      `json:"allowed"`
	Status  int       `json:"status,omitempty"`
	Message string    `json:"message"`
	OnDeny  string    `json:"on_deny"`
	At      time.Time `json:"at"`
}

// MetricResult is the latest evaluation of one custom metric check.
type MetricResult struct {
	Name      string    `json:"name"`
	Outcome   string    `json:"outcome" openapi:"enum=pass|fail|inconclusive"`
	Condition string    `json:"condition"`
	Canary    float64   `json:"canary"`
	Stable    *float64  `json:"stable,omitempty"`
	Limit     float64   `json:"limit"`
	Message   string    `json:"message"`
	At        time.Time `json:"at"`
}

// ReleaseList answers GET /api/v1/releases, newest first.
type ReleaseList struct {
	Releases []Release `json:"releases"`
}

// Comparison answers GET /api/v1/services/{service}/compare: the live
// comparison the judge sees, per metric. With no release under way Active
// is false, Release is absent and Metrics is empty.
type Comparison struct {
	Service string   `json:"service"`
	Active  bool     `json:"active"`
	Release *Release `json:"release,omitempty"`
	// Outcome is the overall verdict now: pass, fail or inconclusive;
	// none when no release is under way.
	Outcome   string    `json:"outcome"`
	At        time.Time `json:"at"`
	StepStart time.Time `json:"step_start"`
	Metrics   []Metric  `json:"metrics"`
}

// Metric is one row of a comparison. Kind is judge (the anytime-valid
// tests of errors and latency), guardrail (absolute ceilings) or check (a
// custom metric). Rates are fractions (0.01 = 1 %), latencies seconds.
// Fields that do not apply are 0; unbounded bounds are ±1.8e308.
type Metric struct {
	Metric string `json:"metric"`
	Kind   string `json:"kind" openapi:"enum=judge|guardrail|check"`
	// Unit of Stable, Canary and Difference: rate, seconds, users,
	// requests or value.
	Unit       string  `json:"unit"`
	Stable     float64 `json:"stable"`
	Canary     float64 `json:"canary"`
	Difference float64 `json:"difference"`
	// Estimate is the effect the test measures (errors: excess rate;
	// latency: rate ratio of exceedances of stable's p90) with its
	// confidence bounds Lower and Upper; Limit is what it is held to.
	Estimate float64 `json:"estimate"`
	Lower    float64 `json:"lower"`
	Upper    float64 `json:"upper"`
	Limit    float64 `json:"limit"`
	// EValue is the evidence against "no difference"; the release fails
	// when it reaches Threshold.
	EValue    float64 `json:"e_value"`
	Threshold float64 `json:"threshold"`
	Samples   uint64  `json:"samples"`
	Result    string  `json:"result" openapi:"enum=pass|fail|inconclusive"`
	Message   string  `json:"message"`
}

// Controller answers GET /api/v1/controller: which replica holds the
// release controller's lease, and the replicas that publish their judged
// traffic for the active releases (docs/operations.md, "Several replicas").
type Controller struct {
	// Holder is the replica running releases ("" when none holds the
	// lease now); Epoch grows each time the lease changes hands.
	Holder     string     `json:"holder"`
	Epoch      int64      `json:"epoch"`
	AcquiredAt *time.Time `json:"acquired_at,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	// Replicas are the publications of each replica for each service
	// with an active release, by service then replica.
	Replicas []ReplicaPublication `json:"replicas"`
}

// ReplicaPublication is how far one replica has published one service's
// judged traffic.
type ReplicaPublication struct {
	Replica string `json:"replica"`
	Service string `json:"service"`
	// Through is the last second it published; At when it wrote that.
	Through time.Time `json:"through"`
	At      time.Time `json:"at"`
	// Live is false once it has not published for the leader's patience
	// (5 s): the leader no longer waits for it.
	Live   bool `json:"live"`
	Leader bool `json:"leader"`
}
