package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/api/apitest"
	"github.com/canaryd/canaryd/internal/api/wire"
	"github.com/canaryd/canaryd/internal/notify"
	"github.com/canaryd/canaryd/internal/notify/notifytest"
)

// Secrets of the alert tests: none may appear in any answer.
const (
	alertKey      = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	tgToken       = "123456:telegram-bot-token-SECRET"
	hookSecret    = "webhook-hmac-SECRET-value"
	smtpPassword  = "smtp-password-SECRET"
	slackPathPart = "s3cr3tW3bh00kT0k3n" // the secret part of notifytest's Slack path
)

// alertConfig is apitest.Config with an alerts section: the secret key
// and one file channel, "ops", posting to slack.
func alertConfig(slack *notifytest.Slack, key string) string {
	return apitest.Config + fmt.Sprintf(`
alerts:
  secret_key: %q
  channels:
    - {name: ops, kind: slack, url: %q}
`, key, slack.WebhookURL())
}

// The alert routes end to end over a real alerting.Service on SQLite:
// channels are listed, added, tested against real Slack and Telegram
// peers and removed; file channels are read-only; dead alerts are listed
// and replayed; and no answer ever carries a secret.
func TestAlertRoutes(t *testing.T) {
	fileSlack := notifytest.NewSlack(t)
	teamSlack := notifytest.NewSlack(t)
	tg := notifytest.NewTelegram(t, tgToken)
	srv := apitest.New(t, apitest.Options{Config: alertConfig(fileSlack, alertKey)})

	var bodies []string // every answer, checked for secrets at the end
	call := func(method, path, token, body string, want int) []byte {
		t.Helper()
		st, _, b := do(t, srv, method, path, token, body)
		bodies = append(bodies, string(b))
		if st != want {
			t.Fatalf("%s %s: %d %s; want %d", method, path, st, b, want)
		}
		return b
	}
	add := func(body string, want int) wire.AlertChannel {
		t.Helper()
		b := call("POST", "/api/v1/alerts/channels", apitest.AdminToken, body, want)
		var ch wire.AlertChannel
		if want == 201 {
			if err := json.Unmarshal(b, &ch); err != nil {
				t.Fatal(err)
			}
		}
		return ch
	}

	ch := add(fmt.Sprintf(`{"name":"team","kind":"slack","settings":{"url":%q}}`, teamSlack.WebhookURL()), 201)
	if ch.Source != "store" || !ch.Active || !strings.HasSuffix(ch.Settings.URL, "/****") || ch.Target != ch.Settings.URL {
		t.Errorf("added slack channel = %+v", ch)
	}
	ch = add(fmt.Sprintf(`{"kind":"telegram","settings":{"token":%q,"chat_id":"-100200","thread":7,"base_url":%q}}`, tgToken, tg.BaseURL()), 201)
	if ch.Name != "telegram" || ch.Settings.Token != "****"+tgToken[len(tgToken)-4:] || ch.Target != "chat -100200 thread 7" {
		t.Errorf("added telegram channel = %+v", ch)
	}
	add(fmt.Sprintf(`{"name":"bridge","kind":"webhook","settings":{"url":"http://127.0.0.1:1/hook/path-token-SECRET","secret":%q},"throttle":"30m","route":{"min_severity":"warning"}}`, hookSecret), 201)
	ch = add(fmt.Sprintf(`{"name":"mail","kind":"email","settings":{"smtp":"127.0.0.1:2525","username":"u","password":%q,"from":"canaryd@example.com","to":["a@example.com","b@example.com"]}}`, smtpPassword), 201)
	if ch.Settings.Password != "****CRET" || ch.Target != "a@example.com, b@example.com via 127.0.0.1:2525" {
		t.Errorf("added email channel = %+v", ch)
	}

	for _, tc := range []struct {
		name, body string
		status     int
		says       string
	}{
		{"file channel", `{"name":"ops","kind":"slack","settings":{"url":"https://hooks.slack.com/x"}}`, 409, "read-only"},
		{"twice", fmt.Sprintf(`{"name":"team","kind":"slack","settings":{"url":%q}}`, teamSlack.WebhookURL()), 409, "remove it first"},
		{"no kind", `{"name":"x","settings":{}}`, 400, "kind"},
		{"bad kind", `{"name":"x","kind":"pager","settings":{}}`, 400, "pager"},
		{"bad name", `{"name":"Not A Name","kind":"slack","settings":{"url":"https://hooks.slack.com/x"}}`, 400, "channel name"},
		{"missing chat", fmt.Sprintf(`{"name":"tg2","kind":"telegram","settings":{"token":%q}}`, tgToken), 400, "chat_id"},
		{"bad throttle", `{"name":"x","kind":"slack","settings":{"url":"https://hooks.slack.com/x"},"throttle":"soon"}`, 400, "throttle"},
		{"masked secret", `{"name":"x","kind":"slack","settings":{"url":"https://hooks.slack.com/****"}}`, 400, "masked value"},
		{"unknown field", `{"name":"x","kind":"slack","webhook":"y"}`, 400, "unknown field"},
	} {
		b := call("POST", "/api/v1/alerts/channels", apitest.AdminToken, tc.body, tc.status)
		if !strings.Contains(string(b), tc.says) {
			t.Errorf("%s: %s does not say %q", tc.name, b, tc.says)
		}
	}

	var list wire.AlertChannelList
	if err := json.Unmarshal(call("GET", "/api/v1/alerts/channels", apitest.ViewerToken, "", 200), &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range list.Channels {
		names = append(names, c.Name+"/"+c.Source)
	}
	if got := strings.Join(names, " "); got != "ops/config bridge/store mail/store team/store telegram/store" {
		t.Errorf("channels: %s", got)
	}

	// A test of one channel, then of every active one, delivered for real.
	var rep wire.AlertTestReport
	if err := json.Unmarshal(call("POST", "/api/v1/alerts/test", apitest.AdminToken, `{"channel":"team"}`, 200), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Results) != 1 || rep.Results[0].Channel != "team" || len(teamSlack.Requests()) != 1 {
		t.Errorf("test team: %+v, slack got %d", rep, len(teamSlack.Requests()))
	}
	if err := json.Unmarshal(call("POST", "/api/v1/alerts/test", apitest.AdminToken, "", 200), &rep); err != nil {
		t.Fatal(err)
	}
	results := map[string]wire.AlertTestResult{}
	for _, r := range rep.Results {
		results[r.Channel] = r
	}
	if rep.OK || len(rep.Results) != 5 || !results["ops"].OK || !results["team"].OK || !results["telegram"].OK ||
		results["bridge"].OK || results["mail"].OK {
		t.Errorf("test all: %+v", rep)
	}
	if n := len(fileSlack.Requests()); n != 1 {
		t.Errorf("file slack got %d messages", n)
	}
	if msgs := tg.Messages(); len(msgs) != 1 || msgs[0].ChatID != "-100200" || msgs[0].ThreadID != 7 || !strings.Contains(msgs[0].Plain, "test message") {
		t.Errorf("telegram got %+v", msgs)
	}
	teamSlack.Fail(1, 404, "no_service")
	if err := json.Unmarshal(call("POST", "/api/v1/alerts/test", apitest.AdminToken, `{"channel":"team"}`, 200), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.Results[0].OK || !strings.Contains(rep.Results[0].Error, "no_service") {
		t.Errorf("test of a failing channel: %+v", rep)
	}
	if err := json.Unmarshal(call("POST", "/api/v1/alerts/test", apitest.AdminToken, `{"channel":"nosuch"}`, 200), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.OK || !strings.Contains(rep.Results[0].Error, "not configured") {
		t.Errorf("test of an unknown channel: %+v", rep)
	}

	// Removal: file channels are read-only.
	if b := call("DELETE", "/api/v1/alerts/channels/ops", apitest.AdminToken, "", 409); !strings.Contains(string(b), "config file") {
		t.Errorf("remove file channel: %s", b)
	}
	call("DELETE", "/api/v1/alerts/channels/team", apitest.AdminToken, "", 200)
	call("DELETE", "/api/v1/alerts/channels/team", apitest.AdminToken, "", 404)
	call("DELETE", "/api/v1/alerts/channels/Bad%20Name", apitest.AdminToken, "", 400)

	// Dead alerts: one made dead in the outbox, listed and replayed.
	ctx := t.Context()
	ob := srv.Alerts.Outbox()
	now := time.Now()
	id, _, err := ob.Enqueue(ctx, notify.Delivery{Channel: "bridge", Key: "k1", Count: 3, FirstSeen: now, LastSeen: now, NextAttempt: now,
		Message: notify.Message{Service: "api", Type: "release.rolled_back", Severity: "critical", Title: "api: 42 rolled back"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.MarkDead(ctx, id, 8, now, "webhook: POST http://127.0.0.1:1/****: connection refused"); err != nil {
		t.Fatal(err)
	}
	var dead wire.DeadAlertList
	if err := json.Unmarshal(call("GET", "/api/v1/alerts/dead", apitest.ViewerToken, "", 200), &dead); err != nil {
		t.Fatal(err)
	}
	if len(dead.Alerts) != 1 || dead.Alerts[0].ID != id || dead.Alerts[0].Count != 3 || dead.Alerts[0].Attempts != 8 ||
		dead.Alerts[0].Title != "api: 42 rolled back" || !strings.Contains(dead.Alerts[0].LastError, "refused") {
		t.Errorf("dead = %+v", dead)
	}
	call("GET", "/api/v1/alerts/dead?limit=0", apitest.ViewerToken, "", 400)
	call("POST", fmt.Sprintf("/api/v1/alerts/dead/%d/replay", id), apitest.AdminToken, "", 200)
	call("POST", fmt.Sprintf("/api/v1/alerts/dead/%d/replay", id), apitest.AdminToken, "", 409)
	call("POST", "/api/v1/alerts/dead/999999/replay", apitest.AdminToken, "", 404)
	call("POST", "/api/v1/alerts/dead/abc/replay", apitest.AdminToken, "", 400)
	if err := json.Unmarshal(call("GET", "/api/v1/alerts/dead", apitest.ViewerToken, "", 200), &dead); err != nil || len(dead.Alerts) != 0 {
		t.Errorf("dead after replay: %+v %v", dead, err)
	}

	// Viewers read but change nothing.
	call("POST", "/api/v1/alerts/test", apitest.ViewerToken, "", 403)
	call("DELETE", "/api/v1/alerts/channels/telegram", apitest.ViewerToken, "", 403)

	for _, b := range bodies {
		for _, secret := range []string{tgToken, hookSecret, smtpPassword, slackPathPart, alertKey, "path-token-SECRET"} {
			if strings.Contains(b, secret) {
				t.Errorf("an answer carries the secret %q: %s", secret, b)
			}
		}
	}
	t.Logf("%d answers checked for secrets", len(bodies))
}

// Without alerts.secret_key nothing can be added, and the answer names the
// setting; listing still works.
func TestAlertChannelNeedsKey(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	st, _, b := do(t, srv, "POST", "/api/v1/alerts/channels", apitest.AdminToken,
		`{"name":"team","kind":"slack","settings":{"url":"https://hooks.slack.com/services/T/B/SECRETPART"}}`)
	if st != 409 || !strings.Contains(string(b), "alerts.secret_key") || strings.Contains(string(b), "SECRETPART") {
		t.Errorf("add without key: %d %s", st, b)
	}
	st, _, b = do(t, srv, "GET", "/api/v1/alerts/channels", apitest.ViewerToken, "")
	if st != 200 || string(b) != `{"channels":[]}` {
		t.Errorf("list: %d %s", st, b)
	}
}
