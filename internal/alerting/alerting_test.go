package alerting

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/control"
	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/notify"
	"github.com/canaryd/canaryd/internal/notify/notifytest"
	"github.com/canaryd/canaryd/internal/notify/webhook"
	"github.com/canaryd/canaryd/internal/store"
)

// fast tunes the Dispatcher for tests on the wall clock: quick polls and
// retries, and no attempt limit within a test's lifetime.
var fast = notify.Options{Poll: 20 * time.Millisecond, GroupWait: -1, BackoffBase: 20 * time.Millisecond,
	BackoffMax: 100 * time.Millisecond, MaxAttempts: 1000}

func slackConfig(peer *notifytest.Slack, mod func(*notify.ChannelConfig)) *config.Alerts {
	c := notify.ChannelConfig{Name: "ops", Kind: notify.KindSlack, URL: notify.Secret(peer.WebhookURL()), Throttle: -1, RatePerMinute: -1}
	if mod != nil {
		mod(&c)
	}
	return &config.Alerts{Channels: []notify.ChannelConfig{c}, UIURL: "https://canaryd.example.com"}
}

// run starts s.Run and returns a function that stops it and waits.
func run(t *testing.T, s *Service) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func newService(t *testing.T, o Options) *Service {
	t.Helper()
	if o.Dispatch.Poll == 0 {
		o.Dispatch = fast
	}
	s, err := New(t.Context(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func appendEvents(t *testing.T, st store.Store, evs ...event.Event) {
	t.Helper()
	err := st.Update(t.Context(), func(tx store.Tx) error {
		for _, ev := range evs {
			if _, err := tx.AppendEvent(t.Context(), ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("append events: %v", err)
	}
}

func failure(i int) event.Event {
	return event.Event{Service: "api", Type: event.RolledBack, Severity: event.Critical, Actor: "controller",
		Build: "42", Reason: fmt.Sprintf("marker-%03d errors: 14 > 10", i)}
}

// slackText is every text of a Slack message, as Slack would show it
// before unescaping entities.
func slackText(r notifytest.SlackRequest) string {
	parts := []string{r.Text}
	for _, b := range r.Blocks {
		if b.Text != nil {
			parts = append(parts, b.Text.Text)
		}
		for _, f := range append(b.Fields, b.Elements...) {
			parts = append(parts, f.Text)
		}
	}
	return strings.Join(parts, "\n")
}

var markerRE = regexp.MustCompile(`marker-\d{3}`)

// markers counts, per marker, the Slack requests that carried it.
func markers(peer *notifytest.Slack) map[string]int {
	got := map[string]int{}
	for _, r := range peer.Requests() {
		if m := markerRE.Find(r.Raw); m != nil {
			got[string(m)]++
		}
	}
	return got
}

func allDelivered(t *testing.T, peer *notifytest.Slack, n int) {
	t.Helper()
	got := markers(peer)
	for i := range n {
		if k := fmt.Sprintf("marker-%03d", i); got[k] != 1 {
			t.Errorf("%s delivered %d times, want 1", k, got[k])
		}
	}
	if len(got) != n {
		t.Errorf("%d distinct alerts delivered, want %d", len(got), n)
	}
}

// TestRollbackReachesSlack: an event appended through the control plane
// becomes a Slack message on a real loopback peer, on both stores.
func TestRollbackReachesSlack(t *testing.T) {
	for _, b := range backends(nil) {
		t.Run(b.name, func(t *testing.T) {
			st, _ := b.open(t)
			ctx := t.Context()
			err := st.Update(ctx, func(tx store.Tx) error {
				if _, err := tx.PutService(ctx, store.Service{Name: "api", Canary: "42", Traffic: 30}); err != nil {
					return err
				}
				if _, err := tx.PutBuild(ctx, store.Build{Service: "api", ID: "41", Version: "1.2.2", State: store.StateStable}); err != nil {
					return err
				}
				_, err := tx.PutBuild(ctx, store.Build{Service: "api", ID: "42", Version: "1.2.3", State: store.StateCanary})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			peer := notifytest.NewSlack(t)
			s := newService(t, Options{Store: st, Config: slackConfig(peer, nil)})
			run(t, s)
			if _, err := control.New(st, control.Options{}).Rollback(ctx, "alice", "api", "errors: 14 > 10"); err != nil {
				t.Fatalf("Rollback: %v", err)
			}
			waitFor(t, "the rollback alert", 10*time.Second, func() bool { return len(peer.Requests()) > 0 })
			text := slackText(peer.Requests()[0])
			for _, want := range []string{"api: canary 42 (1.2.3) rolled back", "errors: 14 &gt; 10", "Traffic*\n30%", "https://canaryd.example.com/services/api"} {
				if !strings.Contains(text, want) {
					t.Errorf("Slack message lacks %q:\n%s", want, text)
				}
			}
		})
	}
}

// TestOutage: the provider is down while alerts are raised, then comes
// back. Every alert arrives exactly once and nothing is dead.
func TestOutage(t *testing.T) {
	const n = 20
	for _, b := range backends(nil) {
		t.Run(b.name, func(t *testing.T) {
			st, _ := b.open(t)
			peer := notifytest.NewSlack(t)
			peer.Down()
			s := newService(t, Options{Store: st, Config: slackConfig(peer, nil)})
			run(t, s)
			for i := range n {
				appendEvents(t, st, failure(i))
			}
			waitFor(t, "failed attempts during the outage", 10*time.Second, func() bool {
				ds, err := s.Outbox().List(t.Context(), store.AlertQuery{})
				if err != nil {
					t.Fatal(err)
				}
				tries := 0
				for _, d := range ds {
					tries += d.Attempts
				}
				return len(ds) == n && tries >= 3
			})
			if got := len(peer.Requests()); got != 0 {
				t.Fatalf("peer down but %d requests arrived", got)
			}
			peer.Up()
			waitFor(t, "every alert after the outage", 15*time.Second, func() bool { return len(markers(peer)) == n })
			time.Sleep(200 * time.Millisecond) // room for a duplicate to show
			allDelivered(t, peer, n)
			ds, err := s.Outbox().List(t.Context(), store.AlertQuery{})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				if d.State != notify.StateSent {
					t.Errorf("delivery %d (%s) is %s: %s", d.ID, d.Message.Reason, d.State, d.LastError)
				}
				if bytes.Contains([]byte(d.LastError), []byte("s3cr3tW3bh00kT0k3n")) {
					t.Errorf("last error reveals the webhook secret: %s", d.LastError)
				}
			}
		})
	}
}

// TestRestartMidDelivery stops the service and closes the SQLite store
// while alerts are going out, appends more events while it is down, and
// reopens both: every alert arrives, at most the one in flight at the stop
// twice (the stated at-least-once policy).
func TestRestartMidDelivery(t *testing.T) {
	const first, later = 30, 10
	b := backends(nil)[0]
	st, reopen := b.open(t)
	peer := notifytest.NewSlack(t)
	// 20 alerts a second, so the stop lands in the middle.
	cfg := slackConfig(peer, func(c *notify.ChannelConfig) { c.RatePerMinute, c.Burst = 1200, 1 })
	s := newService(t, Options{Store: st, Config: cfg})
	stop := run(t, s)
	for i := range first {
		appendEvents(t, st, failure(i))
	}
	waitFor(t, "some alerts before the restart", 10*time.Second, func() bool { return len(peer.Requests()) >= 8 })
	stop()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	sent := len(peer.Requests())
	if sent >= first {
		t.Fatalf("all %d alerts went out before the restart; the test did not stop mid-delivery", sent)
	}
	t.Logf("restart after %d of %d alerts", sent, first)

	st2 := reopen(t)
	for i := first; i < first+later; i++ {
		appendEvents(t, st2, failure(i))
	}
	s2 := newService(t, Options{Store: st2, Config: cfg})
	run(t, s2)
	waitFor(t, "every alert after the restart", 15*time.Second, func() bool { return len(markers(peer)) == first+later })
	time.Sleep(200 * time.Millisecond)
	got := markers(peer)
	dups := 0
	for i := range first + later {
		k := fmt.Sprintf("marker-%03d", i)
		switch c := got[k]; {
		case c == 0:
			t.Errorf("%s lost", k)
		case c > 1:
			dups += c - 1
		}
	}
	if dups > 1 {
		t.Errorf("%d duplicates, want at most the one in flight at the stop", dups)
	}
}

// TestFlood: 1 000 identical failures become one alert with a count. The
// dispatcher runs on a manual clock, so however long the flood takes to
// append, it falls within one group wait.
func TestFlood(t *testing.T) {
	const n = 1000
	b := backends(nil)[0]
	st, _ := b.open(t)
	peer := notifytest.NewSlack(t)
	clock := notifytest.NewClock(time.Now())
	o := fast
	o.GroupWait = 2 * time.Second // the default
	cfg := slackConfig(peer, func(c *notify.ChannelConfig) { c.Throttle = 10 * time.Minute })
	s := newService(t, Options{Store: st, Config: cfg, Dispatch: o, Now: clock.Now})
	run(t, s)
	ev := failure(0)
	for range n / 100 {
		evs := make([]event.Event, 100)
		for i := range evs {
			evs[i] = ev
		}
		appendEvents(t, st, evs...)
	}
	waitFor(t, "the flood to be queued", 10*time.Second, func() bool {
		ds, _ := s.Outbox().List(t.Context(), store.AlertQuery{})
		return len(ds) == 1 && ds[0].Count == n
	})
	if got := len(peer.Requests()); got != 0 {
		t.Fatalf("%d alerts before the group wait ended", got)
	}
	clock.Advance(o.GroupWait)
	waitFor(t, "the flood alert", 10*time.Second, func() bool { return len(peer.Requests()) > 0 })
	time.Sleep(200 * time.Millisecond) // a second alert would be a bug
	reqs := peer.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d alerts for %d identical failures, want 1", len(reqs), n)
	}
	if text := slackText(reqs[0]); !strings.Contains(text, "rolled back (×1000)") || !strings.Contains(text, "1000 times between") {
		t.Errorf("alert does not carry the count:\n%s", text)
	}
	ds, _ := s.Outbox().List(t.Context(), store.AlertQuery{})
	if len(ds) != 1 || ds[0].Count != n || ds[0].State != notify.StateSent {
		t.Errorf("outbox %+v, want one sent delivery with count %d", ds, n)
	}
	// Repeats inside the throttle window wait, merged, for its end.
	appendEvents(t, st, ev, ev, ev)
	waitFor(t, "the repeats to be held", 10*time.Second, func() bool {
		ds, _ := s.Outbox().List(t.Context(), store.AlertQuery{States: []store.AlertState{store.AlertPending}})
		return len(ds) == 1 && ds[0].Count == 3
	})
	clock.Advance(9 * time.Minute)
	time.Sleep(200 * time.Millisecond)
	if got := len(peer.Requests()); got != 1 {
		t.Fatalf("repeat inside the throttle window sent early (%d alerts)", got)
	}
	clock.Advance(time.Minute + time.Second)
	waitFor(t, "the follow-up alert", 10*time.Second, func() bool { return len(peer.Requests()) == 2 })
	if text := slackText(peer.Requests()[1]); !strings.Contains(text, "(×3)") {
		t.Errorf("follow-up does not carry the count 3:\n%s", text)
	}
}

// TestReplicasEnqueueOnce: two services on one PostgreSQL database follow
// the same event log; each event is alerted once, not once per replica.
func TestReplicasEnqueueOnce(t *testing.T) {
	const n = 30
	b := backends(nil)[1]
	st, reopen := b.open(t)
	st2 := reopen(t)
	peer := notifytest.NewSlack(t)
	cfg := slackConfig(peer, nil)
	run(t, newService(t, Options{Store: st, Config: cfg}))
	run(t, newService(t, Options{Store: st2, Config: cfg}))
	for i := range n {
		if i%2 == 0 {
			appendEvents(t, st, failure(i))
		} else {
			appendEvents(t, st2, failure(i))
		}
	}
	waitFor(t, "every alert", 15*time.Second, func() bool { return len(markers(peer)) == n })
	time.Sleep(300 * time.Millisecond)
	allDelivered(t, peer, n)
}

// TestEveryProvider: one event reaches Telegram (its own forum topic per
// service), e-mail over STARTTLS with AUTH, and a signed webhook, through
// the store's outbox: the message survives the JSON round trip for each.
func TestEveryProvider(t *testing.T) {
	st, _ := backends(nil)[0].open(t)
	const token = "123456:telegram-bot-token-secret"
	tg := notifytest.NewTelegram(t, token)
	mail := notifytest.NewSMTP(t, "alerts", "smtp-password-secret")
	hook := notifytest.NewWebhook(t)
	cfg := &config.Alerts{Channels: []notify.ChannelConfig{
		{Name: "tg", Kind: notify.KindTelegram, Token: token, ChatID: "-100123", Threads: map[string]int64{"api": 12}, BaseURL: tg.BaseURL()},
		{Name: "mail", Kind: notify.KindEmail, SMTP: mail.Addr(), Username: "alerts", Password: "smtp-password-secret",
			From: "canaryd <canaryd@example.com>", To: []string{"oncall@example.com"}},
		{Name: "hook", Kind: notify.KindWebhook, URL: notify.Secret(hook.URL() + "/in"), Secret: "hmac-secret"},
	}}
	s := newService(t, Options{Store: st, Config: cfg, TLSConfig: &tls.Config{RootCAs: mail.RootCAs()}})
	run(t, s)
	appendEvents(t, st, event.Event{Service: "api", Type: event.Promoted, Severity: event.Info, Actor: "controller", Build: "42",
		Details: map[string]string{notify.DetailVersion: "1.2.3", notify.DetailChangelog: "fix <login> & logout"}})
	waitFor(t, "all three providers", 10*time.Second, func() bool {
		return len(tg.Messages()) == 1 && len(mail.Messages()) == 1 && len(hook.Requests()) == 1
	})
	if m := tg.Messages()[0]; m.ThreadID != 12 || !strings.Contains(m.Plain, "api: 42 (1.2.3) promoted to stable") || !strings.Contains(m.Plain, "fix <login> & logout") {
		t.Errorf("telegram message %+v", m)
	}
	if m := mail.Messages()[0]; !m.TLS || m.User != "alerts" || !strings.Contains(m.Subject, "promoted to stable") || !strings.Contains(m.Text, "fix <login> & logout") {
		t.Errorf("mail: tls %v user %q subject %q text %q", m.TLS, m.User, m.Subject, m.Text)
	}
	r := hook.Requests()[0]
	if err := webhook.Verify("hmac-secret", r.Header, r.Body, time.Now(), 5*time.Minute); err != nil {
		t.Errorf("webhook signature: %v", err)
	}
}

// TestDeadAndReplay: a permanent error kills an alert at once; it stays
// listed with its error until replayed, then goes out.
func TestDeadAndReplay(t *testing.T) {
	st, _ := backends(nil)[0].open(t)
	peer := notifytest.NewSlack(t)
	peer.Fail(1, 404, "channel_not_found")
	s := newService(t, Options{Store: st, Config: slackConfig(peer, nil)})
	run(t, s)
	appendEvents(t, st, failure(7))
	var dead []notify.Delivery
	waitFor(t, "the alert to go dead", 10*time.Second, func() bool {
		var err error
		dead, err = s.Dead(t.Context(), 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(dead) == 1
	})
	if d := dead[0]; d.Attempts != 1 || !strings.Contains(d.LastError, "channel_not_found") || strings.Contains(d.LastError, "s3cr3tW3bh00kT0k3n") {
		t.Errorf("dead alert %+v", d)
	}
	if err := s.Replay(t.Context(), 999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Replay(unknown) = %v", err)
	}
	if err := s.Replay(t.Context(), dead[0].ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replayed alert", 10*time.Second, func() bool { return markers(peer)["marker-007"] == 1 })
	if err := s.Replay(t.Context(), dead[0].ID); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Replay(sent) = %v, want ErrConflict", err)
	}
}
