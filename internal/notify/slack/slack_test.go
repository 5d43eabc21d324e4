package slack_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/notify/alert"
	"github.com/canaryd/canaryd/internal/notify/notifytest"
	"github.com/canaryd/canaryd/internal/notify/slack"
)

func TestSendFormatsBlockKit(t *testing.T) {
	peer := notifytest.NewSlack(t)
	n, err := slack.New(peer.WebhookURL(), &http.Client{})
	if err != nil {
		t.Fatal(err)
	}
	m := notifytest.Message()
	m.Count = 3
	if err := n.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := peer.Requests()
	if len(reqs) != 1 {
		t.Fatalf("peer got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if want := "api: canary 42 (1.2.3) rolled back (×3)"; r.Text != want {
		t.Errorf("text = %q, want %q", r.Text, want)
	}
	if r.Blocks[0].Type != "header" {
		t.Errorf("first block %q, want header", r.Blocks[0].Type)
	}
	var mrkdwn []string
	for _, b := range r.Blocks {
		if b.Text != nil && b.Text.Type == "mrkdwn" {
			mrkdwn = append(mrkdwn, b.Text.Text)
		}
		for _, f := range append(b.Fields, b.Elements...) {
			mrkdwn = append(mrkdwn, f.Text)
		}
	}
	all := strings.Join(mrkdwn, "\n")
	for _, want := range []string{
		"*Reason*\nerror rate 4.1% vs 0.3% &lt;b&gt;bold?&lt;/b&gt; &amp; &lt;!channel&gt;",
		"latency_p99: canary 1450ms &gt; ceiling 1000ms",
		"fix login &lt;form&gt; &amp; session",
		"<https://canaryd.example.com/services/api?tab=releases&amp;build=42|Open in canaryd>",
		"*Repeated*\n3 times",
		"*Traffic*\n10%",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("mrkdwn lacks %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "<!channel>") || strings.Contains(all, "<b>") {
		t.Errorf("unescaped markup reached Slack:\n%s", all)
	}
}

func TestSendLongChangelogStaysInsideLimits(t *testing.T) {
	peer := notifytest.NewSlack(t)
	n, _ := slack.New(peer.WebhookURL(), nil)
	m := notifytest.Message()
	m.Changelog = strings.Repeat("<&> line\n", 2000)
	m.Title = strings.Repeat("long title ", 40)
	if err := n.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

func TestSendErrors(t *testing.T) {
	peer := notifytest.NewSlack(t)
	secret := strings.TrimPrefix(peer.WebhookURL(), peer.URL())
	tests := []struct {
		name      string
		setup     func()
		url       string
		status    int
		permanent bool
		retry     time.Duration
	}{
		{name: "server error", setup: func() { peer.Fail(1, 500, "rollup_error") }, status: 500},
		{name: "rate limited", setup: func() { peer.RateLimit(1, 7) }, status: 429, retry: 7 * time.Second},
		{name: "unknown webhook", url: peer.URL() + "/services/T0/B0/wrongsecretvalue", status: 404, permanent: true},
		{name: "archived", setup: func() { peer.Fail(1, 410, "channel_is_archived") }, status: 410, permanent: true},
		{name: "down", setup: peer.Down, status: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			defer peer.Up()
			u := peer.WebhookURL()
			if tt.url != "" {
				u = tt.url
			}
			n, _ := slack.New(u, nil)
			err := n.Send(context.Background(), notifytest.Message())
			e := alert.AsError(err)
			if e == nil {
				t.Fatalf("Send = %v, want *alert.Error", err)
			}
			if e.Status != tt.status || e.Permanent != tt.permanent || e.RetryAfter != tt.retry {
				t.Errorf("got status %d permanent %v retry %v, want %d %v %v (%v)", e.Status, e.Permanent, e.RetryAfter, tt.status, tt.permanent, tt.retry, err)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "wrongsecretvalue") {
				t.Errorf("error text leaks the webhook path: %v", err)
			}
		})
	}
}

func TestSendHonoursContext(t *testing.T) {
	peer := notifytest.NewSlack(t)
	n, _ := slack.New(peer.WebhookURL(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := n.Send(ctx, notifytest.Message())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Send with cancelled ctx = %v, want context.Canceled", err)
	}
	if len(peer.Requests()) != 0 {
		t.Error("peer received a request despite cancelled ctx")
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "hooks.slack.com/services/x", "ftp://x/y"} {
		if _, err := slack.New(u, nil); err == nil {
			t.Errorf("New(%q) = nil error", u)
		}
	}
}
