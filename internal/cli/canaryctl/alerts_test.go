package canaryctl_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/api/apitest"
	"github.com/canaryd/canaryd/internal/api/wire"
	"github.com/canaryd/canaryd/internal/notify"
	"github.com/canaryd/canaryd/internal/notify/notifytest"
)

// Secrets of the alert commands: no output may show them.
const (
	alertKey     = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	botToken     = "123456:bot-token-that-is-SECRET"
	hookSecret   = "hmac-key-that-is-SECRET"
	smtpPassword = "smtp-password-SECRET"
	slackSecret  = "s3cr3tW3bh00kT0k3n" // the secret part of notifytest's Slack path
)

// portRe normalises loopback ports in golden output (same width).
var portRe = regexp.MustCompile(`127\.0\.0\.1:\d{5}`)

// The alert commands as an operator uses them, against a server with a
// real alerting.Service over SQLite, a file channel and real Slack and
// Telegram peers: every test message is really delivered, and no output
// (stdout or stderr, table or JSON) shows a secret.
func TestAlertCommands(t *testing.T) {
	fileSlack := notifytest.NewSlack(t)
	teamSlack := notifytest.NewSlack(t)
	tg := notifytest.NewTelegram(t, botToken)
	srv := apitest.New(t, apitest.Options{Config: apitest.Config + fmt.Sprintf(`
alerts:
  secret_key: %q
  channels:
    - {name: ops, kind: slack, url: %q, route: {min_severity: warning}}
`, alertKey, fileSlack.WebhookURL())})

	var outputs []string
	steps := []struct {
		name   string
		args   []string
		code   int
		golden bool   // compare stdout with testdata/alerts-NAME.golden
		stdout string // must appear in stdout
		stderr string // must appear in stderr
	}{
		{"list-file", []string{"alerts", "list"}, 0, false, "ops   slack  config  true    http://127.0.0.1:", ""},
		{"add-slack", []string{"alerts", "add", "slack", teamSlack.WebhookURL(), "--name", "team", "--services", "api"}, 0, true, "", ""},
		{"add-telegram", []string{"alerts", "add", "telegram", "--token", botToken, "--chat", "-100200", "--thread", "7", "--base-url", tg.BaseURL()}, 0, true, "", ""},
		{"add-email", []string{"alerts", "add", "email", "oncall@example.com", "dev@example.com", "--smtp", "127.0.0.1:1", "--from", "canaryd@example.com",
			"--username", "canaryd", "--password", smtpPassword, "--tls", "none", "--name", "mail"}, 0, false, "added channel mail (email): oncall@example.com, dev@example.com via 127.0.0.1:1", ""},
		{"add-webhook", []string{"alerts", "add", "webhook", "http://127.0.0.1:1/hook", "--secret", hookSecret, "--name", "bridge",
			"--types", "release.*", "--min-severity", "warning", "--throttle", "30m"}, 0, false, "added channel bridge (webhook)", ""},
		{"list", []string{"alerts", "list"}, 0, true, "", ""},
		{"usage-webhook", []string{"alerts", "add", "webhook", "http://127.0.0.1:1/hook"}, 2, false, "", "--secret is required"},
		{"usage-telegram", []string{"alerts", "add", "telegram", "--chat", "1"}, 2, false, "", "--token and --chat are required"},
		{"usage-email", []string{"alerts", "add", "email", "a@example.com"}, 2, false, "", "--smtp is required"},
		{"usage-slack", []string{"alerts", "add", "slack"}, 2, false, "", "accepts 1 arg"},
		{"usage-add", []string{"alerts", "add"}, 2, false, "", "needs a subcommand"},
		{"file-readonly", []string{"alerts", "add", "slack", "https://hooks.slack.com/services/T/B/x", "--name", "ops"}, 4, false, "", "read-only"},
		{"taken", []string{"alerts", "add", "slack", teamSlack.WebhookURL(), "--name", "team"}, 4, false, "", "remove it first"},
		{"server-field", []string{"alerts", "add", "slack", "not a url", "--name", "bad"}, 1, false, "", "url"},
		{"test-one", []string{"alerts", "test", "team"}, 0, false, "team     ok", ""},
		{"test-all", []string{"alerts", "test"}, 1, false, "telegram  ok", "2 of 5 channels failed"},
		{"test-unknown", []string{"alerts", "test", "nosuch"}, 1, false, "not configured", "1 of 1 channels failed"},
		{"remove-file", []string{"alerts", "remove", "ops"}, 4, false, "", "config file"},
		{"remove", []string{"alerts", "remove", "team"}, 0, false, "removed channel team", ""},
		{"remove-again", []string{"alerts", "remove", "team"}, 3, false, "", `no channel "team"`},
		{"dead-none", []string{"alerts", "dead"}, 0, false, "ID  CHANNEL", ""},
		{"dead", nil, 0, false, "", ""}, // makes one dead alert
		{"dead-list", []string{"alerts", "dead"}, 0, false, "connection refused", ""},
		{"replay-usage", []string{"alerts", "replay", "x"}, 2, false, "", "want an alert id"},
		{"replay-unknown", []string{"alerts", "replay", "999999"}, 3, false, "", "no alert 999999"},
	}
	var deadID int64
	for _, st := range steps {
		if st.args == nil {
			deadID = makeDead(t, srv)
			continue
		}
		code, out, errOut := run(t, srv, nil, st.args...)
		outputs = append(outputs, out, errOut)
		if code != st.code || !strings.Contains(out, st.stdout) || !strings.Contains(errOut, st.stderr) {
			t.Fatalf("%s: canaryctl %s: exit %d (want %d)\nstdout: %s(want %q)\nstderr: %s(want %q)", st.name, strings.Join(st.args, " "),
				code, st.code, out, st.stdout, errOut, st.stderr)
		}
		if st.golden {
			golden(t, "alerts-"+st.name, portRe.ReplaceAllString(out, "127.0.0.1:99999"))
		}
	}
	if n := len(teamSlack.Requests()); n != 2 {
		t.Errorf("team slack got %d test messages, want 2", n)
	}
	if n := len(fileSlack.Requests()); n != 1 {
		t.Errorf("file slack got %d test messages, want 1", n)
	}
	if msgs := tg.Messages(); len(msgs) != 1 || msgs[0].ThreadID != 7 || msgs[0].ChatID != "-100200" {
		t.Errorf("telegram got %+v", msgs)
	}

	code, out, errOut := run(t, srv, nil, "alerts", "replay", strconv.FormatInt(deadID, 10))
	outputs = append(outputs, out, errOut)
	if code != 0 || !strings.Contains(out, "pending again") {
		t.Fatalf("replay: %d %s %s", code, out, errOut)
	}

	// -o json is the API's answer, parseable and masked too.
	code, out, errOut = run(t, srv, nil, "alerts", "list", "-o", "json")
	outputs = append(outputs, out, errOut)
	var list wire.AlertChannelList
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list.Channels) != 4 {
		t.Fatalf("alerts list -o json: %d %v\n%s", code, err, out)
	}
	code, out, errOut = run(t, srv, nil, "alerts", "test", "telegram", "-o", "json")
	outputs = append(outputs, out, errOut)
	var rep wire.AlertTestReport
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || !rep.OK || len(rep.Results) != 1 {
		t.Fatalf("alerts test -o json: %d %v\n%s", code, err, out)
	}
	code, out, errOut = run(t, srv, nil, "alerts", "dead", "-o", "json")
	outputs = append(outputs, out, errOut)
	var dead wire.DeadAlertList
	if err := json.Unmarshal([]byte(out), &dead); code != 0 || err != nil || len(dead.Alerts) != 0 {
		t.Fatalf("alerts dead -o json after replay: %d %v\n%s", code, err, out)
	}

	// A viewer reads but cannot change.
	viewer := env{"CANARYD_ADDR": srv.URL, "CANARYD_TOKEN": apitest.ViewerToken}
	if code, _, errOut := run(t, srv, viewer, "alerts", "test"); code != 1 || !strings.Contains(errOut, "admin role") {
		t.Errorf("viewer test: exit %d, %s", code, errOut)
	}
	if code, _, errOut := run(t, srv, viewer, "alerts", "list"); code != 0 {
		t.Errorf("viewer list: exit %d, %s", code, errOut)
	}

	for _, o := range outputs {
		for _, secret := range []string{botToken, hookSecret, smtpPassword, slackSecret, alertKey} {
			if strings.Contains(o, secret) {
				t.Errorf("an output shows the secret %q:\n%s", secret, o)
			}
		}
	}
}

