package notifytest

import (
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/notify/alert"
)

// Tricky is text every provider must escape: markup, entities, a fake
// mention, quotes and non-ASCII.
const Tricky = `<b>bold?</b> & <!channel> "quoted" 1 < 2 > 0 — ünïcode`

// Message returns a representative alert: a failed verdict with reasons,
// a changelog and a link, whose free text contains Tricky.
func Message() alert.Message {
	return alert.Message{
		ID:       "17",
		EventID:  42,
		Time:     time.Date(2026, 11, 29, 15, 4, 5, 0, time.UTC),
		Service:  "api",
		Type:     event.RolledBack,
		Severity: event.Critical,
		Title:    "api: canary 42 (1.2.3) rolled back",
		Actor:    "controller",
		Build:    alert.Build{ID: "42", Version: "1.2.3"},
		Stable:   alert.Build{ID: "41", Version: "1.2.2"},
		Canary:   alert.Build{ID: "42", Version: "1.2.3"},
		Traffic:  "10%",
		Verdict:  "fail",
		Reason:   "error rate 4.1% vs 0.3% " + Tricky,
		Reasons: []string{
			"error_rate: canary 4.10% vs stable 0.30% (+3.80 pp > 1 pp)",
			"latency_p99: canary 1450ms > ceiling 1000ms",
		},
		Changelog: "- fix login <form> & session\n- " + strings.Repeat("x", 40),
		URL:       "https://canaryd.example.com/services/api?tab=releases&build=42",
		Count:     1,
	}
}
