package email_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/notify/alert"
	"github.com/canaryd/canaryd/internal/notify/email"
	"github.com/canaryd/canaryd/internal/notify/notifytest"
)

const (
	user = "alerts"
	pass = "pw-S3cret-smtp-value"
)

func newNotifier(t *testing.T, srv *notifytest.SMTP, mod func(*email.Config)) *email.Notifier {
	t.Helper()
	cfg := email.Config{
		Addr: srv.Addr(), Username: user, Password: pass,
		From:      "canaryd <canaryd@example.com>",
		To:        []string{"ops@example.com", "Dev Team <dev@example.org>"},
		TLSConfig: &tls.Config{RootCAs: srv.RootCAs()},
		Now:       func() time.Time { return time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC) },
	}
	if mod != nil {
		mod(&cfg)
	}
	n, err := email.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSendOverSTARTTLSWithAuth(t *testing.T) {
	srv := notifytest.NewSMTP(t, user, pass)
	n := newNotifier(t, srv, nil)
	m := notifytest.Message()
	m.Title = "api: canary 42 → rolled back"
	if err := n.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if !got.TLS || got.User != user {
		t.Errorf("session TLS %v user %q, want STARTTLS and AUTH as %q", got.TLS, got.User, user)
	}
	if got.From != "canaryd@example.com" || strings.Join(got.To, ",") != "ops@example.com,dev@example.org" {
		t.Errorf("envelope from %q to %v", got.From, got.To)
	}
	if want := "[canaryd] api: canary 42 → rolled back"; got.Subject != want {
		t.Errorf("Subject = %q, want %q", got.Subject, want)
	}
	if id := got.Header.Get("Message-Id"); id != "<canaryd.17@example.com>" {
		t.Errorf("Message-ID = %q", id)
	}
	if d, err := got.Header.Date(); err != nil || !d.Equal(time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC)) {
		t.Errorf("Date = %v, %v", d, err)
	}
	if to := got.Header.Get("To"); !strings.Contains(to, "ops@example.com") || !strings.Contains(to, "dev@example.org") {
		t.Errorf("To header %q", to)
	}
	for _, want := range []string{notifytest.Tricky, "latency_p99: canary 1450ms > ceiling 1000ms", "fix login <form> & session", m.URL} {
		if !strings.Contains(got.Text, want) {
			t.Errorf("text part lacks %q:\n%s", want, got.Text)
		}
	}
	for _, want := range []string{"&lt;b&gt;bold?&lt;/b&gt; &amp; &lt;!channel&gt;", "fix login &lt;form&gt; &amp; session", `href="https://canaryd.example.com/services/api?tab=releases&amp;build=42"`} {
		if !strings.Contains(got.HTML, want) {
			t.Errorf("html part lacks %q:\n%s", want, got.HTML)
		}
	}
	if strings.Contains(got.HTML, "<b>bold?") {
		t.Error("html part carries unescaped markup from the message")
	}
}

func TestSubjectCannotInjectHeaders(t *testing.T) {
	srv := notifytest.NewSMTP(t, user, pass)
	n := newNotifier(t, srv, nil)
	m := notifytest.Message()
	m.Title = "x\r\nBcc: victim@example.com"
	if err := n.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := srv.Messages()[0]
	if got.Header.Get("Bcc") != "" || len(got.To) != 2 {
		t.Errorf("header injection: Bcc %q, rcpts %v", got.Header.Get("Bcc"), got.To)
	}
}

func TestSendErrors(t *testing.T) {
	srv := notifytest.NewSMTP(t, user, pass)
	tests := []struct {
		name      string
		setup     func()
		mod       func(*email.Config)
		status    int
		permanent bool
	}{
		{name: "temporary reject", setup: func() { srv.Reject(1, 451) }, status: 451},
		{name: "permanent reject", setup: func() { srv.Reject(1, 554) }, status: 554, permanent: true},
		{name: "wrong password", mod: func(c *email.Config) { c.Password = "wrong-password-value" }, status: 535, permanent: true},
		{name: "untrusted certificate", mod: func(c *email.Config) { c.TLSConfig = nil }},
		{name: "down", setup: srv.Down},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			defer srv.Up()
			err := newNotifier(t, srv, tt.mod).Send(context.Background(), notifytest.Message())
			e := alert.AsError(err)
			if e == nil {
				t.Fatalf("Send = %v, want *alert.Error", err)
			}
			if e.Status != tt.status || e.Permanent != tt.permanent {
				t.Errorf("got status %d permanent %v, want %d %v (%v)", e.Status, e.Permanent, tt.status, tt.permanent, err)
			}
			if strings.Contains(err.Error(), pass) || strings.Contains(err.Error(), "wrong-password-value") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("server accepted %d messages in failure cases", n)
	}
}

func TestSendHonoursContext(t *testing.T) {
	srv := notifytest.NewSMTP(t, user, pass)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := newNotifier(t, srv, nil).Send(ctx, notifytest.Message())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Send = %v, want context.Canceled", err)
	}
}

func TestNewValidates(t *testing.T) {
	_, err := email.New(email.Config{Addr: "nohost", From: "not an address", To: []string{"ok@example.com", "bad@"}, TLS: "maybe", Password: "x"})
	if err == nil {
		t.Fatal("New accepted a bad config")
	}
	for _, want := range []string{`smtp "nohost"`, `from "not an address"`, `to[1] "bad@"`, `tls "maybe"`, "password set without username"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
