package notifytest

import (
	"io"
	"net/http"
	"sync"
	"testing"
)

// Webhook is a generic HTTP receiver: it records every POST (headers and
// exact body bytes) and answers 204, or a status queued with Fail.
type Webhook struct {
	*httpPeer
	fails failQueue

	mu   sync.Mutex
	reqs []WebhookRequest
}

// WebhookRequest is one received request.
type WebhookRequest struct {
	Path   string
	Header http.Header
	Body   []byte
}

// NewWebhook starts a receiver.
func NewWebhook(t testing.TB) *Webhook {
	wh := &Webhook{}
	wh.httpPeer = startHTTP(t, http.HandlerFunc(wh.serve))
	return wh
}

// Requests returns the requests answered with success so far.
func (wh *Webhook) Requests() []WebhookRequest {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	return append([]WebhookRequest(nil), wh.reqs...)
}

// Fail makes the next n requests answer status (a Retry-After header is
// set when retryAfter is not empty).
func (wh *Webhook) Fail(n, status int, retryAfter string) {
	wh.fails.push(n, failure{status: status, retryAfter: retryAfter})
}

func (wh *Webhook) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if f, ok := wh.fails.pop(); ok {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		w.WriteHeader(f.status)
		return
	}
	wh.mu.Lock()
	wh.reqs = append(wh.reqs, WebhookRequest{Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	wh.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}
