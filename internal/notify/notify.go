// Package notify turns events into alerts and delivers them: routing of
// events to channels, a switch factory from channel config to a provider
// (slack, telegram, email, webhook, discord), and a Dispatcher that delivers through
// an Outbox with de-duplication, throttling, per-channel rate limits,
// exponential backoff and dead-lettering. Secrets in channel config are
// masked for display (Secret, Mask) and encrypted at rest (Sealer).
//
// Providers never retry; the Dispatcher owns retries so that every retry is
// recorded in the Outbox and survives a restart when the Outbox is durable.
package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/notify/alert"
)

// A Notifier delivers one message to one channel. It must honour ctx's
// deadline and must not retry: the Dispatcher owns retries and dedupe.
// Errors should be *alert.Error so the Dispatcher can tell permanent
// failures and Retry-After hints apart; any other error is retried.
type Notifier interface {
	Send(ctx context.Context, m Message) error
}

// Message is what a Notifier renders; see alert.Message. The alias lets the
// provider packages depend on the leaf package alert without a cycle.
type Message = alert.Message

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, m Message) error

// Send calls f.
func (f NotifierFunc) Send(ctx context.Context, m Message) error { return f(ctx, m) }

// Nop is a Notifier that accepts and drops every message; for channels that
// are configured but switched off.
type Nop struct{}

// Send returns nil.
func (Nop) Send(context.Context, Message) error { return nil }

// Keys of event.Event.Details that NewMessage reads. Producers of events
// (control, release) set the ones they know; all are optional.
const (
	DetailVersion       = "version"          // version of Event.Build
	DetailStableBuild   = "stable_build"     // id of the stable build
	DetailStableVersion = "stable_version"   // its version
	DetailCanaryBuild   = "canary_build"     // id of the canary build
	DetailCanaryVersion = "canary_version"   // its version
	DetailTraffic       = "traffic"          // canary share after the change: "30" or "30%"
	DetailPrevTraffic   = "previous_traffic" // canary share before the change
	DetailVerdict       = "verdict"          // pass | fail | inconclusive
	DetailReasons       = "reasons"          // verdict reasons, one per line
	DetailReasonPrefix  = "reason."          // "reason.<metric>": one reason per metric
	DetailChangelog     = "changelog"        // changelog registered with the build
	DetailURL           = "url"              // UI link; overrides the one built from uiBase
	DetailDedupeKey     = "dedupe_key"       // overrides DedupeKey
)

// NewMessage builds the Message for ev. uiBase is the canaryd UI's external
// URL ("https://canaryd.example.com"); when set and the event has no
// DetailURL, the message links to the service's page there.
func NewMessage(ev event.Event, uiBase string) Message {
	d := ev.Details
	m := Message{
		EventID:  ev.ID,
		Time:     ev.Time,
		Service:  ev.Service,
		Type:     ev.Type,
		Severity: ev.Severity,
		Actor:    ev.Actor,
		Build:    alert.Build{ID: ev.Build, Version: d[DetailVersion]},
		Stable:   alert.Build{ID: d[DetailStableBuild], Version: d[DetailStableVersion]},
		Canary:   alert.Build{ID: d[DetailCanaryBuild], Version: d[DetailCanaryVersion]},
		Traffic:  percent(d[DetailTraffic]),
		Verdict:  d[DetailVerdict],
		Reason:   ev.Reason,
		URL:      d[DetailURL],
		Count:    1,
	}
	if m.Severity == "" {
		m.Severity = event.Info
	}
	for _, r := range strings.Split(d[DetailReasons], "\n") {
		if r = strings.TrimSpace(r); r != "" {
			m.Reasons = append(m.Reasons, r)
		}
	}
	var metrics []string
	for k := range d {
		if strings.HasPrefix(k, DetailReasonPrefix) {
			metrics = append(metrics, k)
		}
	}
	slices.Sort(metrics)
	for _, k := range metrics {
		m.Reasons = append(m.Reasons, strings.TrimPrefix(k, DetailReasonPrefix)+": "+d[k])
	}
	m.Changelog = strings.TrimSpace(d[DetailChangelog])
	if m.URL == "" && uiBase != "" && ev.Service != "" {
		m.URL = strings.TrimRight(uiBase, "/") + "/services/" + url.PathEscape(ev.Service)
	}
	m.Title = title(ev, m, percent(d[DetailPrevTraffic]))
	return m
}

// percent adds a "%" to a bare number.
func percent(s string) string {
	s = strings.TrimSpace(s)
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return s + "%"
	}
	return s
}

func title(ev event.Event, m Message, prev string) string {
	b := m.Build.String()
	if b == "" {
		b = m.Canary.String()
	}
	svc := ev.Service
	if svc == "" {
		svc = "canaryd"
	}
	var t string
	switch ev.Type {
	case event.CanaryStarted:
		t = "canary " + b + " started"
		if m.Traffic != "" {
			t += " at " + m.Traffic
		}
	case event.TrafficChanged:
		t = "canary " + b + " traffic "
		if prev != "" {
			t += prev + " → "
		}
		t += m.Traffic
	case event.Promoted:
		t = b + " promoted to stable"
	case event.RolledBack:
		t = "canary " + b + " rolled back"
	case event.Aborted:
		t = "release of " + b + " aborted"
	case event.Paused:
		t = "release of " + b + " paused"
	case event.Resumed:
		t = "release of " + b + " resumed"
	case event.AlertThreshold:
		t = "threshold crossed on " + b
	case event.Test:
		return "canaryd test alert"
	default:
		t = string(ev.Type)
		if b != "" {
			t += " " + b
		}
	}
	return svc + ": " + strings.Join(strings.Fields(t), " ")
}

// DedupeKey identifies events that are "the same alert": same service,
// type, severity, build, reason and details (time, id and actor are left
// out). The Dispatcher merges deliveries with equal keys on one channel
// within the throttle window into one alert with a count. Details'
// DetailDedupeKey, when set, is used instead.
func DedupeKey(ev event.Event) string {
	if k := ev.Details[DetailDedupeKey]; k != "" {
		return k
	}
	h := sha256.New()
	w := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	w(ev.Service)
	w(string(ev.Type))
	w(string(ev.Severity))
	w(ev.Build)
	w(ev.Reason)
	keys := make([]string, 0, len(ev.Details))
	for k := range ev.Details {
		if k != DetailURL {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		w(k)
		w(ev.Details[k])
	}
	return ev.Service + "/" + string(ev.Type) + "/" + hex.EncodeToString(h.Sum(nil)[:12])
}
