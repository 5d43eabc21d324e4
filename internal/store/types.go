package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/canaryd/canaryd/internal/event"
)

// MaxPageSize bounds every listing; a larger Limit is cut to it.
const MaxPageSize = 1000

// DefaultPageSize is used when a listing's Limit is zero or negative.
const DefaultPageSize = 100

// Window is a range of cohort buckets [Start, Start+Len), taken modulo the
// bucket count by the cohort package. The store only keeps windows.
type Window struct {
	Start int `json:"start"`
	Len   int `json:"len"`
}

// Service is the release state of one service: which build is the canary,
// how much traffic it gets and which cohort buckets it uses. The stable
// build is the service's build in StateStable (see Build).
type Service struct {
	Name string `json:"name"`
	// Canary is the ID of the canary build, "" when there is none.
	Canary string `json:"canary,omitempty"`
	// Traffic is the canary's share in percent, 0 to 100.
	Traffic float64 `json:"traffic"`
	// WindowOffset is the first bucket of the current cohort window.
	WindowOffset int `json:"window_offset"`
	// UsedWindows are the windows of earlier canaries of this service, so a
	// fresh cohort can avoid every bucket used before.
	UsedWindows []Window `json:"used_windows,omitempty"`
	// Paused holds the release controller's automatic steps.
	Paused bool `json:"paused"`
	// UpdatedAt is set by the store on every Put.
	UpdatedAt time.Time `json:"updated_at"`
	Revision  int64     `json:"revision"`
}

// Validate reports what makes s unstorable.
func (s Service) Validate() error {
	var errs []error
	if s.Name == "" {
		errs = append(errs, errors.New("service: name is empty"))
	}
	if s.Traffic < 0 || s.Traffic > 100 || s.Traffic != s.Traffic {
		errs = append(errs, fmt.Errorf("service %q: traffic %v: not within 0..100", s.Name, s.Traffic))
	}
	if s.WindowOffset < 0 {
		errs = append(errs, fmt.Errorf("service %q: window_offset %d: negative", s.Name, s.WindowOffset))
	}
	for i, w := range s.UsedWindows {
		if w.Start < 0 || w.Len < 0 {
			errs = append(errs, fmt.Errorf("service %q: used_windows[%d] %+v: negative", s.Name, i, w))
		}
	}
	return errors.Join(errs...)
}

// BuildState is where a build is in its lifecycle. The store enforces only
// that a service has at most one stable and at most one canary build; the
// legal transitions are the control plane's business.
type BuildState string

// The build states, in lifecycle order.
const (
	StateDeployed BuildState = "deployed"
	StateCanary   BuildState = "canary"
	StateStable   BuildState = "stable"
	StateDeleted  BuildState = "deleted"
)

// Valid reports whether s is one of the defined states.
func (s BuildState) Valid() bool {
	switch s {
	case StateDeployed, StateCanary, StateStable, StateDeleted:
		return true
	}
	return false
}

// Endpoint is one replica of a build. It takes part in routing while
// TTL == 0 (static, never expires) or LastHeartbeat+TTL is after now.
type Endpoint struct {
	Addr          string        `json:"addr"` // host:port
	LastHeartbeat time.Time     `json:"last_heartbeat"`
	TTL           time.Duration `json:"ttl"`
}

// Alive reports whether e counts as up at now.
func (e Endpoint) Alive(now time.Time) bool {
	return e.TTL <= 0 || now.Before(e.LastHeartbeat.Add(e.TTL))
}

// Build is one version of a service.
type Build struct {
	Service   string            `json:"service"`
	ID        string            `json:"id"`
	Version   string            `json:"version,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Changelog string            `json:"changelog,omitempty"`
	// Endpoints are ordered by Addr when read. See Tx.PutBuild for how
	// they are written.
	Endpoints    []Endpoint `json:"endpoints,omitempty"`
	State        BuildState `json:"state"`
	RegisteredBy string     `json:"registered_by,omitempty"`
	// RegisteredAt is kept as given on create; the store sets it to its
	// clock's now when it is zero. It never changes on update.
	RegisteredAt time.Time `json:"registered_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	Revision     int64     `json:"revision"`
}

