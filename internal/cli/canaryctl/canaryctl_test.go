package canaryctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/api/apitest"
	"github.com/canaryd/canaryd/internal/api/wire"
	"github.com/canaryd/canaryd/internal/cli/canaryctl"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env map[string]string

func (e env) get(k string) string { return e[k] }

// run runs canaryctl in-process against srv with the admin token from the
// environment.
func run(t *testing.T, srv *apitest.Server, e env, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if e == nil {
		e = env{"CANARYD_ADDR": srv.URL, "CANARYD_TOKEN": apitest.AdminToken}
	}
	var out, errb bytes.Buffer
	code = canaryctl.Run(context.Background(), args, &out, &errb, e.get)
	return code, out.String(), errb.String()
}

var (
	timeRe = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`)
	agoRe  = regexp.MustCompile(`\b\d[smh] ago`)
)

// golden compares out, with times normalised, with testdata/NAME.golden.
func golden(t *testing.T, name, out string) {
	t.Helper()
	// same widths, so columns stay aligned
	out = agoRe.ReplaceAllString(timeRe.ReplaceAllString(out, "YYYY-MM-DD hh:mm:ss"), "Ns ago")
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if out != string(want) {
		t.Errorf("%s: output differs from %s:\n--- got\n%s--- want\n%s", name, path, out, want)
	}
}

// A release as an operator runs it, command by command: exit code, output
// (golden), and what the server ends up with.
func TestRelease(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	steps := []struct {
		name   string
		args   []string
		code   int
		golden bool   // compare stdout with testdata/NAME.golden
		stderr string // must appear in stderr
	}{
		{"status-all", []string{"status"}, 0, true, ""},
		{"register", []string{"builds", "register", "api", "--id", "44", "--version", "1.3.0", "--endpoint", "127.0.0.1:9044", "--ttl", "30s", "--label", "git=4f2a1c", "--changelog", "faster search"}, 0, true, ""},
		{"heartbeat", []string{"builds", "heartbeat", "api", "44", "--endpoint", "127.0.0.1:9044"}, 0, false, ""},
		{"heartbeat-unknown", []string{"builds", "heartbeat", "api", "44", "--endpoint", "127.0.0.1:1"}, 3, false, "register again"},
		{"register-again", []string{"builds", "register", "api", "--id", "44", "--version", "1.3.0", "--endpoint", "127.0.0.1:9044"}, 0, false, ""},
		{"canary-start", []string{"canary", "start", "api", "--build", "44", "--traffic", "10", "--reason", "ticket 812"}, 0, true, ""},
		{"traffic", []string{"traffic", "api", "30%"}, 0, true, ""},
		{"second-canary", []string{"canary", "start", "api", "--build", "43"}, 4, false, "roll it back first, or start with replace"},
		{"status-api", []string{"status", "api"}, 0, true, ""},
		{"pause", []string{"pause", "api"}, 0, true, ""},
		{"pause-again", []string{"pause", "api"}, 4, false, "already paused"},
		{"resume", []string{"resume", "api"}, 0, false, ""},
		{"promote", []string{"promote", "api", "--reason", "error rate and p99 unchanged"}, 0, true, ""},
		{"rollback-nothing", []string{"rollback", "api"}, 4, false, "nothing to roll back"},
		{"delete-old-stable", []string{"builds", "delete", "api", "41", "--reason", "superseded"}, 0, true, ""},
		{"delete-stable", []string{"builds", "delete", "api", "44"}, 4, false, "only a deployed build can be deleted"},
		{"builds-list", []string{"builds", "list", "api"}, 0, true, ""},
		{"set-stable", []string{"builds", "set-stable", "web", "7"}, 0, true, ""},
		{"cohort-fresh", []string{"cohort", "fresh", "api"}, 0, false, ""},
		{"cohort-reset", []string{"cohort", "reset", "api"}, 0, false, ""},
		{"canary-rollback", []string{"canary", "start", "api", "--build", "42", "--traffic", "5", "--fresh-cohort"}, 0, false, ""},
		{"rollback", []string{"rollback", "api", "--reason", "p99 doubled"}, 0, true, ""},
		{"events", []string{"events", "api", "--limit", "8"}, 0, true, ""},
		{"not-found", []string{"status", "nosuch"}, 3, false, `service "nosuch": not found`},
		{"build-not-found", []string{"canary", "start", "api", "--build", "999"}, 3, false, "not found"},
		{"traffic-no-canary", []string{"traffic", "api", "10"}, 4, false, "start a canary first"},
		{"usage-percent", []string{"traffic", "api", "abc"}, 2, false, "want a percentage"},
		{"usage-101", []string{"traffic", "api", "101"}, 2, false, "want a percentage"},
		{"usage-build", []string{"canary", "start", "api"}, 2, false, "--build is required"},
		{"usage-args", []string{"promote"}, 2, false, "accepts 1 arg"},
		{"usage-output", []string{"status", "-o", "yaml"}, 2, false, `want table or json`},
		{"usage-command", []string{"deploy"}, 2, false, "unknown command"},
		{"usage-sub", []string{"builds"}, 2, false, "needs a subcommand"},
		{"usage-label", []string{"builds", "register", "api", "--id", "9", "--label", "nokey"}, 2, false, "want KEY=VALUE"},
		{"deregister", []string{"builds", "deregister", "api", "43", "--endpoint", "127.0.0.1:9003"}, 0, false, ""},
		{"usage-endpoint", []string{"builds", "heartbeat", "api", "43"}, 2, false, "--endpoint is required"},
		{"server-field", []string{"builds", "register", "api", "--id", "9", "--endpoint", "nohost"}, 1, false, "endpoints[0]"},
	}
	for _, st := range steps {
		code, out, errOut := run(t, srv, nil, st.args...)
		if code != st.code {
			t.Fatalf("%s: canaryctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", st.name, strings.Join(st.args, " "), code, st.code, out, errOut)
		}
		if !strings.Contains(errOut, st.stderr) {
			t.Errorf("%s: stderr %q does not say %q", st.name, errOut, st.stderr)
		}
		if st.golden {
			golden(t, st.name, out)
		}
	}
	// -o json is the API's answer, parseable.
	code, out, _ := run(t, srv, nil, "status", "api", "-o", "json")
	var s wire.Service
	if err := json.Unmarshal([]byte(out), &s); code != 0 || err != nil {
		t.Fatalf("status -o json: %d %v\n%s", code, err, out)
	}
	if s.Stable != "44" || s.Canary != "" || len(s.Builds) != 4 {
		t.Fatalf("%+v", s)
	}
	code, out, _ = run(t, srv, nil, "builds", "list", "--state", "deleted", "-o", "json")
	var bl wire.BuildList
	if err := json.Unmarshal([]byte(out), &bl); code != 0 || err != nil || len(bl.Builds) != 1 || bl.Builds[0].ID != "41" {
		t.Fatalf("builds list -o json: %d %v\n%s", code, err, out)
	}
	code, out, _ = run(t, srv, nil, "events", "-o", "json", "--type", "release.promoted")
	var page wire.EventPage
	if err := json.Unmarshal([]byte(out), &page); code != 0 || err != nil || len(page.Events) != 1 || page.Events[0].Actor != "alice" {
		t.Fatalf("events -o json: %d %v\n%s", code, err, out)
	}
	code, out, _ = run(t, srv, nil, "traffic", "web", "5", "-o", "json")
	if code != 4 || out != "" {
		t.Fatalf("a failed command printed %q (exit %d)", out, code)
	}
}

// Tokens and addresses come from flags or the environment; errors say
// what to do.
func TestAuthAndAddress(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	for _, tc := range []struct {
		name   string
		env    env
		args   []string
		code   int
		stderr string
	}{
		{"flags", env{}, []string{"--server", srv.URL, "--token", apitest.ViewerToken, "status"}, 0, ""},
		{"flag beats env", env{"CANARYD_ADDR": "http://127.0.0.1:1", "CANARYD_TOKEN": "wrong"}, []string{"--server", srv.URL, "--token", apitest.ViewerToken, "status"}, 0, ""},
		{"bare host:port", env{"CANARYD_ADDR": strings.TrimPrefix(srv.URL, "http://"), "CANARYD_TOKEN": apitest.ViewerToken}, []string{"status"}, 0, ""},
		{"no token", env{"CANARYD_ADDR": srv.URL}, []string{"status"}, 1, "--token or CANARYD_TOKEN"},
		{"wrong token", env{"CANARYD_ADDR": srv.URL, "CANARYD_TOKEN": "nope"}, []string{"status"}, 1, "bearer token"},
		{"viewer changes", env{"CANARYD_ADDR": srv.URL, "CANARYD_TOKEN": apitest.ViewerToken}, []string{"promote", "api"}, 1, "admin role"},
		{"unreachable", env{"CANARYD_ADDR": "http://127.0.0.1:1", "CANARYD_TOKEN": "x"}, []string{"status"}, 1, "cannot reach canaryd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := run(t, srv, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tc.code, errOut, tc.stderr)
			}
		})
	}
}

// --if-revision refuses a change over a revision that is no longer current.
func TestIfRevision(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	_, out, _ := run(t, srv, nil, "status", "api", "-o", "json")
	var s wire.Service
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	rev := strings.TrimSpace(strings.Split(strings.Split(out, `"revision": `)[1], ",")[0])
	if code, _, errOut := run(t, srv, nil, "canary", "start", "api", "--build", "42", "--if-revision", rev); code != 0 {
		t.Fatalf("current revision: %d %s", code, errOut)
	}
	code, _, errOut := run(t, srv, nil, "traffic", "api", "50", "--if-revision", rev)
	if code != 4 || !strings.Contains(errOut, "changed since you read it") || !strings.Contains(errOut, "canaryctl status") {
		t.Fatalf("stale revision: %d %s", code, errOut)
	}
}

// follow runs a command that follows the server until cancelled, and
// returns its output once it has want times the text wanted.
func follow(t *testing.T, srv *apitest.Server, want string, times int, trigger func(), args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	e := env{"CANARYD_ADDR": srv.URL, "CANARYD_TOKEN": apitest.ViewerToken}
	done := make(chan int, 1)
	go func() { done <- canaryctl.Run(ctx, args, &out, &errb, e.get) }()
	deadline := time.Now().Add(10 * time.Second)
	next := time.Now()
	for strings.Count(out.String(), want) < times {
		if time.Now().After(deadline) {
			t.Fatalf("canaryctl %s: no %q in\n%s\nstderr: %s", strings.Join(args, " "), want, out.String(), errb.String())
		}
		if time.Now().After(next) { // the stream may not be open yet: trigger until seen
			trigger()
			next = time.Now().Add(300 * time.Millisecond)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d after interrupt; stderr %s", code, errb.String())
	}
	return out.String()
}

func TestFollow(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	run(t, srv, nil, "canary", "start", "api", "--build", "42", "--traffic", "1")
	traffic := 1
	bump := func() {
		traffic++
		if code, _, errOut := run(t, srv, nil, "traffic", "api", itoa(traffic)); code != 0 {
			t.Errorf("traffic: %s", errOut)
		}
	}
	out := follow(t, srv, "now gets 2%", 1, bump, "events", "api", "-f")
	if !strings.Contains(out, "canary 42 (1.1.0) started at 1%") {
		t.Errorf("events -f did not list the past first:\n%s", out)
	}
	out = follow(t, srv, `"type":"traffic.changed"`, 1, bump, "events", "api", "-f", "-o", "json", "--type", "traffic.changed")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("events -f -o json line %q: %v", line, err)
		}
	}
	out = follow(t, srv, "service:   api", 2, bump, "status", "api", "--watch")
	if !strings.Contains(out, "traffic.changed 42 by alice") {
		t.Errorf("status --watch did not say what changed:\n%s", out)
	}
}

func TestCompletion(t *testing.T) {
	srv := apitest.New(t, apitest.Options{})
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, _ := run(t, srv, nil, "completion", sh)
		if code != 0 || !strings.Contains(out, "canaryctl") {
			t.Fatalf("completion %s: exit %d", sh, code)
		}
	}
	// service names come from the server
	code, out, _ := run(t, srv, nil, "__complete", "promote", "")
	if code != 0 || !strings.Contains(out, "api\nweb\n") {
		t.Fatalf("__complete promote: %d %q", code, out)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
