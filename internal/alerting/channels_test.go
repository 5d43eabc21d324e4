package alerting

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/notify"
	"github.com/canaryd/canaryd/internal/notify/notifytest"
	"github.com/canaryd/canaryd/internal/store"
)

const testKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

// syncBuffer is a log sink safe for the service's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestChannels adds, lists, tests and removes channels at run time: stored
// secrets are sealed, every output is masked, file channels are read-only,
// and a second service on the same store picks added channels up.
func TestChannels(t *testing.T) {
	st, _ := backends(nil)[0].open(t)
	ctx := t.Context()
	slack := notifytest.NewSlack(t)
	hook := notifytest.NewWebhook(t)
	var logs syncBuffer
	cfg := slackConfig(slack, nil)
	cfg.SecretKey = testKey
	s := newService(t, Options{Store: st, Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	run(t, s)

	const hookSecret = "hmac-key-that-must-stay-secret"
	hookURL := hook.URL() + "/hooks/token-in-path-0123456789"
	added, err := s.AddChannel(ctx, notify.ChannelConfig{Name: "bridge", Kind: notify.KindWebhook,
		URL: notify.Secret(hookURL), Secret: hookSecret})
	if err != nil {
		t.Fatalf("AddChannel: %v", err)
	}
	if added.Source != SourceStore || added.Revision != 1 {
		t.Errorf("added = %+v", added)
	}

	errorCases := []struct {
		name string
		err  error
		want error
	}{
		{"add a file channel's name", func() error {
			_, err := s.AddChannel(ctx, notify.ChannelConfig{Name: "ops", Kind: notify.KindSlack, URL: "https://hooks.slack.com/x"})
			return err
		}(), ErrReadOnly},
		{"add twice", func() error {
			_, err := s.AddChannel(ctx, notify.ChannelConfig{Name: "bridge", Kind: notify.KindDiscord, URL: "https://discord.com/api/webhooks/1/x"})
			return err
		}(), store.ErrConflict},
		{"add invalid", func() error {
			_, err := s.AddChannel(ctx, notify.ChannelConfig{Name: "Bad Name", Kind: notify.KindSlack})
			return err
		}(), store.ErrInvalid},
		{"remove a file channel", s.RemoveChannel(ctx, "ops"), ErrReadOnly},
		{"remove unknown", s.RemoveChannel(ctx, "nope"), store.ErrNotFound},
	}
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.want) {
				t.Errorf("err = %v, want %v", tc.err, tc.want)
			}
		})
	}

	list, err := s.ListChannels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "ops" || list[0].Source != SourceConfig || list[1].Name != "bridge" || !list[1].Active() {
		t.Fatalf("ListChannels = %+v", list)
	}
	js, _ := json.Marshal(list)
	secrets := []string{hookSecret, "token-in-path", "s3cr3tW3bh00kT0k3n"}
	for _, out := range []string{string(js), fmt.Sprint(list), fmt.Sprintf("%+v", list), fmt.Sprintf("%#v", list)} {
		for _, sec := range secrets {
			if strings.Contains(out, sec) {
				t.Errorf("listing reveals %q: %s", sec, out)
			}
		}
	}

	// At rest the secrets are sealed.
	err = st.View(ctx, func(r store.Reader) error {
		rec, err := r.GetAlertChannel(ctx, "bridge")
		if err != nil {
			return err
		}
		for _, sec := range secrets {
			if bytes.Contains(rec.Secret, []byte(sec)) || bytes.Contains(rec.Filter, []byte(sec)) {
				t.Errorf("stored record reveals %q", sec)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Test reaches both peers; the webhook request is signed.
	res := s.Test(ctx, "")
	if len(res) != 2 || !res[0].OK || !res[1].OK {
		t.Fatalf("Test(all) = %+v", res)
	}
	if len(slack.Requests()) != 1 || len(hook.Requests()) != 1 {
		t.Fatalf("test messages: slack %d, webhook %d", len(slack.Requests()), len(hook.Requests()))
	}
	if h := hook.Requests()[0].Header.Get("X-Canaryd-Signature"); !strings.HasPrefix(h, "v1=") {
		t.Errorf("webhook signature header %q", h)
	}
	hook.Down()
	res = s.Test(ctx, "bridge")
	if len(res) != 1 || res[0].OK || res[0].Error == "" || strings.Contains(res[0].Error, "token-in-path") {
		t.Errorf("Test(bridge) with the peer down = %+v, want a masked error", res)
	}
	hook.Up()
	if res := s.Test(ctx, "nope"); len(res) != 1 || res[0].OK {
		t.Errorf("Test(nope) = %+v", res)
	}

	// A second service on the same store (another replica) sees the stored
	// channel; without the key it lists it as inactive.
	s2 := newService(t, Options{Store: st, Config: cfg})
	if got := s2.disp.Channels(); len(got) != 2 {
		t.Errorf("replica channels = %v, want ops and bridge", got)
	}
	s3 := newService(t, Options{Store: st, Config: slackConfig(slack, nil)})
	l3, _ := s3.ListChannels(ctx)
	if len(l3) != 2 || l3[1].Active() || !strings.Contains(l3[1].Error, "secret_key") {
		t.Errorf("without a key: %+v", l3)
	}
	if _, err := s3.AddChannel(ctx, notify.ChannelConfig{Name: "x", Kind: notify.KindSlack, URL: "https://hooks.slack.com/x"}); !errors.Is(err, ErrNoKey) {
		t.Errorf("AddChannel without key = %v, want ErrNoKey", err)
	}

	if err := s.RemoveChannel(ctx, "bridge"); err != nil {
		t.Fatal(err)
	}
	if got := s.disp.Channels(); len(got) != 1 {
		t.Errorf("after remove: %v", got)
	}
	waitFor(t, "the running service to drop the channel", 5*time.Second, func() bool { return len(s.disp.Channels()) == 1 })
	for _, sec := range secrets {
		if strings.Contains(logs.String(), sec) {
			t.Errorf("logs reveal %q", sec)
		}
	}
}

// TestReload swaps the file's channels and keeps the old set on error.
func TestReload(t *testing.T) {
	st, _ := backends(nil)[0].open(t)
	a, b := notifytest.NewSlack(t), notifytest.NewSlack(t)
	s := newService(t, Options{Store: st, Config: slackConfig(a, nil)})
	next := slackConfig(b, func(c *notify.ChannelConfig) { c.Name = "dev" })
	if err := s.Reload(t.Context(), next); err != nil {
		t.Fatal(err)
	}
	if got := s.disp.Channels(); len(got) != 1 || got[0] != "dev" {
		t.Fatalf("after reload: %v", got)
	}
	bad := &config.Alerts{SecretKey: "short"}
	if err := s.Reload(t.Context(), bad); err == nil {
		t.Fatal("reload with a bad key succeeded")
	}
	if got := s.disp.Channels(); len(got) != 1 || got[0] != "dev" {
		t.Fatalf("after failed reload: %v", got)
	}
}
