package alerting

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/notify"
	"github.com/canaryd/canaryd/internal/store"
)

// Totals are one build's cumulative request counts in this process since
// some start (counters only grow; the monitor takes differences between
// checks).
type Totals struct {
	Requests   uint64
	Errors     uint64        // 5xx and connection errors
	LatencySum time.Duration // sum of the requests' latencies
}

// MetricsFunc returns the cumulative Totals of one build of a service, and
// false when the process has no counters for it. It must be cheap and safe
// for concurrent use; the server wires metrics.Registry into it.
type MetricsFunc func(service, build string) (Totals, bool)

// Check is the monitor's finding for one service's canary over one
// interval: the numbers it compared and which thresholds they crossed.
type Check struct {
	Service, Canary, Stable string
	// Requests, Errors and MeanLatency are the canary's over the interval;
	// StableRequests and StableErrors the stable build's.
	Requests, Errors             uint64
	StableRequests, StableErrors uint64
	MeanLatency                  time.Duration
	// ErrorRate and StableErrorRate are in percent.
	ErrorRate, StableErrorRate float64
	// Reasons lists each threshold crossed, in numbers; empty when none.
	Reasons []string
}

// monitor watches each service's current canary without a release:
// alert-only thresholds, as teams' alert scripts do today.
type monitor struct {
	cfg     config.Monitor
	metrics MetricsFunc

	mu   sync.Mutex
	last map[string]Totals // "service/build" → totals at the previous check
}

func newMonitor(cfg config.Monitor, m MetricsFunc) *monitor {
	return &monitor{cfg: cfg, metrics: m, last: map[string]Totals{}}
}

// carryOver keeps the previous check's counters across a config reload, so
// the first interval after it is still judged.
func (m *monitor) carryOver(old *monitor) {
	old.mu.Lock()
	defer old.mu.Unlock()
	for k, v := range old.last {
		m.last[k] = v
	}
}

// delta returns the counts of build since the previous call, and false on
// the first call for it (no baseline yet) or when the process has none.
func (m *monitor) delta(service, build string) (Totals, bool) {
	cur, ok := m.metrics(service, build)
	if !ok {
		return Totals{}, false
	}
	k := service + "/" + build
	m.mu.Lock()
	prev, seen := m.last[k]
	m.last[k] = cur
	m.mu.Unlock()
	if !seen || cur.Requests < prev.Requests || cur.Errors < prev.Errors {
		return Totals{}, false // first look, or counters were reset
	}
	return Totals{Requests: cur.Requests - prev.Requests, Errors: cur.Errors - prev.Errors, LatencySum: cur.LatencySum - prev.LatencySum}, true
}

// judge applies the thresholds to one interval's counts.
func (m *monitor) judge(c *Check, canary, stable Totals) {
	c.Requests, c.Errors = canary.Requests, canary.Errors
	c.StableRequests, c.StableErrors = stable.Requests, stable.Errors
	if canary.Requests > 0 {
		c.ErrorRate = 100 * float64(canary.Errors) / float64(canary.Requests)
		c.MeanLatency = canary.LatencySum / time.Duration(canary.Requests)
	}
	if stable.Requests > 0 {
		c.StableErrorRate = 100 * float64(stable.Errors) / float64(stable.Requests)
	}
	if canary.Requests < uint64(max(m.cfg.MinRequests, 1)) {
		return
	}
	if n := m.cfg.MaxErrors; n > 0 && canary.Errors > uint64(n) {
		c.Reasons = append(c.Reasons, fmt.Sprintf("errors: %d > %d in %s", canary.Errors, n, m.cfg.Interval.D()))
	}
	if d := float64(m.cfg.MaxErrorRateDelta); d > 0 && c.ErrorRate-c.StableErrorRate > d {
		c.Reasons = append(c.Reasons, fmt.Sprintf("error rate: %.2f%% vs stable %.2f%% (+%.2f > %.2f points)",
			c.ErrorRate, c.StableErrorRate, c.ErrorRate-c.StableErrorRate, d))
	}
	if l := m.cfg.MaxLatency.D(); l > 0 && c.MeanLatency > l {
		c.Reasons = append(c.Reasons, fmt.Sprintf("mean latency: %s > %s", c.MeanLatency.Round(time.Millisecond), l))
	}
}

