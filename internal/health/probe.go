package health

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/canaryd/canaryd/internal/balance"
)

// NewClient returns the HTTP client probes share when [Options.Client] is
// nil: keep-alive connections (one idle connection per endpoint is enough),
// no proxy from the environment, no redirects followed (a 3xx is an answer)
// and a 10 s connect backstop. Each probe's own deadline is
// [Active.Timeout], set on its context.
func NewClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     2 * time.Minute,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// maxDrain bounds how much of a probe's response body is read (and thrown
// away) so the connection can be reused.
const maxDrain = 64 << 10

// prober checks one endpoint. Its goroutine owns the counters; mu guards
// what SetTargets and Status touch from outside.
type prober struct {
	ep      *balance.Endpoint
	cfg     Active // defaults applied
	service string
	url     string
	cancel  context.CancelFunc // nil until started

	mu        sync.Mutex
	stopped   bool // once set, the prober no longer changes the endpoint
	passes    int  // probes passed in a row
	fails     int  // probes failed in a row
	lastProbe time.Time
	lastErr   error
}

func newProber(t Target, cfg Active) *prober {
	return &prober{ep: t.Endpoint, cfg: cfg, service: t.Service, url: "http://" + t.Endpoint.Addr() + cfg.Path}
}

// stop keeps the prober from judging the endpoint again and ends its
// goroutine. A probe in flight is abandoned.
func (p *prober) stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	if p.cancel != nil {
		p.cancel()
	}
}

// run probes until ctx ends. The first probe waits a random part of the
// interval, so endpoints added together do not probe in lockstep.
func (p *prober) run(ctx context.Context, client *http.Client, log *slog.Logger) {
	t := time.NewTimer(rand.N(p.cfg.Interval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.probeOnce(ctx, client, log)
		t.Reset(p.cfg.Interval)
	}
}

// probeOnce sends one probe and records its result, unless ctx ended
// meanwhile (a stopping checker must not judge endpoints).
func (p *prober) probeOnce(ctx context.Context, client *http.Client, log *slog.Logger) {
	err := p.probe(ctx, client)
	if ctx.Err() != nil {
		return
	}
	p.record(err, log)
}

// probe sends one probe, bounded by the check's Timeout.
func (p *prober) probe(ctx context.Context, client *http.Client) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return fmt.Errorf("health probe %q: %w", p.url, err)
	}
	if p.cfg.Host != "" {
		req.Host = p.cfg.Host
	}
	req.Header.Set("User-Agent", "canaryd-health")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health probe: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("health probe %q: status %d, want 2xx or 3xx", p.url, resp.StatusCode)
	}
	return nil
}

// record counts one probe result and flips the endpoint when a threshold is
// reached.
func (p *prober) record(err error, log *slog.Logger) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.lastProbe, p.lastErr = time.Now(), err
	if err == nil {
		p.passes++
		p.fails = 0
	} else {
		p.fails++
		p.passes = 0
	}
	healthy := p.ep.Healthy()
	switch {
	case !healthy && p.passes >= p.cfg.HealthyThreshold:
		p.ep.SetHealthy(true)
		log.Info("endpoint healthy", "service", p.service, "endpoint", p.ep.Addr(), "passes", p.passes)
	case healthy && p.fails >= p.cfg.UnhealthyThreshold:
		p.ep.SetHealthy(false)
		log.Warn("endpoint unhealthy", "service", p.service, "endpoint", p.ep.Addr(), "fails", p.fails, "error", err)
	}
}

func (p *prober) status() ProbeStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := ProbeStatus{
		Endpoint:  p.ep.Addr(),
		Service:   p.service,
		Healthy:   p.ep.Healthy(),
		Passes:    p.passes,
		Fails:     p.fails,
		LastProbe: p.lastProbe,
	}
	if p.lastErr != nil {
		st.LastError = p.lastErr.Error()
	}
	return st
}
