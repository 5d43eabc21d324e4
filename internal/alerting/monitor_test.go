package alerting

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/notify/notifytest"
	"github.com/canaryd/canaryd/internal/store"
)

func TestJudge(t *testing.T) {
	cfg := config.Monitor{Interval: config.Duration(10 * time.Second), MaxErrors: 10, MaxErrorRateDelta: 5,
		MaxLatency: config.Duration(time.Second), MinRequests: 20}
	tests := []struct {
		name           string
		canary, stable Totals
		want           []string // substrings, one per reason
	}{
		{"healthy", Totals{Requests: 100, Errors: 1, LatencySum: 100 * 50 * time.Millisecond}, Totals{Requests: 1000, Errors: 5}, nil},
		{"too few requests", Totals{Requests: 10, Errors: 10, LatencySum: 10 * 5 * time.Second}, Totals{}, nil},
		{"error count", Totals{Requests: 1000, Errors: 11}, Totals{Requests: 1000, Errors: 11}, []string{"errors: 11 > 10"}},
		{"error rate delta", Totals{Requests: 100, Errors: 8}, Totals{Requests: 1000, Errors: 10}, []string{"error rate: 8.00% vs stable 1.00% (+7.00 > 5.00 points)"}},
		{"no stable traffic", Totals{Requests: 100, Errors: 6}, Totals{}, []string{"error rate: 6.00% vs stable 0.00%"}},
		{"latency", Totals{Requests: 100, LatencySum: 100 * 1500 * time.Millisecond}, Totals{Requests: 100}, []string{"mean latency: 1.5s > 1s"}},
		{"all three", Totals{Requests: 100, Errors: 50, LatencySum: 100 * 2 * time.Second}, Totals{Requests: 100},
			[]string{"errors: 50 > 10", "error rate: 50.00%", "mean latency: 2s > 1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMonitor(cfg, nil)
			var c Check
			m.judge(&c, tt.canary, tt.stable)
			if len(c.Reasons) != len(tt.want) {
				t.Fatalf("reasons %q, want %d like %q", c.Reasons, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(c.Reasons[i], w) {
					t.Errorf("reason[%d] = %q, want it to contain %q", i, c.Reasons[i], w)
				}
			}
		})
	}
}

// fakeMetrics is a MetricsFunc over counters the test moves.
type fakeMetrics struct {
	mu sync.Mutex
	m  map[string]Totals
}

func (f *fakeMetrics) get(service, build string) (Totals, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.m[service+"/"+build]
	return t, ok
}

func (f *fakeMetrics) add(key string, d Totals) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.m[key]
	t.Requests += d.Requests
	t.Errors += d.Errors
	t.LatencySum += d.LatencySum
	f.m[key] = t
}

// TestMonitorAlerts: a canary crossing thresholds yields one
// alert.threshold event, delivered to Slack with its reasons.
func TestMonitorAlerts(t *testing.T) {
	st, _ := backends(nil)[0].open(t)
	ctx := t.Context()
	err := st.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.PutService(ctx, store.Service{Name: "api", Canary: "42", Traffic: 10}); err != nil {
			return err
		}
		if _, err := tx.PutBuild(ctx, store.Build{Service: "api", ID: "41", State: store.StateStable}); err != nil {
			return err
		}
		_, err := tx.PutBuild(ctx, store.Build{Service: "api", ID: "42", State: store.StateCanary})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	fm := &fakeMetrics{m: map[string]Totals{"api/41": {Requests: 5000}, "api/42": {Requests: 500}}}
	peer := notifytest.NewSlack(t)
	cfg := slackConfig(peer, nil)
	cfg.Monitor = &config.Monitor{Interval: config.Duration(time.Hour), MaxErrors: 10, MaxErrorRateDelta: 5,
		MaxLatency: config.Duration(time.Second), MinRequests: 1}
	s := newService(t, Options{Store: st, Config: cfg, Metrics: fm.get})

	if checks, err := s.CheckNow(ctx); err != nil || len(checks) != 0 {
		t.Fatalf("first check = %+v, %v; want none (baseline)", checks, err)
	}
	fm.add("api/42", Totals{Requests: 100, Errors: 20, LatencySum: 100 * 1500 * time.Millisecond})
	fm.add("api/41", Totals{Requests: 1000, Errors: 10, LatencySum: 1000 * 100 * time.Millisecond})
	checks, err := s.CheckNow(ctx)
	if err != nil || len(checks) != 1 || len(checks[0].Reasons) != 3 {
		t.Fatalf("second check = %+v, %v; want one check with 3 reasons", checks, err)
	}
	run(t, s)
	waitFor(t, "the threshold alert", 10*time.Second, func() bool { return len(peer.Requests()) > 0 })
	text := slackText(peer.Requests()[0])
	for _, want := range []string{"api: threshold crossed on 42", "errors: 20 &gt; 10 in 1h0m0s", "mean latency: 1.5s &gt; 1s", "error rate: 20.00% vs stable 1.00%"} {
		if !strings.Contains(text, want) {
			t.Errorf("alert lacks %q:\n%s", want, text)
		}
	}
}
