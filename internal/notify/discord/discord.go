// Package discord delivers alerts to a Discord channel webhook as one
// embed, with mentions disabled so event text cannot ping @everyone.
//
// The webhook contract: POST JSON with "content" and/or "embeds" to
// https://discord.com/api/webhooks/{id}/{token}; 204 No Content on success
// (200 with the message when ?wait=true), 400 for an invalid body, 401/404
// for a deleted webhook, 429 with Retry-After (and "retry_after" seconds in
// the JSON body) when rate-limited.
package discord

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/notify/alert"
)

// Notifier posts to one Discord webhook. Safe for concurrent use; it never
// retries.
type Notifier struct {
	url    string
	client *http.Client
	now    func() time.Time
}

// New returns a Notifier for webhookURL (a secret: its path holds the
// token). A nil client means http.DefaultClient.
func New(webhookURL string, c *http.Client) (*Notifier, error) {
	if err := alert.CheckURL("discord", "url", webhookURL); err != nil {
		return nil, err
	}
	return &Notifier{url: webhookURL, client: c, now: time.Now}, nil
}

// Payload is the webhook body.
type Payload struct {
	Content         string          `json:"content"`
	Embeds          []Embed         `json:"embeds"`
	AllowedMentions AllowedMentions `json:"allowed_mentions"`
}

// AllowedMentions with an empty Parse list disables every mention.
type AllowedMentions struct {
	Parse []string `json:"parse"`
}

// Embed is one Discord embed.
type Embed struct {
	Title       string  `json:"title"`
	Description string  `json:"description,omitempty"`
	URL         string  `json:"url,omitempty"`
	Color       int     `json:"color"`
	Timestamp   string  `json:"timestamp,omitempty"`
	Fields      []Field `json:"fields,omitempty"`
	Footer      *Footer `json:"footer,omitempty"`
}

// Field is one embed field.
type Field struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

// Footer is the embed footer.
type Footer struct {
	Text string `json:"text"`
}

// Discord limits we stay inside.
const (
	maxTitle       = 256
	maxDescription = 4096
	maxFieldValue  = 1024
	maxFields      = 25
	maxContent     = 2000
)

// Escape backslash-escapes Discord markdown so event text shows verbatim.
func Escape(s string) string { return mdEscaper.Replace(s) }

var mdEscaper = strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "~", `\~`, "`", "\\`", "|", `\|`, ">", `\>`, "#", `\#`, "[", `\[`, "]", `\]`)

func color(s event.Severity) int {
	switch s {
	case event.Critical:
		return 0xd93f0b
	case event.Warning:
		return 0xfbca04
	}
	return 0x2da44e
}

// Render builds the webhook body for m.
func Render(m alert.Message) Payload {
	e := Embed{Title: alert.Truncate(m.Headline(), maxTitle), URL: m.URL, Color: color(m.Severity)}
	if !m.Time.IsZero() {
		e.Timestamp = m.Time.UTC().Format(time.RFC3339)
	}
	for _, f := range m.Facts() {
		if len(e.Fields) == maxFields {
			break
		}
		e.Fields = append(e.Fields, Field{Name: f.Label, Value: alert.Truncate(Escape(f.Value), maxFieldValue), Inline: len(f.Value) < 40})
	}
	var d strings.Builder
	if len(m.Reasons) > 0 {
		d.WriteString("**Reasons**\n")
		for _, r := range m.Reasons {
			d.WriteString("• " + Escape(r) + "\n")
		}
	}
	if m.Changelog != "" {
		d.WriteString("**Changelog**\n```\n" + strings.ReplaceAll(alert.Truncate(m.Changelog, 1500), "```", "ˋˋˋ") + "\n```")
	}
	e.Description = alert.Truncate(d.String(), maxDescription)
	if m.Count > 1 {
		e.Footer = &Footer{Text: "repeated " + strconv.Itoa(m.Count) + " times"}
	}
	return Payload{
		Content:         alert.Truncate(Escape(m.Headline()), maxContent),
		Embeds:          []Embed{e},
		AllowedMentions: AllowedMentions{Parse: []string{}},
	}
}

// Send posts m; 2xx is success. A 429 carries RetryAfter from the
// Retry-After header or the body's retry_after.
func (n *Notifier) Send(ctx context.Context, m alert.Message) error {
	body, err := json.Marshal(Render(m))
	if err != nil {
		return &alert.Error{Provider: "discord", Permanent: true, Err: err}
	}
	r, err := alert.Post(ctx, n.client, "discord", n.url, "application/json", body, nil, n.url)
	if err != nil {
		return err
	}
	if r.Status >= 200 && r.Status < 300 {
		return nil
	}
	e := alert.StatusError("discord", r, n.now(), n.url)
	if r.Status == http.StatusTooManyRequests && e.RetryAfter == 0 {
		var rl struct {
			RetryAfter float64 `json:"retry_after"`
		}
		if json.Unmarshal(r.Body, &rl) == nil && rl.RetryAfter > 0 {
			e.RetryAfter = time.Duration(rl.RetryAfter * float64(time.Second))
		}
	}
	return e
}
