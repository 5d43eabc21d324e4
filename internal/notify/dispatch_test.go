package notify_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/notify"
	"github.com/canaryd/canaryd/internal/notify/notifytest"
)

var t0 = time.Date(2026, 11, 29, 15, 0, 0, 0, time.UTC)

// rig is a Dispatcher on a MemoryOutbox with a manual clock and a log
// buffer.
type rig struct {
	d     *notify.Dispatcher
	ob    *notify.MemoryOutbox
	clock *notifytest.Clock
	log   *syncBuffer
}

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

func newRig(t *testing.T, opts notify.Options, cfgs ...notify.ChannelConfig) *rig {
	t.Helper()
	r := &rig{ob: &notify.MemoryOutbox{}, clock: notifytest.NewClock(t0), log: &syncBuffer{}}
	opts.Outbox = r.ob
	opts.Now = r.clock.Now
	opts.Rand = func() float64 { return 0 } // no jitter: exact backoff
	if opts.GroupWait == 0 {
		opts.GroupWait = -1 // send at once unless a test asks otherwise
	}
	opts.Logger = slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var chans []notify.Channel
	for _, c := range cfgs {
		ch, err := notify.NewChannel(c, notify.FactoryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	d, err := notify.NewDispatcher(opts, chans)
	if err != nil {
		t.Fatal(err)
	}
	r.d = d
	return r
}

func (r *rig) publish(t *testing.T, ev event.Event) {
	t.Helper()
	if _, err := r.d.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) tick(t *testing.T) notify.Stats {
	t.Helper()
	s, err := r.d.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func numbered(i int) event.Event {
	ev := failedEvent()
	ev.ID = int64(i)
	ev.Reason = fmt.Sprintf("event number %d", i)
	return ev
}

func TestDeliversToEveryKind(t *testing.T) {
	sl := notifytest.NewSlack(t)
	tg := notifytest.NewTelegram(t, botToken)
	wh := notifytest.NewWebhook(t)
	mail := notifytest.NewSMTP(t, "u", smtpPass)
	cfgs := []notify.ChannelConfig{
		{Name: "slack", Kind: notify.KindSlack, URL: notify.Secret(sl.WebhookURL())},
		{Name: "tg", Kind: notify.KindTelegram, Token: botToken, ChatID: "-1001", BaseURL: tg.BaseURL(), Threads: map[string]int64{"api": 9}},
		{Name: "hook", Kind: notify.KindWebhook, URL: notify.Secret(wh.URL() + "/in"), Secret: hookToken},
		{Name: "mail", Kind: notify.KindEmail, SMTP: mail.Addr(), Username: "u", Password: smtpPass, From: "canaryd@example.com", To: []string{"a@example.com", "b@example.com"}},
		{Name: "discord", Kind: notify.KindDiscord, URL: notify.Secret(wh.URL() + "/api/webhooks/1/tok")},
		{Name: "only-web", Kind: notify.KindSlack, URL: notify.Secret(sl.WebhookURL()), Route: notify.Route{Services: []string{"web"}}},
	}
	ob := &notify.MemoryOutbox{}
	var chans []notify.Channel
	for _, c := range cfgs {
		ch, err := notify.NewChannel(c, notify.FactoryOptions{TLSConfig: &tls.Config{RootCAs: mail.RootCAs()}})
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	d, err := notify.NewDispatcher(notify.Options{Outbox: ob, UIBase: "https://canaryd.example.com", GroupWait: -1}, chans)
	if err != nil {
		t.Fatal(err)
	}
	n, err := d.Publish(context.Background(), failedEvent())
	if err != nil || n != 5 {
		t.Fatalf("Publish = %d, %v; want 5 channels", n, err)
	}
	s, err := d.Tick(context.Background())
	if err != nil || s.Sent != 5 {
		t.Fatalf("Tick = %+v, %v; want 5 sent", s, err)
	}
	if len(sl.Requests()) != 1 || len(tg.Messages()) != 1 || len(wh.Requests()) != 2 || len(mail.Messages()) != 1 {
		t.Fatalf("peers got slack %d telegram %d webhook %d mail %d, want 1 each",
			len(sl.Requests()), len(tg.Messages()), len(wh.Requests()), len(mail.Messages()))
	}
	if th := tg.Messages()[0].ThreadID; th != 9 {
		t.Errorf("telegram thread %d, want 9", th)
	}
	if !strings.Contains(mail.Messages()[0].Text, "https://canaryd.example.com/services/api") {
		t.Error("mail lacks the UI link")
	}
	if got := len(ob.List(notify.StateSent)); got != 5 {
		t.Errorf("%d deliveries sent, want 5", got)
	}
}

func TestOutageLosesNothingAndDuplicatesNothing(t *testing.T) {
	sl := notifytest.NewSlack(t)
	r := newRig(t, notify.Options{MaxAttempts: 20, BackoffBase: time.Second, BackoffMax: 2 * time.Minute},
		notify.ChannelConfig{Name: "ops", Kind: notify.KindSlack, URL: notify.Secret(sl.WebhookURL()), RatePerMinute: -1})
	sl.Down()
	const n = 20
	for i := range n {
		r.publish(t, numbered(i))
	}
	// Ten minutes of outage: every due delivery fails and is rescheduled.
	for range 40 {
		r.tick(t)
		r.clock.Advance(15 * time.Second)
	}
	if got := len(r.ob.List(notify.StatePending)); got != n {
		t.Fatalf("during the outage %d deliveries pending, want %d", got, n)
	}
	if len(sl.Requests()) != 0 {
		t.Fatal("peer received while down")
	}
	sl.Up()
	for range 10 {
		r.tick(t)
		r.clock.Advance(30 * time.Second)
	}
	seen := map[string]int{}
	for _, req := range sl.Requests() {
		seen[eventNumber.FindString(string(req.Raw))]++
	}
	if len(seen) != n {
		t.Errorf("peer got %d distinct alerts, want %d", len(seen), n)
	}
	for text, c := range seen {
		if c != 1 {
			t.Errorf("%q delivered %d times", text, c)
		}
	}
	if got := len(r.ob.List(notify.StateSent)); got != n {
		t.Errorf("%d deliveries sent, want %d", got, n)
	}
	if !strings.Contains(r.log.String(), "alert attempt failed") {
		t.Error("failures were not logged")
	}
}

var eventNumber = regexp.MustCompile(`event number \d+`)

func TestRetryAfterHonoured(t *testing.T) {
	tg := notifytest.NewTelegram(t, botToken)
	r := newRig(t, notify.Options{BackoffBase: time.Second},
		notify.ChannelConfig{Name: "tg", Kind: notify.KindTelegram, Token: botToken, ChatID: "1", BaseURL: tg.BaseURL()})
	tg.RateLimit(1, 7)
	r.publish(t, failedEvent())
	r.publish(t, numbered(2))
	if s := r.tick(t); s.Retried != 1 || s.Deferred != 1 {
		t.Fatalf("first tick %+v, want 1 retried (429) and 1 deferred (channel paused)", s)
	}
	for _, d := range r.ob.List() {
		if !d.NextAttempt.Equal(t0.Add(7 * time.Second)) {
			t.Errorf("delivery %d next attempt %v, want %v", d.ID, d.NextAttempt, t0.Add(7*time.Second))
		}
	}
	r.clock.Advance(6 * time.Second)
	if s := r.tick(t); s != (notify.Stats{}) || len(tg.Messages()) != 0 {
		t.Fatalf("tick before retry_after did something: %+v", s)
	}
	r.clock.Advance(time.Second)
	if s := r.tick(t); s.Sent != 2 {
		t.Fatalf("tick at retry_after = %+v, want 2 sent", s)
	}
	attempts := 0
	for _, d := range r.ob.List() {
		attempts += d.Attempts
	}
	if attempts != 1 {
		t.Errorf("attempts counted %d, want 1 (the 429; the deferral is not an attempt)", attempts)
	}
}

func TestFloodBecomesOneAlertWithCount(t *testing.T) {
	sl := notifytest.NewSlack(t)
	r := newRig(t, notify.Options{GroupWait: 2 * time.Second},
		notify.ChannelConfig{Name: "ops", Kind: notify.KindSlack, URL: notify.Secret(sl.WebhookURL()), Throttle: 10 * time.Minute})
	// 1000 identical failures within a second, with the dispatcher
	// running (ticking) between them as Run would.
	for i := range 1000 {
		ev := failedEvent()
		ev.ID, ev.Time = int64(i), r.clock.Now()
		r.publish(t, ev)
		if i%10 == 0 {
			r.tick(t)
		}
		r.clock.Advance(time.Millisecond)
	}
	if len(sl.Requests()) != 0 {
		t.Fatal("sent before GroupWait ended")
	}
	r.clock.Advance(2 * time.Second)
	if s := r.tick(t); s.Sent != 1 {
		t.Fatalf("tick = %+v, want 1 sent", s)
	}
	reqs := sl.Requests()
	if len(reqs) != 1 {
		t.Fatalf("peer got %d alerts, want 1", len(reqs))
	}
	if want := "api: canary 42 (1.2.3) rolled back (×1000)"; reqs[0].Text != want {
		t.Errorf("alert %q, want %q", reqs[0].Text, want)
	}
	if !strings.Contains(string(reqs[0].Raw), `1000 times between 15:00:00 and 15:00:00 UTC`) {
		t.Errorf("alert body lacks the count and span: %s", reqs[0].Raw)
	}

	// Repeats after it was sent are throttled: held and counted until the
	// throttle window ends, then sent once.
	r.clock.Advance(time.Minute)
	for range 250 {
		r.publish(t, failedEvent())
	}
	r.clock.Advance(8 * time.Minute)
	r.tick(t)
	if len(sl.Requests()) != 1 {
		t.Fatalf("repeat sent inside the throttle window")
	}
	r.clock.Advance(time.Minute)
	r.tick(t)
	reqs = sl.Requests()
	if len(reqs) != 2 || !strings.HasSuffix(reqs[1].Text, "(×250)") {
		t.Fatalf("after the window: %d alerts, last %q; want a second one with ×250", len(reqs), reqs[len(reqs)-1].Text)
	}
}

func TestDeadAfterMaxAttempts(t *testing.T) {
	wh := notifytest.NewWebhook(t)
	r := newRig(t, notify.Options{MaxAttempts: 3, BackoffBase: time.Second, BackoffMax: 4 * time.Second},
		notify.ChannelConfig{Name: "hook", Kind: notify.KindWebhook, URL: notify.Secret(wh.URL()), Secret: hookToken})
	wh.Fail(100, 500, "")
	r.publish(t, failedEvent())
	var waits []time.Duration
	for range 10 {
		if s := r.tick(t); s.Retried > 0 {
			waits = append(waits, r.ob.List()[0].NextAttempt.Sub(r.clock.Now()))
		}
		r.clock.Advance(time.Second)
	}
	dead := r.ob.List(notify.StateDead)
	if len(dead) != 1 {
		t.Fatalf("%d dead deliveries, want 1 (all: %+v)", len(dead), r.ob.List())
	}
	if dead[0].Attempts != 3 || !strings.Contains(dead[0].LastError, "status 500") {
		t.Errorf("dead: attempts %d error %q", dead[0].Attempts, dead[0].LastError)
	}
	if fmt.Sprint(waits) != "[1s 2s]" {
		t.Errorf("backoff waits %v, want [1s 2s]", waits)
	}
	if !strings.Contains(r.log.String(), "level=ERROR msg=\"alert dead: max attempts reached\"") {
		t.Errorf("dead letter not logged at error:\n%s", r.log.String())
	}
}

func TestPermanentErrorGoesDeadAtOnce(t *testing.T) {
	sl := notifytest.NewSlack(t)
	r := newRig(t, notify.Options{},
		notify.ChannelConfig{Name: "ops", Kind: notify.KindSlack, URL: notify.Secret(sl.URL() + "/services/revoked/hook/value")})
	r.publish(t, failedEvent())
	if s := r.tick(t); s.Dead != 1 {
		t.Fatalf("tick = %+v, want 1 dead", s)
	}
	if d := r.ob.List(notify.StateDead)[0]; d.Attempts != 1 || !strings.Contains(d.LastError, "no_service") {
		t.Errorf("dead %+v", d)
	}
}

func TestBackoffJitter(t *testing.T) {
	wh := notifytest.NewWebhook(t)
	ob := &notify.MemoryOutbox{}
	clock := notifytest.NewClock(t0)
	ch, _ := notify.NewChannel(notify.ChannelConfig{Name: "hook", Kind: notify.KindWebhook, URL: notify.Secret(wh.URL()), Secret: hookToken}, notify.FactoryOptions{})
	d, _ := notify.NewDispatcher(notify.Options{Outbox: ob, Now: clock.Now, Rand: func() float64 { return 0.999 },
		BackoffBase: 8 * time.Second, GroupWait: -1}, []notify.Channel{ch})
	wh.Fail(1, 503, "")
	d.Publish(context.Background(), failedEvent())
	d.Tick(context.Background())
	if w := ob.List()[0].NextAttempt.Sub(t0); w < 4*time.Second || w > 4100*time.Millisecond {
		t.Errorf("jittered wait %v, want about half of 8s", w)
	}
}

func TestRateLimitPerChannel(t *testing.T) {
	sl := notifytest.NewSlack(t)
	wh := notifytest.NewWebhook(t)
	r := newRig(t, notify.Options{},
		notify.ChannelConfig{Name: "ops", Kind: notify.KindSlack, URL: notify.Secret(sl.WebhookURL()), RatePerMinute: 6, Burst: 2},
		notify.ChannelConfig{Name: "hook", Kind: notify.KindWebhook, URL: notify.Secret(wh.URL()), Secret: hookToken, RatePerMinute: -1})
	for i := range 5 {
		r.publish(t, numbered(i))
	}
	if s := r.tick(t); s.Sent != 7 || s.Deferred != 3 {
		t.Fatalf("tick = %+v, want 7 sent (2 slack + 5 webhook) and 3 deferred", s)
	}
	for _, step := range []struct {
		advance time.Duration
		want    int
	}{{5 * time.Second, 2}, {5 * time.Second, 3}, {10 * time.Second, 4}, {10 * time.Second, 5}} {
		r.clock.Advance(step.advance)
		r.tick(t)
		if got := len(sl.Requests()); got != step.want {
			t.Fatalf("at %v slack got %d, want %d", r.clock.Now().Sub(t0), got, step.want)
		}
	}
	if len(wh.Requests()) != 5 {
		t.Errorf("unlimited channel got %d, want 5", len(wh.Requests()))
	}
}

func TestCrashMidSendIsRedelivered(t *testing.T) {
	sl := notifytest.NewSlack(t)
	r := newRig(t, notify.Options{Lease: time.Minute},
		notify.ChannelConfig{Name: "ops", Kind: notify.KindSlack, URL: notify.Secret(sl.WebhookURL())})
	r.publish(t, failedEvent())
	// Another replica claims it and dies before recording anything.
	claimed, err := r.ob.Claim(context.Background(), t0, t0.Add(time.Minute), 10)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim = %v, %v", claimed, err)
	}
	// A repeat arriving meanwhile does not merge into the in-flight one.
	r.publish(t, failedEvent())
	if s := r.tick(t); s.Sent != 0 {
		t.Fatalf("tick during lease sent %d", s.Sent)
	}
	r.clock.Advance(time.Minute)
	if s := r.tick(t); s.Sent != 1 {
		t.Fatalf("tick after lease = %+v, want the orphan sent", s)
	}
	r.clock.Advance(notify.DefaultThrottle)
	if s := r.tick(t); s.Sent != 1 {
		t.Fatalf("tick after throttle = %+v, want the repeat sent", s)
	}
}

func TestSecretsStayOutOfLogsAndOutbox(t *testing.T) {
	tg := notifytest.NewTelegram(t, botToken)
	sl := notifytest.NewSlack(t)
	r := newRig(t, notify.Options{MaxAttempts: 2, BackoffBase: time.Second},
		notify.ChannelConfig{Name: "tg", Kind: notify.KindTelegram, Token: botToken, ChatID: "1", BaseURL: tg.BaseURL()},
		notify.ChannelConfig{Name: "ops", Kind: notify.KindSlack, URL: notify.Secret(sl.WebhookURL())})
	tg.Down()
	sl.Down()
	r.publish(t, failedEvent())
	for range 3 {
		r.tick(t)
		r.clock.Advance(time.Minute)
	}
	res := r.d.Test(context.Background(), "tg")
	out := r.log.String() + res.Error
	for _, d := range r.ob.List() {
		out += d.LastError
	}
	if !strings.Contains(out, "connection refused") {
		t.Fatalf("expected connection errors in the log:\n%s", out)
	}
	secretPath := strings.TrimPrefix(sl.WebhookURL(), sl.URL())
	for _, s := range []string{botToken, "AAHsecret", secretPath} {
		if strings.Contains(out, s) {
			t.Errorf("secret %q appears in logs or outbox:\n%s", s, out)
		}
	}
}

func TestTestChannel(t *testing.T) {
	sl := notifytest.NewSlack(t)
	r := newRig(t, notify.Options{},
		notify.ChannelConfig{Name: "ops", Kind: notify.KindSlack, URL: notify.Secret(sl.WebhookURL()), Route: notify.Route{Services: []string{"web"}}})
	if res := r.d.Test(context.Background(), "ops"); !res.OK || res.Error != "" {
		t.Fatalf("Test = %+v", res)
	}
	if reqs := sl.Requests(); len(reqs) != 1 || reqs[0].Text != "canaryd test alert" {
		t.Fatalf("peer got %+v", reqs)
	}
	if res := r.d.Test(context.Background(), "nope"); res.OK || !strings.Contains(res.Error, `"nope" is not configured`) {
		t.Errorf("Test(unknown) = %+v", res)
	}
	sl.Down()
	if res := r.d.Test(context.Background(), "ops"); res.OK || res.Error == "" {
		t.Errorf("Test(down) = %+v", res)
	}
	if len(r.ob.List()) != 0 {
		t.Error("Test went through the outbox")
	}
}

func TestRemovedChannelGoesDead(t *testing.T) {
	sl := notifytest.NewSlack(t)
	r := newRig(t, notify.Options{},
		notify.ChannelConfig{Name: "ops", Kind: notify.KindSlack, URL: notify.Secret(sl.WebhookURL())})
	r.publish(t, failedEvent())
	if err := r.d.SetChannels(nil); err != nil {
		t.Fatal(err)
	}
	r.tick(t)
	if d := r.ob.List(notify.StateDead); len(d) != 1 || !strings.Contains(d[0].LastError, `"ops" is not configured`) {
		t.Errorf("dead = %+v", d)
	}
}

func TestRunDeliversPromptlyAndStops(t *testing.T) {
	sl := notifytest.NewSlack(t)
	ch, _ := notify.NewChannel(notify.ChannelConfig{Name: "ops", Kind: notify.KindSlack, URL: notify.Secret(sl.WebhookURL())}, notify.FactoryOptions{})
	d, err := notify.NewDispatcher(notify.Options{Outbox: &notify.MemoryOutbox{}, Poll: time.Hour, GroupWait: 50 * time.Millisecond}, []notify.Channel{ch})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	d.Publish(ctx, failedEvent())
	deadline := time.Now().Add(5 * time.Second)
	for len(sl.Requests()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if len(sl.Requests()) != 1 {
		t.Fatalf("Run did not deliver after Publish (poll is an hour, so Publish must wake it and GroupWait bound the wait)")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestSetChannelsRejectsDuplicates(t *testing.T) {
	_, err := notify.NewDispatcher(notify.Options{Outbox: &notify.MemoryOutbox{}}, []notify.Channel{
		{Name: "a", Notifier: notify.Nop{}}, {Name: "a", Notifier: notify.Nop{}}, {Name: "", Notifier: notify.Nop{}}, {Name: "b"},
	})
	for _, want := range []string{`"a": duplicate`, "channels[2]: name is empty", `"b": notifier is nil`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestFailingChannelIsProbedNotHammered(t *testing.T) {
	// A peer that accepts connections and never answers: each attempt
	// costs the full timeout, so a Tick must try one delivery, not all.
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hang:
		}
	}))
	defer srv.Close()
	defer close(hang)
	r := newRig(t, notify.Options{BackoffBase: time.Second},
		notify.ChannelConfig{Name: "hook", Kind: notify.KindWebhook, URL: notify.Secret(srv.URL), Secret: hookToken, Timeout: 200 * time.Millisecond, RatePerMinute: -1})
	for i := range 10 {
		r.publish(t, numbered(i))
	}
	start := time.Now()
	s := r.tick(t)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("tick took %v: it waited for more than one timeout", took)
	}
	if s.Retried != 1 || s.Deferred != 9 {
		t.Errorf("tick = %+v, want 1 retried (the probe) and 9 deferred", s)
	}
	attempts := 0
	for _, d := range r.ob.List() {
		attempts += d.Attempts
		if d.NextAttempt.Before(t0.Add(time.Second)) {
			t.Errorf("delivery %d due at %v, before the probe's retry", d.ID, d.NextAttempt)
		}
	}
	if attempts != 1 {
		t.Errorf("attempts spent %d, want 1", attempts)
	}
}
