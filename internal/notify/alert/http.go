package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxBody bounds how much of a response Post reads: peers answer with a few
// bytes of status, and a misbehaving one must not make us buffer megabytes.
const maxBody = 64 << 10

// Response is what a peer answered to Post.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Post sends body to target with the given content type and extra headers,
// honouring ctx, without retrying and without following redirects (a
// redirect would resend a signed body to a place nobody configured). A nil
// client means http.DefaultClient. Transport failures come back as *Error
// with Status 0 and the URL redacted and secrets scrubbed from the text;
// any HTTP answer, success or not, comes back as a Response for the
// provider to interpret.
func Post(ctx context.Context, c *http.Client, provider, target, contentType string, body []byte, hdr http.Header, secrets ...string) (*Response, error) {
	if c == nil {
		c = http.DefaultClient
	}
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	secrets = append(secrets, target)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, &Error{Provider: provider, Permanent: true, Detail: Scrub("build request for "+RedactURL(target)+": "+err.Error(), secrets...)}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "canaryd-notify/1")
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := nc.Do(req)
	if err != nil {
		inner := err
		var ue *url.Error
		if errors.As(err, &ue) {
			inner = ue.Err
		}
		return nil, &Error{Provider: provider, Err: ScrubError(fmt.Errorf("post %s: %w", RedactURL(target), inner), secrets...)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, &Error{Provider: provider, Status: resp.StatusCode, Err: ScrubError(fmt.Errorf("read response: %w", err), secrets...)}
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// ScrubError returns an error whose text is err's with the secrets
// scrubbed (see Scrub) and which unwraps to err, so errors.Is still finds
// context.DeadlineExceeded or a net error behind it. Nil stays nil.
func ScrubError(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	return scrubbed{err, Scrub(err.Error(), secrets...)}
}

type scrubbed struct {
	err  error
	text string
}

func (s scrubbed) Error() string { return s.text }
func (s scrubbed) Unwrap() error { return s.err }

// Snippet returns a short, single-line, secret-free excerpt of a peer's
// response body for error messages.
func Snippet(b []byte, secrets ...string) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	return Truncate(Scrub(s, secrets...), 200)
}

// StatusError builds the *Error for an HTTP answer that is not a success:
// 429 carries RetryAfter from the Retry-After header, 4xx other than 408
// and 429 are permanent (the peer rejects this request and will again),
// everything else is worth retrying.
func StatusError(provider string, r *Response, now time.Time, secrets ...string) *Error {
	e := &Error{Provider: provider, Status: r.Status, Detail: Snippet(r.Body, secrets...)}
	switch {
	case r.Status == http.StatusTooManyRequests:
		e.RetryAfter = ParseRetryAfter(r.Header.Get("Retry-After"), now)
	case r.Status == http.StatusRequestTimeout:
	case r.Status >= 400 && r.Status < 500:
		e.Permanent = true
	}
	return e
}