// check looks at every service with a canary once and returns the checks
// made (with or without reasons).
func (m *monitor) check(ctx context.Context, st store.Store) ([]Check, error) {
	var services []store.Service
	stable := map[string]string{}
	err := st.View(ctx, func(r store.Reader) error {
		var err error
		if services, err = r.ListServices(ctx); err != nil {
			return err
		}
		bs, err := r.ListBuilds(ctx, store.BuildFilter{States: []store.BuildState{store.StateStable}})
		if err != nil {
			return err
		}
		for _, b := range bs {
			stable[b.Service] = b.ID
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("alerting: monitor: read services: %w", err)
	}
	var out []Check
	for _, svc := range services {
		if svc.Canary == "" || (len(m.cfg.Services) > 0 && !slices.Contains(m.cfg.Services, svc.Name)) {
			continue
		}
		c := Check{Service: svc.Name, Canary: svc.Canary, Stable: stable[svc.Name]}
		ct, ok := m.delta(svc.Name, svc.Canary)
		var stt Totals
		if c.Stable != "" {
			stt, _ = m.delta(svc.Name, c.Stable)
		}
		if !ok {
			continue
		}
		m.judge(&c, ct, stt)
		out = append(out, c)
	}
	return out, nil
}

// thresholdEvent is the event a crossed threshold appends. Its dedupe key
// names only the service and canary, so repeats merge and are throttled
// per channel however the numbers move.
func thresholdEvent(c Check) event.Event {
	return event.Event{
		Service: c.Service, Type: event.AlertThreshold, Severity: event.Warning, Actor: "monitor",
		Build:  c.Canary,
		Reason: strings.Join(c.Reasons, "; "),
		Details: map[string]string{
			notify.DetailCanaryBuild: c.Canary,
			notify.DetailStableBuild: c.Stable,
			notify.DetailReasons:     strings.Join(c.Reasons, "\n"),
			notify.DetailDedupeKey:   c.Service + "/" + string(event.AlertThreshold) + "/" + c.Canary,
			"requests":               strconv.FormatUint(c.Requests, 10),
		},
	}
}

// CheckNow runs one monitoring check at once and appends an
// alert.threshold event for each canary that crossed a threshold; it
// returns the checks. Run calls it every monitor interval; tests and the
// API may call it directly. Without a configured monitor it returns nil.
func (s *Service) CheckNow(ctx context.Context) ([]Check, error) {
	s.mu.Lock()
	m := s.monitor
	s.mu.Unlock()
	if m == nil {
		return nil, nil
	}
	checks, err := m.check(ctx, s.st)
	if err != nil {
		return nil, err
	}
	var evs []event.Event
	for _, c := range checks {
		if len(c.Reasons) > 0 {
			evs = append(evs, thresholdEvent(c))
		}
	}
	if len(evs) == 0 {
		return checks, nil
	}
	err = s.st.Update(ctx, func(tx store.Tx) error {
		for _, ev := range evs {
			if _, err := tx.AppendEvent(ctx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return checks, fmt.Errorf("alerting: monitor: append threshold events: %w", err)
	}
	return checks, nil
}

// watch runs CheckNow every monitor interval while a monitor is configured.
func (s *Service) watch(ctx context.Context) {
	for {
		s.mu.Lock()
		m := s.monitor
		s.mu.Unlock()
		wait := time.Second // look again for a monitor added by Reload
		if m != nil {
			wait = m.cfg.Interval.D()
			if _, err := s.CheckNow(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("alert monitor", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
