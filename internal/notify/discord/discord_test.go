package discord_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/notify/alert"
	"github.com/canaryd/canaryd/internal/notify/discord"
	"github.com/canaryd/canaryd/internal/notify/notifytest"
)

func TestSendRendersEmbedWithoutMentions(t *testing.T) {
	peer := notifytest.NewWebhook(t)
	n, err := discord.New(peer.URL()+"/api/webhooks/1/tokenvalue", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := notifytest.Message()
	m.Reason = "@everyone **look** " + m.Reason
	if err := n.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	var p discord.Payload
	if err := json.Unmarshal(peer.Requests()[0].Body, &p); err != nil {
		t.Fatal(err)
	}
	if p.AllowedMentions.Parse == nil || len(p.AllowedMentions.Parse) != 0 {
		t.Errorf("allowed_mentions.parse = %v, want []", p.AllowedMentions.Parse)
	}
	if len(p.Embeds) != 1 || p.Embeds[0].URL != m.URL || len(p.Embeds[0].Fields) == 0 {
		t.Fatalf("embeds = %+v", p.Embeds)
	}
	var reason string
	for _, f := range p.Embeds[0].Fields {
		if f.Name == "Reason" {
			reason = f.Value
		}
	}
	if !strings.HasPrefix(reason, `@everyone \*\*look\*\* `) {
		t.Errorf("reason field %q: markdown not escaped", reason)
	}
	if !strings.Contains(p.Embeds[0].Description, "latency\\_p99") {
		t.Errorf("description %q", p.Embeds[0].Description)
	}
}

func TestSendErrors(t *testing.T) {
	peer := notifytest.NewWebhook(t)
	n, _ := discord.New(peer.URL()+"/api/webhooks/1/tokenvalue", nil)
	peer.Fail(1, 429, "3")
	e := alert.AsError(n.Send(context.Background(), notifytest.Message()))
	if e == nil || e.RetryAfter != 3*time.Second {
		t.Fatalf("429: %v", e)
	}
	peer.Fail(1, 404, "")
	e = alert.AsError(n.Send(context.Background(), notifytest.Message()))
	if e == nil || !e.Permanent || strings.Contains(e.Error(), "tokenvalue") {
		t.Fatalf("404: %v", e)
	}
}
