// Package alert holds what every notification provider shares: the Message
// they render, the Error they return, and the one HTTP helper they post with.
// It is a leaf so that the provider packages (slack, telegram, email,
// webhook) and package notify, which builds them, can all import it without
// a cycle; package notify re-exports Message as notify.Message.
package alert

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/canaryd/canaryd/internal/event"
)

// Build names one build of a service in a message. The zero value means
// "not known" and is left out of rendered text.
type Build struct {
	ID      string `json:"id,omitempty"`
	Version string `json:"version,omitempty"`
}

// String renders "42 (1.2.3)", "42" or "" when nothing is known.
func (b Build) String() string {
	switch {
	case b.ID == "" && b.Version == "":
		return ""
	case b.Version == "":
		return b.ID
	case b.ID == "":
		return b.Version
	}
	return b.ID + " (" + b.Version + ")"
}

// Message is one alert as providers render it: the facts of an event plus
// how many identical events it stands for. It is plain data, safe to copy,
// and is stored as JSON in the outbox, so fields are only ever added.
type Message struct {
	// ID identifies this alert delivery; it is the same on every retry of
	// it, so a receiver can drop the duplicates that at-least-once delivery
	// allows. The dispatcher sets it.
	ID       string         `json:"id,omitempty"`
	EventID  int64          `json:"event_id,omitempty"`
	Time     time.Time      `json:"time"`
	Service  string         `json:"service"`
	Type     event.Type     `json:"type"`
	Severity event.Severity `json:"severity"`
	// Title is the one-line summary, without the repeat count (see Headline).
	Title string `json:"title"`
	Actor string `json:"actor,omitempty"`
	// Build is the build the event is about.
	Build  Build `json:"build,omitzero"`
	Stable Build `json:"stable,omitzero"`
	Canary Build `json:"canary,omitzero"`
	// Traffic is the canary share after the event, e.g. "30%".
	Traffic string `json:"traffic,omitempty"`
	// Verdict is the judge's outcome when the event carries one.
	Verdict string `json:"verdict,omitempty"`
	// Reason is the event's reason in words and numbers.
	Reason string `json:"reason,omitempty"`
	// Reasons are the verdict's per-metric reasons, one fact each.
	Reasons   []string `json:"reasons,omitempty"`
	Changelog string   `json:"changelog,omitempty"`
	// URL links to the service in the canaryd UI; empty when none is known.
	URL string `json:"url,omitempty"`
	// Count is how many identical events this message stands for (≥ 1);
	// FirstSeen and LastSeen bound them. The dispatcher fills these in.
	Count     int       `json:"count,omitempty"`
	FirstSeen time.Time `json:"first_seen,omitzero"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
}

// Headline is the Title with the repeat count appended when Count > 1, the
// text a provider uses as subject line or plain-text fallback.
func (m Message) Headline() string {
	t := m.Title
	if t == "" {
		t = string(m.Type)
		if m.Service != "" {
			t = m.Service + ": " + t
		}
	}
	if m.Count > 1 {
		t += " (×" + strconv.Itoa(m.Count) + ")"
	}
	return t
}

// Fact is one labelled line of a message body.
type Fact struct {
	Label string
	Value string
}

// Facts lists the message's labelled facts in display order, leaving out
// the empty ones. Reasons, Changelog and URL are not included: providers
// render them as their own blocks.
func (m Message) Facts() []Fact {
	var fs []Fact
	add := func(l, v string) {
		if v != "" {
			fs = append(fs, Fact{l, v})
		}
	}
	add("Service", m.Service)
	add("Event", string(m.Type))
	add("Severity", string(m.Severity))
	add("Build", m.Build.String())
	add("Stable", m.Stable.String())
	add("Canary", m.Canary.String())
	add("Traffic", m.Traffic)
	add("Verdict", m.Verdict)
	add("Reason", m.Reason)
	add("By", m.Actor)
	if m.Count > 1 {
		v := strconv.Itoa(m.Count) + " times"
		if !m.FirstSeen.IsZero() && !m.LastSeen.IsZero() {
			v += fmt.Sprintf(" between %s and %s", m.FirstSeen.UTC().Format(time.TimeOnly), m.LastSeen.UTC().Format("15:04:05 MST"))
		}
		add("Repeated", v)
	}
	if !m.Time.IsZero() {
		add("Time", m.Time.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	return fs
}

// PlainText renders the whole message as plain text: headline, facts,
// reasons, changelog and link. Providers use it as a fallback body.
func (m Message) PlainText() string {
	var b strings.Builder
	b.WriteString(m.Headline())
	b.WriteString("\n\n")
	for _, f := range m.Facts() {
		b.WriteString(f.Label + ": " + f.Value + "\n")
	}
	if len(m.Reasons) > 0 {
		b.WriteString("\nReasons:\n")
		for _, r := range m.Reasons {
			b.WriteString("- " + r + "\n")
		}
	}
	if m.Changelog != "" {
		b.WriteString("\nChangelog:\n" + m.Changelog + "\n")
	}
	if m.URL != "" {
		b.WriteString("\n" + m.URL + "\n")
	}
	return b.String()
}

// Truncate cuts s to at most n runes, marking the cut with "…", so a long
// changelog cannot push a message over a provider's size limit.
func Truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
