package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/notify/alert"
)

// Kind names a provider.
type Kind string

// The provider kinds New knows.
const (
	KindSlack    Kind = "slack"
	KindTelegram Kind = "telegram"
	KindEmail    Kind = "email"
	KindWebhook  Kind = "webhook"
	KindDiscord  Kind = "discord"
)

// Defaults applied by ChannelConfig.WithDefaults.
const (
	DefaultThrottle      = 10 * time.Minute
	DefaultRatePerMinute = 20
	DefaultBurst         = 5
	DefaultTimeout       = 10 * time.Second
)

// ChannelConfig is one alert channel as written in the config file, sent to
// the API and kept in the store. Only the fields of its Kind are used:
//
//	slack:    url
//	telegram: token, chat_id, thread, threads, base_url
//	email:    smtp, username, password, from, to, tls
//	webhook:  url, secret
//	discord:  url
//
// Secret fields print masked everywhere (String, JSON, YAML, slog); use
// Sealer.MarshalChannel to persist them encrypted.
type ChannelConfig struct {
	// Name identifies the channel in routing, the outbox and the CLI:
	// lower-case letters, digits, '-' and '_'.
	Name string `yaml:"name" json:"name"`
	Kind Kind   `yaml:"kind" json:"kind"`
	// Disabled keeps the channel configured but sends nothing.
	Disabled bool `yaml:"disabled,omitempty" json:"disabled,omitempty"`

	// URL is the Slack or Discord webhook or the generic webhook target.
	URL Secret `yaml:"url,omitempty" json:"url,omitempty"`

	// Token is the Telegram bot token; ChatID the chat; Thread the default
	// forum topic and Threads one topic per service; BaseURL replaces
	// https://api.telegram.org.
	Token   Secret           `yaml:"token,omitempty" json:"token,omitempty"`
	ChatID  string           `yaml:"chat_id,omitempty" json:"chat_id,omitempty"`
	Thread  int64            `yaml:"thread,omitempty" json:"thread,omitempty"`
	Threads map[string]int64 `yaml:"threads,omitempty" json:"threads,omitempty"`
	BaseURL string           `yaml:"base_url,omitempty" json:"base_url,omitempty"`

	// SMTP is the mail server as host:port; TLS one of "starttls"
	// (default), "starttls-required", "tls", "none".
	SMTP     string   `yaml:"smtp,omitempty" json:"smtp,omitempty"`
	Username string   `yaml:"username,omitempty" json:"username,omitempty"`
	Password Secret   `yaml:"password,omitempty" json:"password,omitempty"`
	From     string   `yaml:"from,omitempty" json:"from,omitempty"`
	To       []string `yaml:"to,omitempty" json:"to,omitempty"`
	TLS      string   `yaml:"tls,omitempty" json:"tls,omitempty"`

	// Secret keys the generic webhook's HMAC signature.
	Secret Secret `yaml:"secret,omitempty" json:"secret,omitempty"`

	// Route selects the events this channel receives.
	Route Route `yaml:"route,omitempty" json:"route,omitzero"`
	// Throttle is the shortest gap between two alerts with the same
	// dedupe key on this channel; repeats inside it are counted and sent
	// as one alert when it ends. 0 means DefaultThrottle; negative means
	// no throttle (repeats still merge while one is waiting to be sent).
	Throttle time.Duration `yaml:"throttle,omitempty" json:"throttle,omitempty"`
	// RatePerMinute and Burst shape a token bucket per channel; 0 means
	// the defaults.
	RatePerMinute float64 `yaml:"rate_per_minute,omitempty" json:"rate_per_minute,omitempty"`
	Burst         int     `yaml:"burst,omitempty" json:"burst,omitempty"`
	// Timeout bounds one delivery attempt; 0 means DefaultTimeout.
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// WithDefaults returns c with zero pacing fields set to the defaults.
func (c ChannelConfig) WithDefaults() ChannelConfig {
	if c.Throttle == 0 {
		c.Throttle = DefaultThrottle
	}
	if c.RatePerMinute == 0 {
		c.RatePerMinute = DefaultRatePerMinute
	}
	if c.Burst == 0 {
		c.Burst = DefaultBurst
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Validate reports every problem of c, each naming the field and quoting
// the value (secrets masked).
func (c ChannelConfig) Validate() error {
	var errs []error
	if !nameRE.MatchString(c.Name) {
		errs = append(errs, fmt.Errorf("name %q: want 1-63 of a-z, 0-9, '-', '_', starting with a letter or digit", c.Name))
	}
	if _, err := New(c, FactoryOptions{}); err != nil {
		errs = append(errs, err)
	}
	if err := c.Route.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.RatePerMinute < 0 {
		errs = append(errs, fmt.Errorf("rate_per_minute %v: must not be negative", c.RatePerMinute))
	}
	if c.Burst < 0 {
		errs = append(errs, fmt.Errorf("burst %d: must not be negative", c.Burst))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s: must not be negative", c.Timeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("channel %q: %w", c.Name, err)
	}
	return nil
}

// String is a one-line, secret-free summary for logs and the CLI.
func (c ChannelConfig) String() string {
	var target string
	switch c.Kind {
	case KindSlack, KindWebhook, KindDiscord:
		target = c.URL.String()
	case KindTelegram:
		target = "chat " + c.ChatID
	case KindEmail:
		target = strings.Join(c.To, ", ") + " via " + c.SMTP
	}
	s := c.Name + " (" + string(c.Kind) + ") " + target
	if c.Disabled {
		s += " [disabled]"
	}
	return s
}

// GoString keeps %#v secret-free too.
func (c ChannelConfig) GoString() string { return "notify.ChannelConfig{" + c.String() + "}" }

// secrets lists the secret fields with the names used when sealing them.
func (c *ChannelConfig) secrets() map[string]*Secret {
	return map[string]*Secret{"url": &c.URL, "token": &c.Token, "password": &c.Password, "secret": &c.Secret}
}

// Secret is a credential in config: a webhook URL, a bot token, a password.
// Every way of printing it (fmt verbs, JSON, YAML, slog) shows Mask of it;
// only Reveal returns the value, for the code that must use it.
type Secret string

// Reveal returns the secret in clear. Call it only to hand the value to the
// provider that uses it.
func (s Secret) Reveal() string { return string(s) }

// String returns the masked form.
func (s Secret) String() string { return Mask(string(s)) }

// GoString returns the masked form, quoted.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// MarshalJSON writes the masked form: API answers never carry secrets.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalYAML writes the masked form.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalText writes the masked form (encoding/xml, map keys, some loggers).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText takes the value in clear, as written in the config file or
// sent to the API (JSON and YAML decoding use it).
func (s *Secret) UnmarshalText(b []byte) error { *s = Secret(b); return nil }

// LogValue keeps slog output masked.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Mask renders a secret for display: a URL keeps its scheme and host
// ("https://hooks.slack.com/****"), a long token its last four characters
// ("****Wx3Q"), anything shorter than 16 characters becomes "****". The
// empty string stays empty so "not set" remains visible.
func Mask(s string) string {
	switch {
	case s == "":
		return ""
	case strings.Contains(s, "://"):
		return alert.RedactURL(s)
	case len(s) < 16:
		return "****"
	}
	return "****" + s[len(s)-4:]
}

// Route selects events for a channel. Every non-empty criterion must match;
// the zero Route matches everything.
type Route struct {
	// Services lists service names; empty means all.
	Services []string `yaml:"services,omitempty" json:"services,omitempty"`
	// Types lists event types; an entry ending in ".*" matches a prefix
	// ("release.*"), "*" matches all; empty means all.
	Types []string `yaml:"types,omitempty" json:"types,omitempty"`
	// MinSeverity drops less urgent events; empty means info (everything).
	MinSeverity event.Severity `yaml:"min_severity,omitempty" json:"min_severity,omitempty"`
}

// rank orders severities; unknown ones rank as info, as event.Type's
// contract asks of unknown values.
func rank(s event.Severity) int {
	switch s {
	case event.Warning:
		return 1
	case event.Critical:
		return 2
	}
	return 0
}

// Validate checks MinSeverity and the type patterns.
func (r Route) Validate() error {
	var errs []error
	switch r.MinSeverity {
	case "", event.Info, event.Warning, event.Critical:
	default:
		errs = append(errs, fmt.Errorf("route.min_severity %q: want info, warning or critical", r.MinSeverity))
	}
	for i, t := range r.Types {
		if t == "" || (strings.Contains(t, "*") && t != "*" && !(strings.HasSuffix(t, ".*") && strings.Count(t, "*") == 1)) {
			errs = append(errs, fmt.Errorf("route.types[%d] %q: want an event type, a prefix ending in \".*\" or \"*\"", i, t))
		}
	}
	for i, s := range r.Services {
		if s == "" {
			errs = append(errs, fmt.Errorf("route.services[%d]: empty", i))
		}
	}
	return errors.Join(errs...)
}

// Match reports whether ev goes to the channel. The test event always
// matches, so `canaryctl alerts test` reaches every channel.
func (r Route) Match(ev event.Event) bool {
	if ev.Type == event.Test {
		return true
	}
	if rank(ev.Severity) < rank(r.MinSeverity) {
		return false
	}
	if len(r.Services) > 0 && !contains(r.Services, ev.Service) {
		return false
	}
	if len(r.Types) == 0 {
		return true
	}
	for _, t := range r.Types {
		if t == "*" || t == string(ev.Type) {
			return true
		}
		if p, ok := strings.CutSuffix(t, "*"); ok && strings.HasPrefix(string(ev.Type), p) {
			return true
		}
	}
	return false
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
