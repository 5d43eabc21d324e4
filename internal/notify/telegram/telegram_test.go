package telegram_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/notify/alert"
	"github.com/canaryd/canaryd/internal/notify/notifytest"
	"github.com/canaryd/canaryd/internal/notify/telegram"
)

const token = "123456789:AAHfake-TOKEN_value_for_tests_0123"

func newNotifier(t *testing.T, base string, mod func(*telegram.Config)) *telegram.Notifier {
	t.Helper()
	cfg := telegram.Config{Token: token, ChatID: "-100200300", BaseURL: base, Client: &http.Client{}}
	if mod != nil {
		mod(&cfg)
	}
	n, err := telegram.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"1 < 2 > 0", "1 &lt; 2 &gt; 0"},
		{"a & b", "a &amp; b"},
		{"&lt;", "&amp;lt;"},
		{`<a href="x">`, "&lt;a href=&quot;x&quot;&gt;"},
	}
	for _, tt := range tests {
		if got := telegram.Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSendHTMLParsesAndShowsTextVerbatim(t *testing.T) {
	peer := notifytest.NewTelegram(t, token)
	n := newNotifier(t, peer.BaseURL(), nil)
	m := notifytest.Message()
	if err := n.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := peer.Messages()
	if len(msgs) != 1 {
		t.Fatalf("peer got %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if got.ParseMode != "HTML" || got.ChatID != "-100200300" {
		t.Errorf("parse_mode %q chat %q", got.ParseMode, got.ChatID)
	}
	for _, want := range []string{
		notifytest.Tricky, // what the user sees is the raw text
		"latency_p99: canary 1450ms > ceiling 1000ms",
		"fix login <form> & session",
		"Traffic: 10%",
		"Open in canaryd",
	} {
		if !strings.Contains(got.Plain, want) {
			t.Errorf("rendered text lacks %q:\n%s", want, got.Plain)
		}
	}
	if !strings.Contains(got.Text, `<a href="https://canaryd.example.com/services/api?tab=releases&amp;build=42">`) {
		t.Errorf("link not escaped as attribute:\n%s", got.Text)
	}
}

func TestThreadPerService(t *testing.T) {
	peer := notifytest.NewTelegram(t, token)
	n := newNotifier(t, peer.BaseURL(), func(c *telegram.Config) {
		c.Thread = 3
		c.Threads = map[string]int64{"api": 12, "account": 15}
	})
	for _, svc := range []string{"api", "account", "billing"} {
		m := notifytest.Message()
		m.Service = svc
		if err := n.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	var got []int64
	for _, m := range peer.Messages() {
		got = append(got, m.ThreadID)
	}
	if want := []int64{12, 15, 3}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("threads = %v, want %v", got, want)
	}
}

func TestLongMessageFitsLimit(t *testing.T) {
	peer := notifytest.NewTelegram(t, token)
	n := newNotifier(t, peer.BaseURL(), nil)
	m := notifytest.Message()
	m.Changelog = strings.Repeat("<&> change\n", 3000)
	for i := range 100 {
		m.Reasons = append(m.Reasons, strings.Repeat("r", 150)+string(rune('a'+i%26)))
	}
	if err := n.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

func TestSendErrors(t *testing.T) {
	peer := notifytest.NewTelegram(t, token)
	tests := []struct {
		name      string
		setup     func()
		token     string
		status    int
		permanent bool
		retry     time.Duration
	}{
		{name: "429 retry_after", setup: func() { peer.RateLimit(1, 5) }, status: 429, retry: 5 * time.Second},
		{name: "server error", setup: func() { peer.Fail(1, 502, "Bad Gateway") }, status: 502},
		{name: "chat not found", setup: func() { peer.Fail(1, 400, "Bad Request: chat not found") }, status: 400, permanent: true},
		{name: "wrong token", token: "987654321:AAHwrong-token-value-xxxxxxxx", status: 401, permanent: true},
		{name: "down", setup: peer.Down, status: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			defer peer.Up()
			tok := token
			if tt.token != "" {
				tok = tt.token
			}
			n := newNotifier(t, peer.BaseURL(), func(c *telegram.Config) { c.Token = tok })
			err := n.Send(context.Background(), notifytest.Message())
			e := alert.AsError(err)
			if e == nil {
				t.Fatalf("Send = %v, want *alert.Error", err)
			}
			if e.Status != tt.status || e.Permanent != tt.permanent || e.RetryAfter != tt.retry {
				t.Errorf("got status %d permanent %v retry %v, want %d %v %v (%v)", e.Status, e.Permanent, e.RetryAfter, tt.status, tt.permanent, tt.retry, err)
			}
			if strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), "AAH") {
				t.Errorf("error text leaks the token: %v", err)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	_, err := telegram.New(telegram.Config{BaseURL: "::", Threads: map[string]int64{"api": -1}})
	if err == nil {
		t.Fatal("New accepted an empty config")
	}
	for _, want := range []string{"token is empty", "chat_id is empty", `base_url "::"`, `threads["api"] = -1`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