// Validate reports what makes b unstorable.
func (b Build) Validate() error {
	var errs []error
	if b.Service == "" {
		errs = append(errs, fmt.Errorf("build %q: service is empty", b.ID))
	}
	if b.ID == "" {
		errs = append(errs, fmt.Errorf("build of service %q: id is empty", b.Service))
	}
	if !b.State.Valid() {
		errs = append(errs, fmt.Errorf("build %s/%s: state %q: want deployed, canary, stable or deleted", b.Service, b.ID, b.State))
	}
	seen := make(map[string]bool, len(b.Endpoints))
	for i, e := range b.Endpoints {
		if err := e.validate(); err != nil {
			errs = append(errs, fmt.Errorf("build %s/%s: endpoints[%d]: %w", b.Service, b.ID, i, err))
		}
		if seen[e.Addr] {
			errs = append(errs, fmt.Errorf("build %s/%s: endpoints[%d] %q: duplicate", b.Service, b.ID, i, e.Addr))
		}
		seen[e.Addr] = true
	}
	return errors.Join(errs...)
}

func (e Endpoint) validate() error {
	if e.Addr == "" {
		return errors.New("addr is empty")
	}
	if e.TTL < 0 {
		return fmt.Errorf("%q: ttl %v: negative", e.Addr, e.TTL)
	}
	return nil
}

// ValidateEndpoint reports what makes e unstorable.
func ValidateEndpoint(e Endpoint) error { return e.validate() }

// BuildFilter selects builds. The zero value selects every build.
type BuildFilter struct {
	Service string       // "" for all services
	States  []BuildState // empty for all states
}

// EventQuery selects one page of events. The zero value returns the first
// DefaultPageSize events.
type EventQuery struct {
	Service string       // "" for all services
	Build   string       // "" for all builds
	Types   []event.Type // empty for all types
	Since   time.Time    // zero: no lower bound; else Time >= Since
	Until   time.Time    // zero: no upper bound; else Time < Until
	AfterID int64        // only IDs > AfterID (0: no bound)
	// BeforeID keeps only IDs < BeforeID (0: no bound); with Desc it pages
	// backwards from the newest event.
	BeforeID int64
	Desc     bool // newest first
	Limit    int  // <= 0: DefaultPageSize; cut to MaxPageSize
}

// ReleaseStatus is where a release is.
type ReleaseStatus string

// The release statuses. Running and Paused are active; the others are final.
const (
	ReleaseRunning    ReleaseStatus = "running"
	ReleasePaused     ReleaseStatus = "paused"
	ReleasePromoted   ReleaseStatus = "promoted"
	ReleaseRolledBack ReleaseStatus = "rolled_back"
	ReleaseAborted    ReleaseStatus = "aborted"
)

// Active reports whether a release with status s is still going.
func (s ReleaseStatus) Active() bool { return s == ReleaseRunning || s == ReleasePaused }

// Release is the controller's record of one release: summary fields that
// listings show, and State, the controller's own JSON it resumes from after
// a crash. The store does not look inside State.
type Release struct {
	ID        string        `json:"id"`
	Service   string        `json:"service"`
	Build     string        `json:"build"`
	Status    ReleaseStatus `json:"status"`
	Step      int           `json:"step"`
	Traffic   float64       `json:"traffic"`
	Reason    string        `json:"reason,omitempty"`
	StartedAt time.Time     `json:"started_at"` // kept as given; store's now if zero
	UpdatedAt time.Time     `json:"updated_at"` // set by the store
	EndedAt   time.Time     `json:"ended_at"`   // zero while active
	// State must be valid JSON or empty.
	State    json.RawMessage `json:"state,omitempty"`
	Revision int64           `json:"revision"`
}

// Validate reports what makes r unstorable.
func (r Release) Validate() error {
	var errs []error
	if r.ID == "" {
		errs = append(errs, errors.New("release: id is empty"))
	}
	if r.Service == "" {
		errs = append(errs, fmt.Errorf("release %q: service is empty", r.ID))
	}
	switch r.Status {
	case ReleaseRunning, ReleasePaused, ReleasePromoted, ReleaseRolledBack, ReleaseAborted:
	default:
		errs = append(errs, fmt.Errorf("release %q: status %q: unknown", r.ID, r.Status))
	}
	if len(r.State) > 0 && !json.Valid(r.State) {
		errs = append(errs, fmt.Errorf("release %q: state: not valid JSON", r.ID))
	}
	return errors.Join(errs...)
}

