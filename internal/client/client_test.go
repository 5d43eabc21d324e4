package client_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/api/apitest"
	"github.com/canaryd/canaryd/internal/api/wire"
	"github.com/canaryd/canaryd/internal/client"
	"github.com/canaryd/canaryd/internal/event"
)

// countingTransport shows that HTTPClient is swappable.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func TestClientLifecycle(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	ctx := context.Background()
	tr := &countingTransport{}
	c := &client.Client{BaseURL: strings.TrimPrefix(srv.URL, "http://"), Token: apitest.AdminToken, HTTPClient: &http.Client{Transport: tr}}

	b, err := c.Register(ctx, "api", wire.RegisterRequest{ID: "44", Version: "1.3.0", Endpoints: []string{"127.0.0.1:9044"}, TTL: "1m"})
	if err != nil || b.State != "deployed" {
		t.Fatalf("register: %+v %v", b, err)
	}
	if err := c.Heartbeat(ctx, "api", "44", "127.0.0.1:9044"); err != nil {
		t.Fatal(err)
	}
	s, err := c.Service(ctx, "api")
	if err != nil || s.Stable != "41" || len(s.Builds) != 4 {
		t.Fatalf("service: %+v %v", s, err)
	}
	res, err := c.StartCanary(ctx, "api", wire.StartCanaryRequest{Build: "44", Traffic: 5}, client.IfRevision(s.Revision), client.IdempotencyKey("start-44"))
	if err != nil || res.Service.Canary != "44" || res.Event.Type != event.CanaryStarted {
		t.Fatalf("start: %+v %v", res, err)
	}
	// a stale revision: ErrPreconditionFailed
	_, err = c.SetTraffic(ctx, "api", 50, "", client.IfRevision(s.Revision))
	if !errors.Is(err, client.ErrPreconditionFailed) {
		t.Fatalf("stale: %v", err)
	}
	if res, err = c.SetTraffic(ctx, "api", 25, "step"); err != nil || res.Service.Traffic != 25 {
		t.Fatalf("traffic: %+v %v", res, err)
	}
	for _, f := range []func(context.Context, string, string, ...client.Option) (wire.Result, error){c.Pause, c.Resume, c.Promote} {
		if _, err := f(ctx, "api", "test"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DeleteBuild(ctx, "api", "41", "old"); err != nil {
		t.Fatal(err)
	}
	bs, err := c.Builds(ctx, client.BuildFilter{Service: "api", States: []string{"deleted"}})
	if err != nil || len(bs) != 1 || bs[0].ID != "41" {
		t.Fatalf("builds: %+v %v", bs, err)
	}
	page, err := c.Events(ctx, client.EventQuery{Service: "api", Types: []string{"release.promoted"}})
	if err != nil || len(page.Events) != 1 || page.Events[0].Actor != "alice" {
		t.Fatalf("events: %+v %v", page, err)
	}
	if _, err := c.OpenAPI(ctx); err != nil {
		t.Fatal(err)
	}
	if tr.n.Load() < 10 {
		t.Fatalf("transport used %d times", tr.n.Load())
	}
}

func TestClientErrors(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		token  string
		call   func(c *client.Client) error
		want   error
		status int
		substr string
	}{
		{"not found", apitest.ViewerToken, func(c *client.Client) error { _, err := c.Service(ctx, "nosuch"); return err }, client.ErrNotFound, 404, `service "nosuch"`},
		{"illegal", apitest.AdminToken, func(c *client.Client) error { _, err := c.Promote(ctx, "api", ""); return err }, client.ErrConflict, 409, "start a canary first"},
		{"anonymous", "", func(c *client.Client) error { _, err := c.Services(ctx); return err }, client.ErrUnauthorized, 401, "bearer token"},
		{"viewer", apitest.ViewerToken, func(c *client.Client) error { _, err := c.Rollback(ctx, "api", ""); return err }, client.ErrForbidden, 403, "viewer role"},
		{"field", apitest.AdminToken, func(c *client.Client) error { _, err := c.SetTraffic(ctx, "api", 101, ""); return err }, nil, 400, "traffic:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &client.Client{BaseURL: srv.URL, Token: tc.token}
			err := tc.call(c)
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Status != tc.status || !strings.Contains(err.Error(), tc.substr) {
				t.Fatalf("err %v, want status %d with %q", err, tc.status, tc.substr)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tc.want)
			}
		})
	}
	// a server that is not there: a plain error, not *Error
	c := &client.Client{BaseURL: "http://127.0.0.1:1", Token: "x"}
	var ce *client.Error
	if _, err := c.Services(ctx); err == nil || errors.As(err, &ce) {
		t.Fatalf("unreachable: %v", err)
	}
}

// StreamEvents delivers a later event, survives the server dropping the
// connection (resuming without loss or repeats) and stops with ctx.
func TestStreamEvents(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &client.Client{BaseURL: srv.URL, Token: apitest.ViewerToken}
	// no kept-alive connections: the test drops every server connection
	admin := &client.Client{BaseURL: srv.URL, Token: apitest.AdminToken, HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	got := make(chan event.Event, 10)
	errc := make(chan error, 1)
	go func() {
		errc <- c.StreamEvents(ctx, client.StreamQuery{Service: "api"}, 50*time.Millisecond, func(ev event.Event) error {
			got <- ev
			return nil
		})
	}()
	lastID := int64(0)
	// wait returns the next event of type typ, skipping others, and checks
	// that ids only grow (no repeats after a reconnect).
	wait := func(typ event.Type) event.Event {
		t.Helper()
		for {
			select {
			case ev := <-got:
				if ev.ID <= lastID {
					t.Fatalf("event %d after %d: repeated or out of order", ev.ID, lastID)
				}
				lastID = ev.ID
				if ev.Type == typ {
					return ev
				}
			case <-ctx.Done():
				t.Fatalf("no %s event", typ)
			}
		}
	}
	// The stream starts with the next event: retry until one arrives, since
	// the subscription may not be open yet when the first change is made.
	deadline := time.Now().Add(5 * time.Second)
	if _, err := admin.StartCanary(ctx, "api", wire.StartCanaryRequest{Build: "42", Traffic: 1}); err != nil {
		t.Fatal(err)
	}
	var first event.Event
	for first.ID == 0 && time.Now().Before(deadline) {
		select {
		case first = <-got:
		case <-time.After(100 * time.Millisecond):
			if _, err := admin.SetTraffic(ctx, "api", 2, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	if first.ID == 0 {
		t.Fatal("no event streamed")
	}
	lastID = first.ID
	srv.Srv.CloseClientConnections() // drop the stream
	if _, err := admin.SetTraffic(ctx, "api", 7, ""); err != nil {
		t.Fatal(err)
	}
	for ev := wait(event.TrafficChanged); ev.Details["traffic"] != "7%"; ev = wait(event.TrafficChanged) {
	}
	if _, err := admin.Rollback(ctx, "api", "bad"); err != nil {
		t.Fatal(err)
	}
	wait(event.RolledBack)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("StreamEvents returned %v", err)
	}
}
