// Package client is the typed Go client of canaryd's admin API (/api/v1).
// canaryctl reaches the server only through it, and so can scripts, the
// release tooling of a build, and end-to-end tests.
//
// The zero Client is usable once BaseURL and Token are set; its methods take
// a context first, return the wire types of internal/api/wire, and fail
// with *Error, which unwraps to ErrNotFound, ErrConflict, ErrUnauthorized,
// ErrForbidden or ErrPreconditionFailed so callers can branch with
// errors.Is.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/canaryd/canaryd/internal/api/wire"
)

// DefaultBaseURL is used when Client.BaseURL is empty: the admin listener
// of a canaryd on this machine with the example configs' address.
const DefaultBaseURL = "http://127.0.0.1:8081"

// Client talks to one canaryd admin API. Its fields must not change while
// requests are in flight; otherwise it is safe for concurrent use.
type Client struct {
	// BaseURL is the admin listener, e.g. "http://127.0.0.1:8081" (a bare
	// "host:port" is taken as http). "" means DefaultBaseURL.
	BaseURL string
	// Token is the bearer token; "" sends none (and the server answers
	// 401).
	Token string
	// HTTPClient sends the requests; nil means http.DefaultClient. Tests
	// and callers that need timeouts, TLS or a proxy swap it.
	HTTPClient *http.Client
	// UserAgent is sent when not empty.
	UserAgent string
}

// Sentinel errors an *Error unwraps to, by HTTP status.
var (
	ErrNotFound           = errors.New("not found")           // 404
	ErrConflict           = errors.New("conflict")            // 409, 422
	ErrUnauthorized       = errors.New("unauthorized")        // 401
	ErrForbidden          = errors.New("forbidden")           // 403
	ErrPreconditionFailed = errors.New("precondition failed") // 412
)

// Error is an answer of the server with a 4xx or 5xx status.
type Error struct {
	Status  int    // HTTP status
	Message string // the server's words (wire.Error.Error)
	Field   string // the request field at fault, if any
	Legal   string // what would be legal instead, for 409
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Field != "" && !strings.HasPrefix(msg, e.Field+":") {
		msg = e.Field + ": " + msg
	}
	return fmt.Sprintf("%s (HTTP %d)", msg, e.Status)
}

// Unwrap returns the sentinel for e.Status, or nil.
func (e *Error) Unwrap() error {
	switch e.Status {
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict, http.StatusUnprocessableEntity:
		return ErrConflict
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusPreconditionFailed:
		return ErrPreconditionFailed
	}
	return nil
}

// Option changes one request: a precondition or an idempotency key.
type Option func(*http.Request)

// IfRevision makes a change of a service apply only if the service's
// revision is still rev (what Service returned); otherwise the server
// answers 412 (ErrPreconditionFailed) and changes nothing. 0 adds no
// condition.
func IfRevision(rev int64) Option {
	return func(r *http.Request) {
		if rev > 0 {
			r.Header.Set("If-Match", strconv.Quote(strconv.FormatInt(rev, 10)))
		}
	}
}

// IdempotencyKey makes a POST safe to retry: the server applies it once
// and answers retries with the same key with the first answer. "" adds
// nothing.
func IdempotencyKey(key string) Option {
	return func(r *http.Request) {
		if key != "" {
			r.Header.Set("Idempotency-Key", key)
		}
	}
}

func (c *Client) base() string {
	b := c.BaseURL
	if b == "" {
		b = DefaultBaseURL
	}
	if !strings.Contains(b, "://") {
		b = "http://" + b
	}
	return strings.TrimRight(b, "/")
}

func (c *Client) http() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

// newRequest builds a request to path (under the base URL) with query q
// and body in as JSON.
func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, in any, opts []Option) (*http.Request, error) {
	u := c.base() + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	for _, o := range opts {
		o(req)
	}
	return req, nil
}

// do sends one JSON request and decodes the answer into out (nil: ignore).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any, opts ...Option) error {
	req, err := c.newRequest(ctx, method, path, q, in, opts)
	if err != nil {
		return err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return err // a *url.Error: it names the method and URL
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		return decodeError(resp.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func decodeError(status int, b []byte) error {
	e := &Error{Status: status}
	var we wire.Error
	if json.Unmarshal(b, &we) == nil && we.Error != "" {
		e.Message, e.Field, e.Legal = we.Error, we.Field, we.Legal
	} else {
		e.Message = strings.TrimSpace(string(b))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "…"
		}
	}
	return e
}

func svcPath(service string, rest ...string) string {
	p := "/api/v1/services/" + url.PathEscape(service)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}
