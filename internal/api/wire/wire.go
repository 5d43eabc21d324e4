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
