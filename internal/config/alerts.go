package config

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/canaryd/canaryd/internal/notify"
)

// Alerts configures where alerts go (see docs/alerts.md). The zero value
// declares no channels; channels may still be added at run time through the
// API, which needs SecretKey to store their secrets encrypted.
type Alerts struct {
	// SecretKey encrypts channel secrets kept in the store: 32 bytes as
	// base64 or hex, normally ${CANARYD_SECRET_KEY}. It prints masked.
	SecretKey notify.Secret `yaml:"secret_key"`
	// UIURL is the UI's external URL; messages link to the service there.
	UIURL string `yaml:"ui_url"`
	// Channels are the channels the file declares. They are read-only for
	// the API: the file wins over a store channel of the same name.
	Channels []notify.ChannelConfig `yaml:"channels"`
	// Monitor, when set, watches the current canary without a release and
	// raises alert.threshold events; nil means off.
	Monitor *Monitor `yaml:"monitor"`
}

// Monitor holds the thresholds of alert-only monitoring of each service's
// current canary against its stable build: the knobs teams set in their
// alert scripts (--metrics 30, --errors-threshold 10,
// --latency-threshold 1000, --interval 10). A zero threshold is off; at
// least one must be set.
type Monitor struct {
	// Interval is how often the canary is checked, over the requests of
	// the last Interval (default 10s).
	Interval Duration `yaml:"interval"`
	// MaxErrorRateDelta alerts when the canary's error rate exceeds the
	// stable build's by more than this many percentage points.
	MaxErrorRateDelta Percent `yaml:"max_error_rate_delta"`
	// MaxErrors alerts when the canary has more errors than this in one
	// interval.
	MaxErrors int `yaml:"max_errors"`
	// MaxLatency alerts when the canary's mean latency exceeds it.
	MaxLatency Duration `yaml:"max_latency"`
	// MinRequests skips an interval with fewer canary requests (default 1).
	MinRequests int `yaml:"min_requests"`
	// Services limits monitoring to these services; empty means all.
	Services []string `yaml:"services"`
}

func (a *Alerts) applyDefaults() {
	if m := a.Monitor; m != nil {
		if m.Interval == 0 {
			m.Interval = Duration(10e9)
		}
		if m.MinRequests == 0 {
			m.MinRequests = 1
		}
	}
}

// validate checks the section; services are the names the file declares.
func (a *Alerts) validate(p *problems, services map[string]int) {
	if a.SecretKey != "" {
		if _, err := notify.ParseKey(a.SecretKey.Reveal()); err != nil {
			p.add("alerts.secret_key", "%s is not a key: want 32 bytes as base64 or hex (make one with `openssl rand -base64 32`)", a.SecretKey)
		}
	}
	if a.UIURL != "" {
		if u, err := url.Parse(a.UIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add("alerts.ui_url", "%q is not an http(s) URL", a.UIURL)
		}
	}
	names := map[string]int{}
	for i, c := range a.Channels {
		path := fmt.Sprintf("alerts.channels[%d]", i)
		if err := c.Validate(); err != nil {
			p.add(path, "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
		if j, ok := names[c.Name]; ok && c.Name != "" {
			p.add(path+".name", "duplicate channel name %q (also alerts.channels[%d])", c.Name, j)
		}
		names[c.Name] = i
	}
	if m := a.Monitor; m != nil {
		if m.Interval < 0 {
			p.add("alerts.monitor.interval", "must be positive, got %s", m.Interval.D())
		}
		if m.MaxErrorRateDelta < 0 || m.MaxErrorRateDelta > 100 {
			p.add("alerts.monitor.max_error_rate_delta", "%v%% is outside 0..100%%", float64(m.MaxErrorRateDelta))
		}
		if m.MaxErrors < 0 {
			p.add("alerts.monitor.max_errors", "must not be negative, got %d", m.MaxErrors)
		}
		if m.MaxLatency < 0 {
			p.add("alerts.monitor.max_latency", "must not be negative, got %s", m.MaxLatency.D())
		}
		if m.MinRequests < 0 {
			p.add("alerts.monitor.min_requests", "must not be negative, got %d", m.MinRequests)
		}
		for i, name := range m.Services {
			if _, ok := services[name]; !ok {
				p.add(fmt.Sprintf("alerts.monitor.services[%d]", i), "%q is not a service of this file", name)
			}
		}
		if m.MaxErrorRateDelta == 0 && m.MaxErrors == 0 && m.MaxLatency == 0 {
			p.add("alerts.monitor", "set at least one of max_error_rate_delta, max_errors, max_latency")
		}
	}
}