// ReleaseFilter selects release records. The zero value selects the newest
// DefaultPageSize releases of every service.
type ReleaseFilter struct {
	Service    string // "" for all services
	ActiveOnly bool   // only running and paused releases
	Limit      int    // <= 0: DefaultPageSize; cut to MaxPageSize
}

// Policy is a service's release policy override, set at run time over what
// the config file says. Spec is the policy's JSON; its shape belongs to the
// release controller.
type Policy struct {
	Service   string          `json:"service"`
	Spec      json.RawMessage `json:"spec"`
	UpdatedBy string          `json:"updated_by,omitempty"`
	UpdatedAt time.Time       `json:"updated_at"` // set by the store
	Revision  int64           `json:"revision"`
}

// Validate reports what makes p unstorable.
func (p Policy) Validate() error {
	var errs []error
	if p.Service == "" {
		errs = append(errs, errors.New("policy: service is empty"))
	}
	if !json.Valid(p.Spec) {
		errs = append(errs, fmt.Errorf("policy %q: spec: not valid JSON", p.Service))
	}
	return errors.Join(errs...)
}

// AlertChannel is one place alerts go. Secret holds the credentials (a
// webhook URL, a bot token, an SMTP password) already encrypted by the
// caller: the store keeps the bytes and never looks inside.
type AlertChannel struct {
	ID   string `json:"id"`
	Kind string `json:"kind"` // slack, telegram, email, webhook
	Name string `json:"name"`
	// Filter is the routing filter's JSON (which services, types,
	// severities); its shape belongs to the notifier. Empty means all.
	Filter    json.RawMessage `json:"filter,omitempty"`
	Secret    []byte          `json:"-"`
	CreatedAt time.Time       `json:"created_at"` // set by the store on create
	UpdatedAt time.Time       `json:"updated_at"` // set by the store
	Revision  int64           `json:"revision"`
}

// Validate reports what makes c unstorable.
func (c AlertChannel) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("alert channel: id is empty"))
	}
	if c.Kind == "" {
		errs = append(errs, fmt.Errorf("alert channel %q: kind is empty", c.ID))
	}
	if len(c.Filter) > 0 && !json.Valid(c.Filter) {
		errs = append(errs, fmt.Errorf("alert channel %q: filter: not valid JSON", c.ID))
	}
	return errors.Join(errs...)
}

// Idempotency is a stored response to a request that carried an
// idempotency key, replayed when the same key comes again.
type Idempotency struct {
	// Key should include the caller's identity (token name) so that two
	// callers cannot replay each other's responses.
	Key string `json:"key"`
	// RequestHash identifies the request body and route, so a key reused
	// for a different request can be refused.
	RequestHash string    `json:"request_hash"`
	Status      int       `json:"status"`
	Body        []byte    `json:"body"`
	CreatedAt   time.Time `json:"created_at"` // set by the store
	ExpiresAt   time.Time `json:"expires_at"`
}

