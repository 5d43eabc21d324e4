package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/control"
	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/notify"
	"github.com/canaryd/canaryd/internal/release"
	"github.com/canaryd/canaryd/internal/server"
	"github.com/canaryd/canaryd/internal/store"
	"github.com/canaryd/canaryd/internal/store/sqlite"
)

// Options configure a demo run.
type Options struct {
	Listen, Admin   string        // gateway and admin addresses
	Faulty          bool          // the canary fails on purpose
	CanaryErrorRate float64       // share of canary requests answered 500 (default 0, or 0.15 with Faulty)
	CanaryLatency   time.Duration // added to every canary request
	BaseErrorRate   float64       // errors of both builds (default 0.002)
	Users           int           // synthetic users (default 2000)
	Think           time.Duration // mean gap between a user's requests (default 1s)
	Step            time.Duration // bake time per step (default 4s)
	Timeout         time.Duration // give up after this (default 3m)
	Forever         bool          // keep serving after the release ends, until ctx ends
	// LogLevel of the gateway's own log lines in the output (default warn).
	LogLevel slog.Level
}

func (o *Options) defaults() {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:8080"
	}
	if o.Admin == "" {
		o.Admin = "127.0.0.1:8081"
	}
	if o.Faulty && o.CanaryErrorRate == 0 {
		o.CanaryErrorRate = 0.15
	}
	if o.BaseErrorRate == 0 {
		o.BaseErrorRate = 0.002
	}
	if o.Users <= 0 {
		o.Users = 2000
	}
	if o.Think <= 0 {
		o.Think = time.Second
	}
	if o.Step <= 0 {
		o.Step = 4 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Minute
	}
	if o.LogLevel == 0 {
		o.LogLevel = slog.LevelWarn
	}
}

// Result is how the demo release ended.
type Result struct {
	Outcome  store.ReleaseStatus
	Duration time.Duration
	Events   []event.Event
}

const service = "shop"

