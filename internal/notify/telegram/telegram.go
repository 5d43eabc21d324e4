// Package telegram delivers alerts through the Telegram Bot API method
// sendMessage, in HTML parse mode, optionally into a forum topic per
// service (message_thread_id).
//
// The Bot API contract: POST {base}/bot{token}/sendMessage with a JSON body;
// the answer is JSON {"ok":true,"result":{...}} or {"ok":false,
// "error_code":N,"description":"...","parameters":{"retry_after":S}}, where
// 429 asks the caller to wait retry_after seconds.
package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/notify/alert"
)

// DefaultBaseURL is the public Bot API endpoint.
const DefaultBaseURL = "https://api.telegram.org"

// maxText is Telegram's limit on a message's text after entity parsing.
const maxText = 4096

// Config configures one chat.
type Config struct {
	// Token is the bot token ("123456:ABC-DEF..."), a secret.
	Token string
	// ChatID is the target chat: a numeric id ("-1001234567890") or
	// "@channelname".
	ChatID string
	// Thread is the forum topic (message_thread_id) for services that have
	// no entry in Threads; 0 means the chat's general topic.
	Thread int64
	// Threads maps a service name to its forum topic.
	Threads map[string]int64
	// BaseURL replaces DefaultBaseURL (tests, a local Bot API server).
	BaseURL string
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
}

// Notifier sends to one chat. Safe for concurrent use; it never retries.
type Notifier struct {
	cfg      Config
	endpoint string
	now      func() time.Time
}

// New checks cfg and returns a Notifier.
func New(cfg Config) (*Notifier, error) {
	var errs []error
	if cfg.Token == "" {
		errs = append(errs, errors.New("telegram: token is empty"))
	}
	if cfg.ChatID == "" {
		errs = append(errs, errors.New("telegram: chat_id is empty"))
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if u, err := url.Parse(cfg.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("telegram: base_url %q: want an absolute http(s) URL", cfg.BaseURL))
	}
	for svc, th := range cfg.Threads {
		if th < 0 {
			errs = append(errs, fmt.Errorf("telegram: threads[%q] = %d: must not be negative", svc, th))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Notifier{
		cfg:      cfg,
		endpoint: strings.TrimRight(cfg.BaseURL, "/") + "/bot" + cfg.Token + "/sendMessage",
		now:      time.Now,
	}, nil
}

// Request is the sendMessage body. Exported so tests and docs show exactly
// what the Bot API receives.
type Request struct {
	ChatID             string              `json:"chat_id"`
	MessageThreadID    int64               `json:"message_thread_id,omitempty"`
	Text               string              `json:"text"`
	ParseMode          string              `json:"parse_mode"`
	LinkPreviewOptions *LinkPreviewOptions `json:"link_preview_options,omitempty"`
}

// LinkPreviewOptions turns off the link preview of the UI link.
type LinkPreviewOptions struct {
	IsDisabled bool `json:"is_disabled"`
}

// Response is the Bot API answer envelope.
type Response struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result,omitempty"`
	ErrorCode   int             `json:"error_code,omitempty"`
	Description string          `json:"description,omitempty"`
	Parameters  *struct {
		RetryAfter      int   `json:"retry_after,omitempty"`
		MigrateToChatID int64 `json:"migrate_to_chat_id,omitempty"`
	} `json:"parameters,omitempty"`
}

// Thread returns the forum topic a message about service goes to.
func (n *Notifier) Thread(service string) int64 {
	if th, ok := n.cfg.Threads[service]; ok {
		return th
	}
	return n.cfg.Thread
}

// Send posts m. A 429 comes back as *alert.Error with RetryAfter set from
// parameters.retry_after; 400/401/403/404 are permanent (bad chat, token or
// markup); other failures are worth retrying.
func (n *Notifier) Send(ctx context.Context, m alert.Message) error {
	req := Request{
		ChatID:             n.cfg.ChatID,
		MessageThreadID:    n.Thread(m.Service),
		Text:               Render(m),
		ParseMode:          "HTML",
		LinkPreviewOptions: &LinkPreviewOptions{IsDisabled: true},
	}
	body, err := json.Marshal(req)
	if err != nil {
		return &alert.Error{Provider: "telegram", Permanent: true, Err: err}
	}
	r, err := alert.Post(ctx, n.cfg.Client, "telegram", n.endpoint, "application/json", body, nil, n.cfg.Token)
	if err != nil {
		return err
	}
	var resp Response
	if jerr := json.Unmarshal(r.Body, &resp); jerr != nil {
		if r.Status == http.StatusOK {
			return &alert.Error{Provider: "telegram", Status: r.Status, Detail: "answer is not JSON: " + alert.Snippet(r.Body, n.cfg.Token)}
		}
		return alert.StatusError("telegram", r, n.now(), n.cfg.Token)
	}
	if resp.OK && r.Status == http.StatusOK {
		return nil
	}
	code := resp.ErrorCode
	if code == 0 {
		code = r.Status
	}
	e := &alert.Error{Provider: "telegram", Status: code, Detail: alert.Truncate(alert.Scrub(resp.Description, n.cfg.Token), 200)}
	switch {
	case code == http.StatusTooManyRequests:
		if resp.Parameters != nil && resp.Parameters.RetryAfter > 0 {
			e.RetryAfter = time.Duration(resp.Parameters.RetryAfter) * time.Second
		} else {
			e.RetryAfter = alert.ParseRetryAfter(r.Header.Get("Retry-After"), n.now())
		}
	case code >= 400 && code < 500:
		e.Permanent = true
	}
	return e
}

// Escape makes s safe as text in Telegram's HTML parse mode: only <, > and
// & are special there (and " inside attribute values, which we also
// escape so one function serves both).
func Escape(s string) string { return htmlEscaper.Replace(s) }

var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")

// Render builds the HTML text of m, kept under Telegram's 4096-character
// limit by cutting the changelog first and then the reasons.
func Render(m alert.Message) string {
	changelog, reasons := 1500, 20
	for {
		s := render(m, changelog, reasons)
		if len([]rune(s)) <= maxText || (changelog == 0 && reasons == 0) {
			return s
		}
		changelog, reasons = changelog/2, reasons/2
	}
}

func render(m alert.Message, changelog, reasons int) string {
	var b strings.Builder
	b.WriteString("<b>" + Escape(alert.Truncate(m.Headline(), 256)) + "</b>\n")
	for _, f := range m.Facts() {
		b.WriteString("\n<b>" + Escape(f.Label) + ":</b> " + Escape(alert.Truncate(f.Value, 300)))
	}
	if len(m.Reasons) > 0 && reasons > 0 {
		b.WriteString("\n\n<b>Reasons</b>")
		for i, r := range m.Reasons {
			if i == reasons {
				fmt.Fprintf(&b, "\n… %d more", len(m.Reasons)-i)
				break
			}
			b.WriteString("\n• " + Escape(alert.Truncate(r, 200)))
		}
	}
	if m.Changelog != "" && changelog > 0 {
		b.WriteString("\n\n<b>Changelog</b>\n<pre>" + Escape(alert.Truncate(m.Changelog, changelog)) + "</pre>")
	}
	if m.URL != "" {
		b.WriteString("\n\n<a href=\"" + Escape(m.URL) + "\">Open in canaryd</a>")
	}
	return b.String()
}
