package client_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/canaryd/canaryd/internal/api/apitest"
	"github.com/canaryd/canaryd/internal/api/wire"
	"github.com/canaryd/canaryd/internal/client"
	"github.com/canaryd/canaryd/internal/notify/notifytest"
)

// The alert methods against a real server: add, list, test (delivered to
// a real Slack peer), remove, dead and replay, with the errors callers
// branch on.
func TestClientAlerts(t *testing.T) {
	slack := notifytest.NewSlack(t)
	srv := apitest.New(t, apitest.Options{Config: apitest.Config + `
alerts:
  secret_key: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
`})
	ctx := t.Context()
	c := &client.Client{BaseURL: srv.URL, Token: apitest.AdminToken}

	ch, err := c.AddAlertChannel(ctx, wire.AddAlertChannelRequest{Name: "team", Kind: "slack", Settings: wire.AlertSettings{URL: slack.WebhookURL()}})
	if err != nil || ch.Source != "store" || strings.Contains(ch.Settings.URL, "s3cr3t") {
		t.Fatalf("add: %+v %v", ch, err)
	}
	_, err = c.AddAlertChannel(ctx, wire.AddAlertChannelRequest{Name: "team", Kind: "slack", Settings: wire.AlertSettings{URL: slack.WebhookURL()}})
	if !errors.Is(err, client.ErrConflict) {
		t.Errorf("add twice: %v", err)
	}
	chs, err := c.AlertChannels(ctx)
	if err != nil || len(chs) != 1 || chs[0].Name != "team" {
		t.Fatalf("list: %+v %v", chs, err)
	}
	rep, err := c.TestAlerts(ctx, "")
	if err != nil || !rep.OK || len(rep.Results) != 1 || len(slack.Requests()) != 1 {
		t.Fatalf("test: %+v %v", rep, err)
	}
	if ds, err := c.DeadAlerts(ctx, 10); err != nil || len(ds) != 0 {
		t.Fatalf("dead: %+v %v", ds, err)
	}
	if err := c.ReplayAlert(ctx, 12345); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("replay unknown: %v", err)
	}
	if err := c.RemoveAlertChannel(ctx, "team"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveAlertChannel(ctx, "team"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("remove again: %v", err)
	}
	viewer := &client.Client{BaseURL: srv.URL, Token: apitest.ViewerToken}
	_, err = viewer.TestAlerts(ctx, "")
	if !errors.Is(err, client.ErrForbidden) {
		t.Errorf("viewer test: %v", err)
	}
}