// Run performs the demo: it prints progress to out and returns how the
// release ended. Everything it starts is stopped and its temporary
// directory removed before it returns.
func Run(ctx context.Context, o Options, out io.Writer) (Result, error) {
	o.defaults()
	dir, err := os.MkdirTemp("", "canaryd-demo-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)

	stable := &App{Build: "41", Version: "1.4.0", ErrorRate: o.BaseErrorRate}
	canary := &App{Build: "42", Version: "1.5.0", ErrorRate: o.BaseErrorRate + o.CanaryErrorRate, Latency: o.CanaryLatency}
	for _, a := range []*App{stable, canary} {
		if err := a.Start("127.0.0.1:0"); err != nil {
			return Result{}, fmt.Errorf("demo backend: %w", err)
		}
		defer a.Close()
	}
	token := randomToken()
	cfg, err := config.Parse([]byte(demoConfig(o, dir, token, stable.Addr(), canary.Addr())), "demo", os.LookupEnv)
	if err != nil {
		return Result{}, fmt.Errorf("demo config: %w", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "canaryd.db"), sqlite.Options{})
	if err != nil {
		return Result{}, err
	}
	defer st.Close()
	plane := control.New(st, control.Options{})
	// Warnings and errors of the gateway go to the demo's output: a demo
	// that hides why it stalls helps nobody.
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: o.LogLevel}))
	srv, err := server.New(ctx, cfg, server.Options{Plane: plane, Logger: log})
	if err != nil {
		return Result{}, fmt.Errorf("demo: %w (choose other ports with --listen and --admin)", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()

	fmt.Fprintf(out, `canaryd demo: a release of service %q, build 42 (v1.5.0) replacing build 41 (v1.4.0)
  gateway   http://%s      try: curl -H 'X-User-ID: alice' http://%s/api/items
  admin     http://%s      metrics: curl http://%s/metrics
  token     %s
            export CANARYD_ADDR=http://%s CANARYD_TOKEN=%s
  canary    %s
  users     %d synthetic users, one request every %s on average; steps 5 → 10 → 30 → 50 → 75 → 100 %%, %s each

`, service, srv.DataAddr(), srv.DataAddr(), srv.AdminAddr(), srv.AdminAddr(), token, srv.AdminAddr(), token,
		describeCanary(o), o.Users, o.Think, o.Step)

	pop := &Population{Users: o.Users, Think: o.Think, Target: "http://" + srv.DataAddr()}
	popDone := make(chan struct{})
	go func() { pop.Run(ctx); close(popDone) }()
	defer func() { cancel(); <-popDone }()

	started := time.Now()
	time.Sleep(2 * time.Second) // let stable traffic set the baseline
	if _, err := plane.StartCanary(ctx, "demo", service, "42", control.StartOptions{Traffic: 5, Reason: "demo release of v1.5.0"}); err != nil {
		return Result{}, err
	}
	res, err := watch(ctx, srv, o, out, started)
	if err != nil {
		return res, err
	}
	story(out, res)
	if o.Forever {
		fmt.Fprintln(out, "\nserving on (--forever); Ctrl-C to stop")
		<-ctx.Done()
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return res, err
	}
	return res, nil
}

// watch prints one line a second and every event as the alert it would
// send, until the release ends.
func watch(ctx context.Context, srv *server.Server, o Options, out io.Writer, started time.Time) (Result, error) {
	var lastID int64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.After(o.Timeout)
	res := Result{}
	for {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-deadline:
			return res, fmt.Errorf("demo: the release did not end within %s", o.Timeout)
		case <-tick.C:
		}
		evs, err := newEvents(ctx, srv, lastID)
		if err != nil {
			return res, err
		}
		for _, ev := range evs {
			lastID = ev.ID
			res.Events = append(res.Events, ev)
			printAlert(out, ev)
		}
		if st, ok := srv.Releases().Status(service); ok {
			fmt.Fprintln(out, progress(st, srv, time.Since(started)))
		}
		if paused(ctx, srv) {
			// A step that stays inconclusive too long pauses the release for
			// a person to look at; the demo plays that person.
			fmt.Fprintln(out, "  (the release paused; the demo resumes it, as you would with: canaryctl resume "+service+")")
			if _, err := srv.Plane().SetPaused(ctx, "demo", service, false, "resumed by the demo"); err != nil && !errors.Is(err, control.ErrIllegal) {
				return res, err
			}
		}
		if outcome, ended := releaseEnded(ctx, srv); ended {
			// Collect the events of the end itself.
			evs, _ := newEvents(ctx, srv, lastID)
			for _, ev := range evs {
				res.Events = append(res.Events, ev)
				printAlert(out, ev)
			}
			res.Outcome, res.Duration = outcome, time.Since(started)
			return res, nil
		}
	}
}

func newEvents(ctx context.Context, srv *server.Server, after int64) ([]event.Event, error) {
	var evs []event.Event
	err := srv.Plane().Store().View(ctx, func(r store.Reader) error {
		var err error
		evs, err = r.ListEvents(ctx, store.EventQuery{Service: service, AfterID: after})
		return err
	})
	return evs, err
}

func paused(ctx context.Context, srv *server.Server) bool {
	var p bool
	_ = srv.Plane().Store().View(ctx, func(r store.Reader) error {
		svc, err := r.GetService(ctx, service)
		p = err == nil && svc.Paused
		return err
	})
	return p
}

func releaseEnded(ctx context.Context, srv *server.Server) (store.ReleaseStatus, bool) {
	var recs []store.Release
	_ = srv.Plane().Store().View(ctx, func(r store.Reader) error {
		var err error
		recs, err = r.ListReleases(ctx, store.ReleaseFilter{Service: service, Limit: 1})
		return err
	})
	if len(recs) == 0 || recs[0].Status.Active() {
		return "", false
	}
	return recs[0].Status, true
}