// makeDead puts one dead alert for channel bridge into the server's outbox.
func makeDead(t *testing.T, srv *apitest.Server) int64 {
	t.Helper()
	ctx := t.Context()
	ob := srv.Alerts.Outbox()
	now := time.Now()
	id, _, err := ob.Enqueue(ctx, notify.Delivery{Channel: "bridge", Key: "k", Count: 2, FirstSeen: now, LastSeen: now, NextAttempt: now,
		Message: notify.Message{Service: "api", Type: "release.rolled_back", Severity: "critical", Title: "api: 42 rolled back"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.MarkDead(ctx, id, 8, now, "webhook: POST http://127.0.0.1:1/****: connection refused"); err != nil {
		t.Fatal(err)
	}
	return id
}

// Without alerts.secret_key the server refuses to store a channel and
// canaryctl says which setting is missing.
func TestAlertAddNeedsKey(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	code, out, errOut := run(t, srv, nil, "alerts", "add", "telegram", "--token", botToken, "--chat", "1")
	if code != 4 || out != "" || !strings.Contains(errOut, "alerts.secret_key") || strings.Contains(errOut, botToken) {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	code, _, errOut = run(t, srv, env{"CANARYD_ADDR": srv.URL}, "alerts", "add", "telegram", "--token", botToken, "--chat", "1")
	if code != 2 || !strings.Contains(errOut, "API token in CANARYD_TOKEN") || strings.Contains(errOut, botToken) {
		t.Fatalf("telegram without an API token: exit %d, %s", code, errOut)
	}
	code, _, errOut = run(t, srv, nil, "alerts", "test")
	if code != 1 || !strings.Contains(errOut, "no active channel") {
		t.Fatalf("test without channels: exit %d, %s", code, errOut)
	}
}
