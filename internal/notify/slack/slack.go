// Package slack delivers alerts to a Slack incoming webhook as a Block Kit
// message with a plain-text fallback for notifications and old clients.
//
// The webhook contract: POST a JSON body with "text" and/or "blocks"; Slack
// answers 200 with the body "ok", 400 "invalid_payload" (or "no_text") for a
// body it cannot use, 403/404/410 for a revoked or unknown webhook, 429 with
// Retry-After when rate-limited and 5xx on its own trouble.
package slack

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/notify/alert"
)

// Notifier posts to one incoming webhook. Safe for concurrent use; it never
// retries (the dispatcher does).
type Notifier struct {
	url    string
	client *http.Client
	now    func() time.Time
}

// New returns a Notifier for webhookURL. A nil client means
// http.DefaultClient; callers should pass one with a timeout. The URL is a
// secret (it is the credential) and never appears in errors.
func New(webhookURL string, c *http.Client) (*Notifier, error) {
	if err := alert.CheckURL("slack", "url", webhookURL); err != nil {
		return nil, err
	}
	return &Notifier{url: webhookURL, client: c, now: time.Now}, nil
}

// Send posts m and returns nil only when Slack answered 200 "ok". Errors
// are *alert.Error.
func (n *Notifier) Send(ctx context.Context, m alert.Message) error {
	body, err := json.Marshal(Render(m))
	if err != nil {
		return &alert.Error{Provider: "slack", Permanent: true, Err: err}
	}
	r, err := alert.Post(ctx, n.client, "slack", n.url, "application/json", body, nil, n.url)
	if err != nil {
		return err
	}
	if r.Status == http.StatusOK {
		return nil
	}
	return alert.StatusError("slack", r, n.now(), n.url)
}

// Payload is the JSON body sent to the webhook. Exported so tests and the
// docs can show exactly what Slack receives.
type Payload struct {
	Text   string  `json:"text"`
	Blocks []Block `json:"blocks"`
}

// Block is one Block Kit layout block (header, section, context, divider).
type Block struct {
	Type     string `json:"type"`
	Text     *Text  `json:"text,omitempty"`
	Fields   []Text `json:"fields,omitempty"`
	Elements []Text `json:"elements,omitempty"`
}

// Text is a Block Kit text object.
type Text struct {
	Type string `json:"type"` // plain_text | mrkdwn
	Text string `json:"text"`
}

// Block Kit limits we stay inside.
const (
	maxHeader      = 150
	maxSectionText = 3000
	maxFieldText   = 2000
	maxFields      = 10
)

// Escape makes s safe inside mrkdwn: Slack reads &, < and > as control
// characters (links, mentions), so they must be sent as HTML entities.
func Escape(s string) string {
	return mrkdwnEscaper.Replace(s)
}

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Render builds the webhook body for m: Block Kit blocks plus the plain
// "text" fallback that Slack shows in notifications.
func Render(m alert.Message) Payload {
	head := m.Headline()
	p := Payload{Text: Escape(head)}
	p.Blocks = append(p.Blocks, Block{Type: "header", Text: &Text{"plain_text", alert.Truncate(head, maxHeader)}})
	var fields []Text
	flush := func() {
		if len(fields) > 0 {
			p.Blocks = append(p.Blocks, Block{Type: "section", Fields: fields})
			fields = nil
		}
	}
	for _, f := range m.Facts() {
		fields = append(fields, Text{"mrkdwn", alert.Truncate("*"+Escape(f.Label)+"*\n"+Escape(f.Value), maxFieldText)})
		if len(fields) == maxFields {
			flush()
		}
	}
	flush()
	if len(m.Reasons) > 0 {
		var b strings.Builder
		b.WriteString("*Reasons*")
		for _, r := range m.Reasons {
			b.WriteString("\n• " + Escape(r))
		}
		p.Blocks = append(p.Blocks, Block{Type: "section", Text: &Text{"mrkdwn", alert.Truncate(b.String(), maxSectionText)}})
	}
	if m.Changelog != "" {
		cl := alert.Truncate(Escape(m.Changelog), maxSectionText-40)
		p.Blocks = append(p.Blocks, Block{Type: "section", Text: &Text{"mrkdwn", "*Changelog*\n```" + cl + "```"}})
	}
	if m.URL != "" {
		p.Blocks = append(p.Blocks, Block{Type: "context", Elements: []Text{{"mrkdwn", "<" + Escape(m.URL) + "|Open in canaryd>"}}})
	}
	return p
}
