package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/notify"
)

func TestAlertsValues(t *testing.T) {
	data, err := os.ReadFile("testdata/alerts.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, "alerts", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	a := c.Alerts
	if len(a.Channels) != 4 {
		t.Fatalf("channels = %d, want 4", len(a.Channels))
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"ui_url", a.UIURL, "https://canaryd.example.com"},
		{"slack kind", a.Channels[0].Kind, notify.KindSlack},
		{"slack types", strings.Join(a.Channels[0].Route.Types, ","), "release.*,canary.started"},
		{"telegram token from env", a.Channels[1].Token.Reveal(), "s3cret-token-value"},
		{"telegram thread of api", a.Channels[1].Threads["api"], int64(12)},
		{"email recipients", len(a.Channels[2].To), 2},
		{"webhook throttle", a.Channels[3].Throttle, 30 * time.Minute},
		{"webhook timeout", a.Channels[3].Timeout, 5 * time.Second},
		{"monitor interval", a.Monitor.Interval.D(), 10 * time.Second},
		{"monitor delta", float64(a.Monitor.MaxErrorRateDelta), 30.0},
		{"monitor latency", a.Monitor.MaxLatency.D(), time.Second},
		{"monitor min requests default", a.Monitor.MinRequests, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	// Secrets never print in clear.
	for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%+v", a.Channels), fmt.Sprintf("%#v", a.Channels[1])} {
		for _, secret := range []string{"s3cret-token-value", "XXXX", "000102030405"} {
			if strings.Contains(s, secret) {
				t.Errorf("printed config reveals %q: %s", secret, s)
			}
		}
	}
}