func progress(st release.Status, srv *server.Server, elapsed time.Duration) string {
	step := "—"
	if st.Step >= 0 && st.Step < len(st.Steps) {
		step = fmt.Sprintf("step %d/%d at %g%%", st.Step+1, len(st.Steps), st.Steps[st.Step])
	}
	verdict := "waiting for data"
	if st.Verdict != nil {
		verdict = string(st.Verdict.Outcome)
	}
	var canaryReq, canaryErr, stableReq, stableErr uint64
	for _, bm := range srv.Metrics().Builds(service) {
		t := bm.Totals()
		switch bm.Build() {
		case "42":
			canaryReq, canaryErr = t.Requests(), t.Errors()
		case "41":
			stableReq, stableErr = t.Requests(), t.Errors()
		}
	}
	return fmt.Sprintf("[%5.1fs] %-18s verdict %-12s users on canary %4.0f  harmed %3.0f  canary %6d req %5.2f%% err  stable %6d req %5.2f%% err",
		elapsed.Seconds(), step, verdict, st.Exposed, st.Harmed, canaryReq, pct(canaryErr, canaryReq), stableReq, pct(stableErr, stableReq))
}

func pct(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func printAlert(out io.Writer, ev event.Event) {
	if ev.Actor == "config" {
		return
	}
	text := notify.NewMessage(ev, "").PlainText()
	fmt.Fprintf(out, "\n  ┌ alert (would go to Slack, Telegram, e-mail, webhooks)\n")
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		fmt.Fprintf(out, "  │ %s\n", line)
	}
	fmt.Fprintf(out, "  └\n\n")
}

// story tells what happened, with the figures.
func story(out io.Writer, res Result) {
	fmt.Fprintf(out, "\nWhat happened (%.0f s):\n", res.Duration.Seconds())
	var t0 time.Time
	for _, ev := range res.Events {
		if ev.Actor == "config" {
			continue
		}
		if t0.IsZero() {
			t0 = ev.Time
		}
		line := fmt.Sprintf("  +%5.1fs  %-20s by %-10s", ev.Time.Sub(t0).Seconds(), ev.Type, ev.Actor)
		if tr := ev.Details["traffic"]; tr != "" && ev.Type == event.TrafficChanged {
			line += " → " + tr
		}
		if ev.Reason != "" {
			r := ev.Reason
			if len(r) > 160 {
				r = r[:157] + "..."
			}
			line += "  " + r
		}
		fmt.Fprintln(out, line)
	}
	switch res.Outcome {
	case store.ReleasePromoted:
		fmt.Fprintln(out, "\nOutcome: PROMOTED — build 42 (v1.5.0) is now stable for every user.")
	case store.ReleaseRolledBack:
		fmt.Fprintln(out, "\nOutcome: ROLLED BACK — every user is back on build 41 (v1.4.0); the judge's reason is above.")
	default:
		fmt.Fprintf(out, "\nOutcome: %s\n", res.Outcome)
	}
}

func describeCanary(o Options) string {
	if o.CanaryErrorRate == 0 && o.CanaryLatency == 0 {
		return "healthy (same error rate and latency as stable): expect a promotion"
	}
	return fmt.Sprintf("faulty: +%.1f %% errors, +%s latency: expect an automatic rollback", 100*o.CanaryErrorRate, o.CanaryLatency)
}

func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func demoConfig(o Options, dir, token, stable, canary string) string {
	return fmt.Sprintf(`listen: %s
admin:
  listen: %s
  tokens: [{name: demo, role: admin, value: %q}]
store: sqlite://%s/canaryd.db
services:
  - name: %s
    match: {path_prefix: /}
    user: {header: X-User-ID}
    routing: sticky
    health: {path: /health, interval: 2s, timeout: 1s}
    builds:
      - {id: "41", version: 1.4.0, state: stable, endpoints: [%s]}
      - {id: "42", version: 1.5.0, endpoints: [%s], changelog: "checkout: faster cart totals"}
    release:
      steps: [5, 10, 30, 50, 75, 100]
      step_duration: %s
      max_step_duration: %s
      analysis: {interval: 10s, min_samples: 50, max_error_rate_delta: 2%%, max_users_harmed: 600}
`, o.Listen, o.Admin, token, dir, service, stable, canary, o.Step, max(60*time.Second, 15*o.Step))
}
