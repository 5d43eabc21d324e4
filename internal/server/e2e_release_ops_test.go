package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/client"
)

const opsConfig = `
listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
  tokens: [{name: alice, role: admin, value: tok-admin-123}]
services:
  - name: api
    routing: weighted
    retries: {stable_fallback: false}
    builds:
      - {id: "1", state: stable, endpoints: [%s]}
      - {id: "2", state: canary, traffic: 20, endpoints: [%s]}
    release:
      steps: [20, 50, 100]
      step_duration: 1s
      max_step_duration: 60s
      manual_gates: [50]
      analysis: {min_samples: 50, max_error_rate_delta: 10%%, max_latency_deviation: 500%%}
`

func TestE2EReleaseOps(t *testing.T) {
	srv, url := start(t, opsConfig, addr(flaky(t, "stable", 0)), addr(flaky(t, "canary", 0)))
	stop := make(chan struct{})
	wg := hammer(url, 500, 200000, time.Millisecond, stop, func(int, string, error) {})
	defer func() { close(stop); wg.Wait() }()
	c := &client.Client{BaseURL: srv.AdminAddr(), Token: "tok-admin-123"}
	ctx := context.Background()
	deadline := time.Now().Add(40 * time.Second)
	for {
		cmp, err := c.Compare(ctx, "api")
		if err != nil {
			t.Fatal(err)
		}
		if cmp.Active && cmp.Release.Held != "" {
			t.Logf("held: %s; metrics %d; outcome %s", cmp.Release.Held, len(cmp.Metrics), cmp.Outcome)
			if len(cmp.Metrics) < 2 || cmp.Metrics[0].Canary == 0 && cmp.Metrics[0].Samples == 0 {
				t.Errorf("compare rows %+v", cmp.Metrics)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never held; last compare %+v", cmp)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := c.Promote(ctx, "api", ""); err == nil || !strings.Contains(err.Error(), "force") {
		t.Fatalf("plain promote while held: %v", err)
	}
	if _, err := c.Approve(ctx, "api", "e2e"); err != nil {
		t.Fatal(err)
	}
	for {
		rs, err := c.Releases(ctx, "api", 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 1 && rs[0].Status == "promoted" {
			t.Logf("release %+v", rs[0])
			if len(rs[0].Approvals) != 1 {
				t.Errorf("approvals %+v", rs[0].Approvals)
			}
			break
		}
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("not promoted: %+v", rs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
