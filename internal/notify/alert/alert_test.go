package alert_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/notify/alert"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello", 4, "hel…"},
		{"ünïcödé", 3, "ün…"},
		{"x", 0, ""},
	}
	for _, tt := range tests {
		if got := alert.Truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{"1.5", 1500 * time.Millisecond},
		{"-3", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := alert.ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestRedactAndScrub(t *testing.T) {
	if got := alert.RedactURL("https://hooks.slack.com/services/T/B/secret?x=1"); got != "https://hooks.slack.com/****" {
		t.Errorf("RedactURL = %q", got)
	}
	if got := alert.RedactURL("not a url"); got != "****" {
		t.Errorf("RedactURL(junk) = %q", got)
	}
	tok := "123:AA H/x"
	s := "post https://api/bot" + tok + " and bot123:AA%20H%2Fx and 123%3AAA+H%2Fx"
	got := alert.Scrub(s, tok, "ab")
	if strings.Contains(got, "AA") {
		t.Errorf("Scrub left the secret: %q", got)
	}
}

func TestHeadlineAndFacts(t *testing.T) {
	m := alert.Message{Service: "api", Type: "x.y", Count: 3,
		FirstSeen: time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC), LastSeen: time.Date(2026, 1, 1, 10, 5, 0, 0, time.UTC)}
	if got := m.Headline(); got != "api: x.y (×3)" {
		t.Errorf("Headline = %q", got)
	}
	text := m.PlainText()
	if !strings.Contains(text, "Repeated: 3 times between 10:00:00 and 10:05:00 UTC") {
		t.Errorf("PlainText lacks the repeat line:\n%s", text)
	}
}
