package notify_test

import (
	"slices"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/notify"
)

func failedEvent() event.Event {
	return event.Event{
		ID: 7, Time: time.Date(2026, 11, 29, 15, 0, 0, 0, time.UTC),
		Service: "api", Type: event.RolledBack, Severity: event.Critical, Actor: "controller",
		Build: "42", Reason: "error rate above limit",
		Details: map[string]string{
			notify.DetailVersion:       "1.2.3",
			notify.DetailStableBuild:   "41",
			notify.DetailStableVersion: "1.2.2",
			notify.DetailCanaryBuild:   "42",
			notify.DetailCanaryVersion: "1.2.3",
			notify.DetailTraffic:       "10",
			notify.DetailVerdict:       "fail",
			notify.DetailReasons:       "errors: 14 > 10\n\n",
			"reason.latency_p99":       "1450ms > 1000ms",
			"reason.error_rate":        "4.1% vs 0.3%",
			notify.DetailChangelog:     "  - fix login\n",
		},
	}
}

func TestNewMessage(t *testing.T) {
	m := notify.NewMessage(failedEvent(), "https://canaryd.example.com/")
	checks := []struct{ name, got, want string }{
		{"title", m.Title, "api: canary 42 (1.2.3) rolled back"},
		{"stable", m.Stable.String(), "41 (1.2.2)"},
		{"canary", m.Canary.String(), "42 (1.2.3)"},
		{"traffic", m.Traffic, "10%"},
		{"verdict", m.Verdict, "fail"},
		{"changelog", m.Changelog, "- fix login"},
		{"url", m.URL, "https://canaryd.example.com/services/api"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if want := []string{"errors: 14 > 10", "error_rate: 4.1% vs 0.3%", "latency_p99: 1450ms > 1000ms"}; !slices.Equal(m.Reasons, want) {
		t.Errorf("reasons = %q, want %q", m.Reasons, want)
	}
	if m.Count != 1 {
		t.Errorf("count = %d, want 1", m.Count)
	}
}

func TestTitles(t *testing.T) {
	tests := []struct {
		typ     event.Type
		details map[string]string
		want    string
	}{
		{event.CanaryStarted, map[string]string{"traffic": "5"}, "api: canary 42 started at 5%"},
		{event.TrafficChanged, map[string]string{"traffic": "30", "previous_traffic": "10"}, "api: canary 42 traffic 10% → 30%"},
		{event.Promoted, nil, "api: 42 promoted to stable"},
		{event.RolledBack, nil, "api: canary 42 rolled back"},
		{event.Type("custom.thing"), nil, "api: custom.thing 42"},
	}
	for _, tt := range tests {
		m := notify.NewMessage(event.Event{Service: "api", Type: tt.typ, Build: "42", Details: tt.details}, "")
		if m.Title != tt.want {
			t.Errorf("%s: title %q, want %q", tt.typ, m.Title, tt.want)
		}
	}
}

func TestDedupeKey(t *testing.T) {
	a := failedEvent()
	b := failedEvent()
	b.ID, b.Time, b.Actor = 8, b.Time.Add(time.Minute), "someone"
	if notify.DedupeKey(a) != notify.DedupeKey(b) {
		t.Error("identical events (but id, time, actor) got different keys")
	}
	c := failedEvent()
	c.Details = map[string]string{notify.DetailTraffic: "20"}
	d := failedEvent()
	d.Build = "43"
	for _, other := range []event.Event{c, d} {
		if notify.DedupeKey(a) == notify.DedupeKey(other) {
			t.Error("different events share a key")
		}
	}
	e := failedEvent()
	e.Details[notify.DetailDedupeKey] = "mine"
	if notify.DedupeKey(e) != "mine" {
		t.Error("dedupe_key detail ignored")
	}
}

func TestRouteMatch(t *testing.T) {
	ev := func(svc string, typ event.Type, sev event.Severity) event.Event {
		return event.Event{Service: svc, Type: typ, Severity: sev}
	}
	tests := []struct {
		name  string
		route notify.Route
		ev    event.Event
		want  bool
	}{
		{"zero route matches all", notify.Route{}, ev("api", event.Promoted, event.Info), true},
		{"service listed", notify.Route{Services: []string{"api"}}, ev("api", event.Promoted, ""), true},
		{"service not listed", notify.Route{Services: []string{"api"}}, ev("web", event.Promoted, ""), false},
		{"type exact", notify.Route{Types: []string{"release.promoted"}}, ev("api", event.Promoted, ""), true},
		{"type prefix", notify.Route{Types: []string{"release.*"}}, ev("api", event.RolledBack, ""), true},
		{"type prefix miss", notify.Route{Types: []string{"release.*"}}, ev("api", event.CanaryStarted, ""), false},
		{"star", notify.Route{Types: []string{"*"}}, ev("api", event.CanaryStarted, ""), true},
		{"severity below", notify.Route{MinSeverity: event.Warning}, ev("api", event.Promoted, event.Info), false},
		{"severity equal", notify.Route{MinSeverity: event.Warning}, ev("api", event.Promoted, event.Warning), true},
		{"severity above", notify.Route{MinSeverity: event.Warning}, ev("api", event.Promoted, event.Critical), true},
		{"unknown severity ranks info", notify.Route{MinSeverity: event.Warning}, ev("api", event.Promoted, "loud"), false},
		{"all criteria", notify.Route{Services: []string{"api"}, Types: []string{"release.*"}, MinSeverity: event.Critical}, ev("api", event.RolledBack, event.Critical), true},
		{"test event always", notify.Route{Services: []string{"x"}, MinSeverity: event.Critical}, ev("", event.Test, event.Info), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.route.Match(tt.ev); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}
