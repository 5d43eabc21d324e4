package notify_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/canaryd/canaryd/internal/notify"
)

const (
	slackURL  = "https://hooks.slack.com/services/T000/B000/XyZsecretPATHvalue"
	botToken  = "123456789:AAHsecretBotTokenValue-abcdefgh"
	smtpPass  = "smtp-Secret-Password-1"
	hookToken = "whsec-Secret-hmac-key-9"
)

func secretChannels() []notify.ChannelConfig {
	return []notify.ChannelConfig{
		{Name: "ops", Kind: notify.KindSlack, URL: slackURL},
		{Name: "tg", Kind: notify.KindTelegram, Token: botToken, ChatID: "-1001"},
		{Name: "mail", Kind: notify.KindEmail, SMTP: "smtp.example.com:587", Username: "u", Password: smtpPass, From: "a@example.com", To: []string{"b@example.com"}},
		{Name: "hook", Kind: notify.KindWebhook, URL: "https://example.com/hook?key=" + hookToken, Secret: hookToken},
	}
}

var allSecrets = []string{slackURL, "XyZsecretPATHvalue", botToken, "AAHsecretBotTokenValue", smtpPass, hookToken}

func TestSecretsNeverPrinted(t *testing.T) {
	for _, c := range secretChannels() {
		var outs []string
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			outs = append(outs, fmt.Sprintf(verb, c), fmt.Sprintf(verb, &c))
		}
		outs = append(outs, fmt.Sprintf("%v %s %q %x", c.URL, c.Token, c.Password, c.Secret), fmt.Sprint(c.URL, c.Token))
		outs = append(outs, c.String())
		j, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(j))
		y, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(y))
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, nil)).Info("channel", "cfg", c, "token", c.Token, "url", c.URL)
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("channel", "cfg", c, "password", c.Password, "secret", c.Secret)
		outs = append(outs, buf.String())
		for _, o := range outs {
			for _, s := range allSecrets {
				if strings.Contains(o, s) {
					t.Errorf("channel %s: output leaks %q:\n%s", c.Name, s, o)
				}
			}
		}
	}
}

func TestSecretDecodesInClear(t *testing.T) {
	var c notify.ChannelConfig
	if err := json.Unmarshal([]byte(`{"name":"tg","kind":"telegram","token":"`+botToken+`","chat_id":"1"}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.Token.Reveal() != botToken {
		t.Errorf("json token = %q", c.Token.Reveal())
	}
	if err := yaml.Unmarshal([]byte("name: ops\nkind: slack\nurl: "+slackURL+"\nthrottle: 5m\n"), &c); err != nil {
		t.Fatal(err)
	}
	if c.URL.Reveal() != slackURL || c.Throttle.String() != "5m0s" {
		t.Errorf("yaml url = %q throttle %v", c.URL.Reveal(), c.Throttle)
	}
}

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"short", "****"},
		{botToken, "****efgh"},
		{slackURL, "https://hooks.slack.com/****"},
		{"https://user:pw@example.com/", "https://****@example.com"},
		{"https://example.com", "https://example.com"},
	}
	for _, tt := range tests {
		if got := notify.Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range secretChannels() {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", c.Name, err)
		}
	}
	tests := []struct {
		name string
		cfg  notify.ChannelConfig
		want []string
	}{
		{"bad name and kind", notify.ChannelConfig{Name: "Ops!", Kind: "pager"}, []string{`name "Ops!"`, `kind "pager"`}},
		{"slack without url", notify.ChannelConfig{Name: "s", Kind: notify.KindSlack}, []string{`channel "s"`, "slack: url"}},
		{"bad route", notify.ChannelConfig{Name: "s", Kind: notify.KindSlack, URL: slackURL,
			Route: notify.Route{MinSeverity: "loud", Types: []string{"rel*ase"}}}, []string{`route.min_severity "loud"`, `route.types[0] "rel*ase"`}},
		{"negative pacing", notify.ChannelConfig{Name: "s", Kind: notify.KindSlack, URL: slackURL, RatePerMinute: -1, Burst: -2}, []string{"rate_per_minute -1", "burst -2"}},
		{"webhook secret masked in error", notify.ChannelConfig{Name: "w", Kind: notify.KindWebhook, URL: "notaurl/" + hookToken}, []string{"webhook: url ****", "secret is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if err == nil {
				t.Fatal("Validate = nil")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			for _, s := range allSecrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error leaks %q: %v", s, err)
				}
			}
		})
	}
}
