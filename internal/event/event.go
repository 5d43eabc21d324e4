// Package event defines the append-only record of every change canaryd makes.
// The control plane writes events, the store keeps them, the UI shows them and
// the notifiers turn them into alerts; this package only holds the shape they
// share, so none of those depends on another.
package event

import (
	"encoding/json"
	"time"
)

// Type names what happened. New types may be added; consumers must treat an
// unknown type as informational.
type Type string

// The event types the control plane and the release controller emit.
const (
	BuildRegistered   Type = "build.registered"
	BuildDeregistered Type = "build.deregistered"
	BuildDeleted      Type = "build.deleted"
	CanaryStarted     Type = "canary.started"
	TrafficChanged    Type = "traffic.changed"
	Promoted          Type = "release.promoted"
	RolledBack        Type = "release.rolled_back"
	Paused            Type = "release.paused"
	Resumed           Type = "release.resumed"
	Aborted           Type = "release.aborted"
	StableSet         Type = "build.stable_set"
	CohortRefreshed   Type = "cohort.refreshed"
	AlertThreshold    Type = "alert.threshold"
	Test              Type = "alert.test"
)

// Severity orders events for alert routing.
type Severity string

// Severities from least to most urgent.
const (
	Info     Severity = "info"
	Warning  Severity = "warning"
	Critical Severity = "critical"
)

// Event is one recorded change. ID and Time are set by the store when the
// event is appended; everything else by whoever caused the change.
type Event struct {
	ID       int64           `json:"id"`
	Time     time.Time       `json:"time"`
	Service  string          `json:"service"`
	Type     Type            `json:"type"`
	Severity Severity        `json:"severity"`
	Actor    string          `json:"actor"`            // token name, "controller", "config"
	Build    string          `json:"build,omitempty"`  // the build the change is about
	Reason   string          `json:"reason,omitempty"` // why, in words and numbers
	Before   json.RawMessage `json:"before,omitempty"` // state before, JSON
	After    json.RawMessage `json:"after,omitempty"`  // state after, JSON
	// Details carries extra facts for messages: versions, traffic, verdict
	// reasons, changelog, a UI link. Keys are free-form.
	Details map[string]string `json:"details,omitempty"`
}