// Lease is a named lock with an expiry, held by one replica at a time.
type Lease struct {
	Name string `json:"name"`
	// Holder is "" after the lease was released.
	Holder string `json:"holder"`
	// Epoch grows by one each time the lease changes holder: a fencing token.
	Epoch      int64     `json:"epoch"`
	AcquiredAt time.Time `json:"acquired_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// HeldBy reports whether holder holds l at now.
func (l Lease) HeldBy(holder string, now time.Time) bool {
	return holder != "" && l.Holder == holder && now.Before(l.ExpiresAt)
}

// ChangeKind names what a Change is about.
type ChangeKind string

// The change kinds. ChangeResync means changes were lost (a slow
// subscriber, a dropped PostgreSQL connection): reload everything.
const (
	ChangeService      ChangeKind = "service"
	ChangeBuild        ChangeKind = "build"
	ChangeEndpoint     ChangeKind = "endpoint"
	ChangeEvent        ChangeKind = "event"
	ChangeRelease      ChangeKind = "release"
	ChangePolicy       ChangeKind = "policy"
	ChangeAlertChannel ChangeKind = "alert_channel"
	ChangeLease        ChangeKind = "lease"
	ChangeResync       ChangeKind = "resync"
)

// Change tells subscribers that a committed transaction touched something.
// It carries keys, not data: read the data with View. One transaction
// yields one Change per distinct (Kind, Service, Key, EventID).
type Change struct {
	Kind    ChangeKind `json:"k"`
	Service string     `json:"s,omitempty"`
	// Key is the build ID (also for ChangeEndpoint), release ID, alert
	// channel ID or lease name the change is about.
	Key string `json:"key,omitempty"`
	// EventID is the ID of the appended event for ChangeEvent.
	EventID int64 `json:"e,omitempty"`
}

// AlertState is where an alert delivery is: pending → sending → sent, back
// to pending for a retry, or dead.
type AlertState string

// The alert delivery states.
const (
	// AlertPending waits for NextAttempt (first try or a retry).
	AlertPending AlertState = "pending"
	// AlertSending is claimed until NextAttempt, its lease; when the lease
	// passes without an outcome it is due again (at-least-once).
	AlertSending AlertState = "sending"
	// AlertSent was accepted by the provider.
	AlertSent AlertState = "sent"
	// AlertDead was given up; kept for listing and replay.
	AlertDead AlertState = "dead"
)

// AlertDelivery is one alert for one channel in the alert outbox: the
// durable form of notify.Delivery (see notify.Outbox for the contract the
// Tx methods below implement). Channel is a channel name, not a foreign
// key: channels from the config file have no row in alert_channels.
type AlertDelivery struct {
	ID      int64  `json:"id"` // set by the store
	Channel string `json:"channel"`
	// Key is the dedupe key: deliveries of one channel and key merge while
	// pending and are throttled together.
	Key string `json:"key"`
	// Message is the alert's JSON; the store keeps it byte for byte.
	Message     []byte     `json:"message"`
	Count       int        `json:"count"` // events merged into it, ≥ 1
	State       AlertState `json:"state"`
	Attempts    int        `json:"attempts"` // finished failed tries
	NextAttempt time.Time  `json:"next_attempt"`
	FirstSeen   time.Time  `json:"first_seen"`
	LastSeen    time.Time  `json:"last_seen"`
	LastError   string     `json:"last_error,omitempty"`
	DoneAt      time.Time  `json:"done_at"` // zero until sent or dead
}

// AlertQuery selects alert deliveries for listing. The zero value returns
// the newest DefaultPageSize deliveries.
type AlertQuery struct {
	Channel string       // "" for all channels
	States  []AlertState // empty for all states
	Limit   int          // <= 0: DefaultPageSize; cut to MaxPageSize
}

// AnalysisBin is what one replica's data plane served for one build of a
// service during one second of judged (randomised) traffic. Every replica
// publishes its bins so that the release controller, which runs on one
// replica, judges the traffic of all of them (DESIGN: "each replica
// publishes its windows so the leader judges the sum").
type AnalysisBin struct {
	Replica string `json:"replica"`
	Service string `json:"service"`
	Build   string `json:"build"`
	// End is the second the bin ends at, in Unix seconds; the bin covers
	// the second before it.
	End      int64  `json:"end"`
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
	// Latency is an encoded latency sketch (metrics.Sketch); opaque here.
	Latency []byte `json:"latency,omitempty"`
}

// AnalysisMark says that a replica has published every bin of a service
// that ends at or before Through: the leader waits for the marks of live
// replicas before it judges a second, so it never judges half of a second.
type AnalysisMark struct {
	Replica string `json:"replica"`
	Service string `json:"service"`
	Through int64  `json:"through"` // Unix seconds
	// At is when the replica wrote the mark, on its clock: a replica whose
	// mark is old is gone and no longer waited for.
	At time.Time `json:"at"`
	// Users and Harmed are the replica's HyperLogLog sketches (encoded) of
	// the canary's distinct users and of those who saw an error, for the
	// leader to merge. Nil when publishing leaves the stored ones as they
	// are.
	Users  []byte `json:"users,omitempty"`
	Harmed []byte `json:"harmed,omitempty"`
}

// AnalysisEvents is a batch of users' first events in a release (a failed
// request, a request slower than a latency threshold) that one replica saw
// first: the leader de-duplicates them across replicas, and a new leader
// rebuilds its set of users from them after a failover.
type AnalysisEvents struct {
	ID      int64  `json:"id"` // set by the store; grows in insertion order
	Release string `json:"release"`
	Replica string `json:"replica"`
	// Events is the encoded batch (judge.EncodeEvents); opaque here.
	Events    []byte    `json:"events"`
	CreatedAt time.Time `json:"created_at"` // set by the store
}
