package notify

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"time"

	"github.com/canaryd/canaryd/internal/notify/discord"
	"github.com/canaryd/canaryd/internal/notify/email"
	"github.com/canaryd/canaryd/internal/notify/slack"
	"github.com/canaryd/canaryd/internal/notify/telegram"
	"github.com/canaryd/canaryd/internal/notify/webhook"
)

// FactoryOptions carries what New needs besides the config. The zero value
// works: a default HTTP client, system TLS roots, the wall clock.
type FactoryOptions struct {
	// HTTPClient sends the HTTP providers' requests; nil means a client
	// with no timeout of its own (each Send is bounded by its ctx).
	HTTPClient *http.Client
	// TLSConfig verifies SMTP servers; nil means system roots.
	TLSConfig *tls.Config
	// Now stamps webhook signatures and mail dates; nil means time.Now.
	Now func() time.Time
}

// New builds the Notifier for cfg: the one switch over provider kinds. A
// disabled channel gets Nop. Errors name the kind and the bad field.
func New(cfg ChannelConfig, opts FactoryOptions) (Notifier, error) {
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	var (
		n   Notifier
		err error
	)
	switch cfg.Kind {
	case KindSlack:
		n, err = slack.New(cfg.URL.Reveal(), hc)
	case KindTelegram:
		n, err = telegram.New(telegram.Config{
			Token: cfg.Token.Reveal(), ChatID: cfg.ChatID, Thread: cfg.Thread,
			Threads: cfg.Threads, BaseURL: cfg.BaseURL, Client: hc,
		})
	case KindEmail:
		n, err = email.New(email.Config{
			Addr: cfg.SMTP, Username: cfg.Username, Password: cfg.Password.Reveal(),
			From: cfg.From, To: cfg.To, TLS: cfg.TLS, TLSConfig: opts.TLSConfig, Now: opts.Now,
		})
	case KindWebhook:
		n, err = webhook.New(webhook.Config{URL: cfg.URL.Reveal(), Secret: cfg.Secret.Reveal(), Client: hc, Now: opts.Now})
	case KindDiscord:
		n, err = discord.New(cfg.URL.Reveal(), hc)
	default:
		return nil, fmt.Errorf("kind %q: want slack, telegram, email, webhook or discord", cfg.Kind)
	}
	if err != nil {
		return nil, err
	}
	if cfg.Disabled {
		return Nop{}, nil
	}
	return n, nil
}

// NewChannel builds the Dispatcher's view of cfg: its Notifier (via New),
// route and pacing, with defaults applied.
func NewChannel(cfg ChannelConfig, opts FactoryOptions) (Channel, error) {
	n, err := New(cfg, opts)
	if err != nil {
		return Channel{}, fmt.Errorf("channel %q: %w", cfg.Name, err)
	}
	cfg = cfg.WithDefaults()
	return Channel{
		Name: cfg.Name, Notifier: n, Route: cfg.Route, Throttle: cfg.Throttle,
		RatePerMinute: cfg.RatePerMinute, Burst: cfg.Burst, Timeout: cfg.Timeout,
	}, nil
}
