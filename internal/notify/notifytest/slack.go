package notifytest

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
)

// Slack implements the Slack incoming-webhook contract: POST JSON with
// "text" and/or "blocks" to the webhook path; 200 "ok" on success, 400
// "invalid_payload" for a body that is not JSON, 400 "no_text" when both
// are missing, 400 "invalid_blocks" for blocks breaking Block Kit limits
// (header ≤ 150 characters of plain_text, section text ≤ 3000, ≤ 10 fields
// of ≤ 2000), 404 "no_service" for an unknown webhook path, 429 with
// Retry-After when rate-limited (see RateLimit).
type Slack struct {
	*httpPeer
	path  string
	fails failQueue

	mu   sync.Mutex
	reqs []SlackRequest
}

// SlackRequest is one accepted webhook call.
type SlackRequest struct {
	Text   string
	Blocks []SlackBlock
	Raw    []byte
}

// SlackBlock is a decoded Block Kit block.
type SlackBlock struct {
	Type     string      `json:"type"`
	Text     *SlackText  `json:"text"`
	Fields   []SlackText `json:"fields"`
	Elements []SlackText `json:"elements"`
}

// SlackText is a Block Kit text object.
type SlackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// NewSlack starts a Slack webhook peer.
func NewSlack(t testing.TB) *Slack {
	s := &Slack{path: "/services/T0CANARY/B0CANARY/s3cr3tW3bh00kT0k3n"}
	s.httpPeer = startHTTP(t, http.HandlerFunc(s.serve))
	return s
}

// WebhookURL is the URL to configure; its path is the secret.
func (s *Slack) WebhookURL() string { return s.URL() + s.path }

// Requests returns the accepted calls so far.
func (s *Slack) Requests() []SlackRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SlackRequest(nil), s.reqs...)
}

// Fail makes the next n valid calls answer status with body (e.g. 500
// "rollup_error") instead of being accepted.
func (s *Slack) Fail(n, status int, body string) {
	s.fails.push(n, failure{status: status, body: body})
}

// RateLimit makes the next n calls answer 429 with Retry-After: seconds.
func (s *Slack) RateLimit(n, seconds int) {
	s.fails.push(n, failure{status: http.StatusTooManyRequests, body: "rate_limited", retryAfter: strconv.Itoa(seconds)})
}

func (s *Slack) serve(w http.ResponseWriter, r *http.Request) {
	reply := func(status int, body string) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
	if r.Method != http.MethodPost {
		reply(http.StatusMethodNotAllowed, "invalid_method")
		return
	}
	if r.URL.Path != s.path {
		reply(http.StatusNotFound, "no_service")
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		reply(http.StatusBadRequest, "invalid_payload")
		return
	}
	var p struct {
		Text   string       `json:"text"`
		Blocks []SlackBlock `json:"blocks"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		reply(http.StatusBadRequest, "invalid_payload")
		return
	}
	if p.Text == "" && len(p.Blocks) == 0 {
		reply(http.StatusBadRequest, "no_text")
		return
	}
	if !validBlocks(p.Blocks) {
		reply(http.StatusBadRequest, "invalid_blocks")
		return
	}
	if f, ok := s.fails.pop(); ok {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		reply(f.status, f.body)
		return
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, SlackRequest{Text: p.Text, Blocks: p.Blocks, Raw: raw})
	s.mu.Unlock()
	reply(http.StatusOK, "ok")
}

func validBlocks(bs []SlackBlock) bool {
	if len(bs) > 50 {
		return false
	}
	textOK := func(t *SlackText, max int, plainOnly bool) bool {
		if t == nil || t.Text == "" || len([]rune(t.Text)) > max {
			return false
		}
		if t.Type == "plain_text" {
			return true
		}
		return !plainOnly && t.Type == "mrkdwn"
	}
	for _, b := range bs {
		switch b.Type {
		case "header":
			if !textOK(b.Text, 150, true) {
				return false
			}
		case "section":
			if b.Text == nil && len(b.Fields) == 0 || len(b.Fields) > 10 {
				return false
			}
			if b.Text != nil && !textOK(b.Text, 3000, false) {
				return false
			}
			for i := range b.Fields {
				if !textOK(&b.Fields[i], 2000, false) {
					return false
				}
			}
		case "context":
			if len(b.Elements) == 0 || len(b.Elements) > 10 {
				return false
			}
			for i := range b.Elements {
				if !textOK(&b.Elements[i], 3000, false) {
					return false
				}
			}
		case "divider":
		default:
			return false
		}
	}
	return true
}
