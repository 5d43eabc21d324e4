package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/notify/alert"
	"github.com/canaryd/canaryd/internal/notify/notifytest"
	"github.com/canaryd/canaryd/internal/notify/webhook"
)

const secret = "whsec-0123456789abcdef"

func TestSendSignsAndVerifies(t *testing.T) {
	peer := notifytest.NewWebhook(t)
	now := time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC)
	n, err := webhook.New(webhook.Config{URL: peer.URL() + "/hook", Secret: secret, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	m := notifytest.Message()
	if err := n.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := peer.Requests()
	if len(reqs) != 1 {
		t.Fatalf("peer got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if got := r.Header.Get(webhook.HeaderTimestamp); got != strconv.FormatInt(now.Unix(), 10) {
		t.Errorf("timestamp header %q", got)
	}
	if got := r.Header.Get(webhook.HeaderDelivery); got != "17" {
		t.Errorf("delivery header %q, want 17", got)
	}
	var body webhook.Body
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Version != 1 || body.Message.Service != "api" || body.Message.Reason != m.Reason || !strings.Contains(body.Text, "latency_p99") {
		t.Errorf("body = %+v", body)
	}

	tampered := bytes.Replace(r.Body, []byte(`"api"`), []byte(`"www"`), 1)
	tests := []struct {
		name   string
		secret string
		body   []byte
		now    time.Time
		hdr    func(http.Header)
		want   error
	}{
		{name: "valid", secret: secret, body: r.Body, now: now},
		{name: "valid within tolerance", secret: secret, body: r.Body, now: now.Add(4 * time.Minute)},
		{name: "tampered body", secret: secret, body: tampered, now: now, want: webhook.ErrBadSignature},
		{name: "wrong secret", secret: "other-secret", body: r.Body, now: now, want: webhook.ErrBadSignature},
		{name: "replayed later", secret: secret, body: r.Body, now: now.Add(6 * time.Minute), want: webhook.ErrStale},
		{name: "from the future", secret: secret, body: r.Body, now: now.Add(-6 * time.Minute), want: webhook.ErrStale},
		{name: "timestamp changed", secret: secret, body: r.Body, now: now.Add(time.Minute),
			hdr: func(h http.Header) { h.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix()+60, 10)) }, want: webhook.ErrBadSignature},
		{name: "no signature", secret: secret, body: r.Body, now: now,
			hdr: func(h http.Header) { h.Del(webhook.HeaderSignature) }, want: webhook.ErrNoSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := r.Header.Clone()
			if tt.hdr != nil {
				tt.hdr(h)
			}
			err := webhook.Verify(tt.secret, h, tt.body, tt.now, 0)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignKnownVector(t *testing.T) {
	// Computed with: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
	got := webhook.Sign("key", "1700000000", []byte(`{"a":1}`))
	if want := "a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestSendErrors(t *testing.T) {
	peer := notifytest.NewWebhook(t)
	n, _ := webhook.New(webhook.Config{URL: peer.URL() + "/hook?token=querysecretvalue", Secret: secret})
	tests := []struct {
		name      string
		setup     func()
		status    int
		permanent bool
		retry     time.Duration
	}{
		{name: "503", setup: func() { peer.Fail(1, 503, "") }, status: 503},
		{name: "429 Retry-After", setup: func() { peer.Fail(1, 429, "30") }, status: 429, retry: 30 * time.Second},
		{name: "403", setup: func() { peer.Fail(1, 403, "") }, status: 403, permanent: true},
		{name: "down", setup: peer.Down},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup()
			defer peer.Up()
			err := n.Send(context.Background(), notifytest.Message())
			e := alert.AsError(err)
			if e == nil {
				t.Fatalf("Send = %v, want *alert.Error", err)
			}
			if e.Status != tt.status || e.Permanent != tt.permanent || e.RetryAfter != tt.retry {
				t.Errorf("got %d %v %v, want %d %v %v (%v)", e.Status, e.Permanent, e.RetryAfter, tt.status, tt.permanent, tt.retry, err)
			}
			if strings.Contains(err.Error(), "querysecretvalue") {
				t.Errorf("error leaks the URL's query: %v", err)
			}
		})
	}
}

func TestNewRefusesUnsigned(t *testing.T) {
	if _, err := webhook.New(webhook.Config{URL: "https://example.com/x"}); err == nil {
		t.Error("New accepted an empty secret")
	}
}
