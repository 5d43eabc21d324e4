package gate_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/notify/webhook"
	"github.com/canaryd/canaryd/internal/release/gate"
)

func TestCall(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		delay   time.Duration
		allowed bool
		msg     string
	}{
		{name: "empty 204 allows", status: 204, allowed: true, msg: "gate smoke allowed (HTTP 204)"},
		{name: "allow true", status: 200, body: `{"allow": true, "reason": "smoke tests green"}`, allowed: true, msg: "smoke tests green"},
		{name: "allow false", status: 200, body: `{"allow": false, "reason": "3 new issues"}`, msg: "gate smoke said no: 3 new issues"},
		{name: "non-2xx", status: 503, body: `freeze`, msg: "gate smoke said no: HTTP 503 freeze"},
		{name: "non-2xx with reason", status: 409, body: `{"allow": false, "reason": "change freeze"}`, msg: "HTTP 409 change freeze"},
		{name: "2xx not an answer", status: 200, body: `<html>`, msg: "not {\"allow\": ...}"},
		{name: "timeout", status: 200, delay: 500 * time.Millisecond, msg: "unreachable (fails safe)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got gate.Request
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if err := webhook.Verify("s3cret", r.Header, body, now, time.Minute); err != nil {
					t.Errorf("signature: %v", err)
				}
				_ = json.Unmarshal(body, &got)
				select {
				case <-time.After(tc.delay):
				case <-r.Context().Done():
					return
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c := &gate.Caller{Now: func() time.Time { return now }}
			g := gate.Gate{Name: "smoke", URL: srv.URL, Secret: "s3cret", Timeout: 100 * time.Millisecond}
			res := c.Call(context.Background(), g, gate.Request{Point: gate.BeforeStep, Service: "api", Canary: "42", Traffic: 20, Next: 50})
			if res.Allowed != tc.allowed || !strings.Contains(res.Message, tc.msg) {
				t.Fatalf("%+v; want allowed %v with %q", res, tc.allowed, tc.msg)
			}
			if res.OnDeny != "pause" || res.Point != gate.BeforeStep {
				t.Errorf("result %+v", res)
			}
			if tc.delay == 0 && (got.Gate != "smoke" || got.Canary != "42" || got.Next != 50 || !got.Time.Equal(now)) {
				t.Errorf("request body %+v", got)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	res := (&gate.Caller{}).Call(context.Background(), gate.Gate{Name: "g", URL: url + "/x?token=secret", OnDeny: "rollback"}, gate.Request{Point: gate.BeforePromote})
	if res.Allowed || !strings.Contains(res.Message, "unreachable (fails safe)") || res.OnDeny != "rollback" {
		t.Fatalf("%+v", res)
	}
	if strings.Contains(res.Message, "secret") {
		t.Errorf("message leaks the URL: %s", res.Message)
	}
}

func TestAt(t *testing.T) {
	all := gate.Gate{}
	some := gate.Gate{Points: []gate.Point{gate.BeforePromote}}
	for _, p := range gate.Points() {
		if !all.At(p) {
			t.Errorf("a gate without points is not called at %s", p)
		}
		if some.At(p) != (p == gate.BeforePromote) {
			t.Errorf("At(%s) = %v", p, some.At(p))
		}
	}
}
