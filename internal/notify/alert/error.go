package alert

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Error is a failed delivery as a provider reports it. The dispatcher reads
// Permanent and RetryAfter to choose between retrying, waiting as told and
// giving up. Its text never contains a secret: providers scrub URLs, tokens
// and passwords before building it.
type Error struct {
	// Provider names the channel kind, e.g. "slack".
	Provider string
	// Status is the HTTP status (or SMTP reply code) the peer answered
	// with; 0 when no answer arrived (connection refused, timeout).
	Status int
	// Permanent says retrying the same message cannot succeed: a bad token,
	// an unknown chat, a payload the peer rejects.
	Permanent bool
	// RetryAfter is how long the peer asked us to wait (HTTP 429 with
	// Retry-After, Telegram's parameters.retry_after); 0 if it did not say.
	RetryAfter time.Duration
	// Detail is the peer's own words (response body, SMTP text), scrubbed
	// and cut short.
	Detail string
	// Err is the underlying transport error, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Provider)
	if e.Status != 0 {
		b.WriteString(": status " + strconv.Itoa(e.Status))
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if e.RetryAfter > 0 {
		b.WriteString(" (retry after " + e.RetryAfter.String() + ")")
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the transport error, so errors.Is(err,
// context.DeadlineExceeded) works through an Error.
func (e *Error) Unwrap() error { return e.Err }

// AsError returns err's *Error, or nil if it has none.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Scrub replaces every occurrence of each secret in s (also in its URL
// escaped forms) with "****". Secrets shorter than 4 bytes are ignored: they
// would blank out ordinary words and protect nothing.
func Scrub(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) < 4 {
			continue
		}
		for _, form := range []string{sec, url.PathEscape(sec), url.QueryEscape(sec)} {
			s = strings.ReplaceAll(s, form, "****")
		}
	}
	return s
}

// RedactURL keeps the scheme and host of a URL and hides the rest, which
// is where webhook URLs carry their credentials:
// "https://hooks.slack.com/services/T/B/x" → "https://hooks.slack.com/****".
// A string that does not parse as an absolute URL becomes "****".
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		if raw == "" {
			return ""
		}
		return "****"
	}
	out := u.Scheme + "://" + u.Host
	if u.User != nil {
		out = u.Scheme + "://****@" + u.Host
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		out += "/****"
	}
	return out
}

// ParseRetryAfter reads an HTTP Retry-After value: delay-seconds or an
// HTTP-date (relative to now). It returns 0 when v is empty or malformed.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(n * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// CheckURL reports why raw is not an absolute http(s) URL, naming the
// provider and field. The URL is redacted in the message: for the webhook
// providers that call it the URL is the credential.
func CheckURL(provider, field, raw string) error {
	if u, err := url.Parse(raw); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s: %s %s: want an absolute http(s) URL", provider, field, RedactURL(raw))
	}
	return nil
}
