// Package server wires one canaryd process: the data plane listener, the
// admin listener, the routing Table and the background loops, with graceful
// shutdown and reload. The commands serve and demo both run it.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canaryd/canaryd/internal/alerting"
	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/control"
	"github.com/canaryd/canaryd/internal/health"
	"github.com/canaryd/canaryd/internal/metrics"
	"github.com/canaryd/canaryd/internal/proxy"
	"github.com/canaryd/canaryd/internal/release"
	"github.com/canaryd/canaryd/internal/route"
)

// Server is one running gateway.
type Server struct {
	log     *slog.Logger
	metrics *metrics.Registry
	judged  *metrics.Registry
	release *release.Controller
	// publisher ships this replica's judged traffic for the controller,
	// wherever the lease is.
	publisher *release.Publisher
	health    *health.Checker
	alerts    *alerting.Service
	builder   *route.Builder
	routes    route.Holder
	tracker   *proxy.Tracker

	plane *control.Plane
	// api serves /api/v1; Reload replaces it so token changes apply.
	api atomic.Pointer[http.Handler]
	// streams is closed at shutdown: it ends the admin API's event streams.
	streams chan struct{}

	mu     sync.Mutex
	cfg    *config.Config
	states map[string]route.State

	dataLn, adminLn net.Listener
	data, admin     *http.Server
	closers         []io.Closer
}

// Options configure New.
type Options struct {
	Logger *slog.Logger
	// Plane is the control plane over the store that holds the runtime
	// state; required.
	Plane *control.Plane
}

// New brings the store in line with the config, builds the first routing
// Table from the store and opens both listeners, so a port that is taken is
// reported before anything runs.
func New(ctx context.Context, cfg *config.Config, o Options) (*Server, error) {
	s := &Server{log: o.Logger, cfg: cfg, tracker: proxy.NewTracker(), plane: o.Plane}
	s.tracker.Rate = cfg.Proxy.MoveRate
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.metrics = metrics.New(metrics.Options{})
	s.judged = metrics.New(metrics.Options{NoRuntimeMetrics: true})
	s.builder = &route.Builder{Metrics: s.metrics, Judged: s.judged}
	s.health = health.NewChecker(health.Options{Logger: s.log})
	if err := s.plane.Sync(ctx, cfg); err != nil {
		return nil, err
	}
	states, err := s.plane.Snapshot(ctx, cfg)
	if err != nil {
		return nil, err
	}
	t, err := s.builder.Build(cfg, states)
	if err != nil {
		return nil, err
	}
	s.states = states
	s.routes.Publish(t)
	if err := s.checkHealth(cfg, t); err != nil {
		return nil, err
	}
	replica := holderID()
	s.release = release.New(release.Options{
		Plane:    s.plane,
		Config:   s.config,
		Judged:   s.judged,
		Analysis: s.builder.Analysis,
		Holder:   replica,
		Logger:   s.log,
		Gateway:  s.gatewayURL,
	})
	s.publisher = &release.Publisher{Store: s.plane.Store(), Replica: replica, Judged: s.judged,
		Analysis: s.builder.Analysis, Logger: s.log.With("component", "analysis publisher")}

	s.alerts, err = alerting.New(ctx, alerting.Options{
		Store:   s.plane.Store(),
		Config:  &cfg.Alerts,
		Logger:  s.log.With("component", "alerts"),
		Metrics: s.alertTotals,
	})
	if err != nil {
		return nil, err
	}

	accessLog, closer, err := openAccessLog(cfg.AccessLog.Path)
	if err != nil {
		return nil, err
	}
	if closer != nil {
		s.closers = append(s.closers, closer)
	}
	p := proxy.New(proxy.Options{Routes: &s.routes, Config: cfg.Proxy, AccessLog: accessLog, Logger: s.log, Tracker: s.tracker})
	s.data = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: cfg.Proxy.ReadHeaderTimeout.D(),
		IdleTimeout:       cfg.Proxy.IdleTimeout.D(),
		MaxHeaderBytes:    cfg.Proxy.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if cfg.H2C {
		s.data.Protocols = new(http.Protocols)
		s.data.Protocols.SetHTTP1(true)
		s.data.Protocols.SetUnencryptedHTTP2(true)
	}
	if cfg.TLS != nil {
		certs, err := newCertReloader(cfg.TLS.Cert, cfg.TLS.Key)
		if err != nil {
			return nil, err
		}
		s.data.TLSConfig = &tls.Config{GetCertificate: certs.get, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	}
	if s.dataLn, err = listen("listen", cfg.Listen); err != nil {
		return nil, err
	}
	if cfg.Admin.Listen != "" {
		if s.adminLn, err = listen("admin.listen", cfg.Admin.Listen); err != nil {
			s.dataLn.Close()
			return nil, err
		}
		s.streams = make(chan struct{})
		s.setAPI(cfg)
		s.admin = &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	}
	return s, nil
}

func listen(field, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if isAddrInUse(err) {
			return nil, fmt.Errorf("%s: %s is already in use by another process (choose another address)", field, addr)
		}
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return ln, nil
}

// DataAddr is the data plane's listening address (useful with port 0).
func (s *Server) DataAddr() string { return s.dataLn.Addr().String() }

// AdminAddr is the admin listener's address, or "".
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// Routes returns the routing holder (read-only use).
func (s *Server) Routes() *route.Holder { return &s.routes }

// Metrics returns the metrics registry.
func (s *Server) Metrics() *metrics.Registry { return s.metrics }

// Run serves until ctx ends, then shuts down gracefully: it stops accepting,
// lets in-flight requests finish up to the shutdown timeout, and returns.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	start := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	start("data plane", func() error {
		if s.data.TLSConfig != nil {
			return s.data.ServeTLS(s.dataLn, "", "")
		}
		return s.data.Serve(s.dataLn)
	})
	if s.admin != nil {
		start("admin", func() error { return s.admin.Serve(s.adminLn) })
	}
	start("metrics", func() error { return s.metrics.Run(ctx) })
	start("judged metrics", func() error { return s.judged.Run(ctx) })
	start("health checks", func() error { return s.health.Run(ctx) })
	start("connection mover", func() error { return s.tracker.Run(ctx, &s.routes) })
	start("alerts", func() error { return s.alerts.Run(ctx) })
	start("release controller", func() error { return s.release.Run(ctx) })
	start("analysis publisher", func() error { return s.publisher.Run(ctx) })
	start("routing", func() error { return s.followStore(ctx) })
	s.mu.Lock()
	services := len(s.cfg.Services)
	s.mu.Unlock()
	s.log.Info("canaryd serving", "listen", s.DataAddr(), "admin", s.AdminAddr(), "services", services)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancel()
	if s.streams != nil {
		close(s.streams)
	}
	s.mu.Lock()
	timeout := s.cfg.Proxy.ShutdownTimeout.D()
	s.mu.Unlock()
	sctx, scancel := context.WithTimeout(context.Background(), timeout)
	defer scancel()
	if err := s.data.Shutdown(sctx); err != nil {
		s.log.Warn("data plane shutdown did not drain in time", "err", err)
	}
	if s.admin != nil {
		_ = s.admin.Shutdown(sctx)
	}
	wg.Wait()
	for _, c := range s.closers {
		_ = c.Close()
	}
	return runErr
}

// Reload applies a new config. The new config must have been loaded and
// validated already; if the store cannot be synced or the routing Table
// cannot be built, the running one stays. Listener addresses cannot change
// without a restart.
func (s *Server) Reload(ctx context.Context, cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cfg.Listen != s.cfg.Listen || cfg.Admin.Listen != s.cfg.Admin.Listen {
		return errors.New("reload: listen and admin.listen cannot change without a restart")
	}
	if err := s.plane.Sync(ctx, cfg); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if err := s.alerts.Reload(ctx, &cfg.Alerts); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if err := s.rebuild(ctx, cfg, true); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if fields := restartOnly(s.cfg, cfg); len(fields) > 0 {
		s.log.Warn("reload: these changes take effect after a restart", "fields", strings.Join(fields, ", "))
	}
	s.cfg = cfg
	if s.admin != nil {
		s.setAPI(cfg)
	}
	return nil
}

// followStore rebuilds routing after every committed change, and once a
// second so endpoints whose heartbeats stopped drop out at their TTL.
func (s *Server) followStore(ctx context.Context) error {
	changes := s.plane.Store().Subscribe(ctx)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-changes:
			if !ok {
				return nil
			}
		case <-tick.C:
		}
		s.mu.Lock()
		err := s.rebuild(ctx, s.cfg, false)
		s.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			s.log.Error("routing not refreshed from the store", "err", err.Error())
		}
	}
}

// rebuild reads the routing state from the store and publishes a new Table
// when it differs from the current one (or always, with force). s.mu held.
func (s *Server) rebuild(ctx context.Context, cfg *config.Config, force bool) error {
	states, err := s.plane.Snapshot(ctx, cfg)
	if err != nil {
		return err
	}
	if !force && reflect.DeepEqual(states, s.states) {
		return nil
	}
	t, err := s.builder.Build(cfg, states)
	if err != nil {
		return err
	}
	s.states = states
	s.routes.Publish(t)
	s.log.Debug("routing published", "version", t.Version)
	return s.checkHealth(cfg, t)
}

// checkHealth points the active health checks at the endpoints of every
// routed build of the services that configure a health path.
func (s *Server) checkHealth(cfg *config.Config, t *route.Table) error {
	var targets []health.Target
	for i := range cfg.Services {
		sc := &cfg.Services[i]
		svc := t.Service(sc.Name)
		if sc.Health.Path == "" || svc == nil {
			continue
		}
		check := health.Active{Path: sc.Health.Path, Interval: sc.Health.Interval.D(), Timeout: sc.Health.Timeout.D(),
			HealthyThreshold: sc.Health.HealthyThreshold, UnhealthyThreshold: sc.Health.UnhealthyThreshold}
		seen := map[string]bool{}
		for _, b := range []*route.Build{svc.Stable, svc.Canary} {
			if b == nil {
				continue
			}
			for _, ep := range b.Endpoints.Endpoints() {
				if !seen[ep.Addr()] {
					seen[ep.Addr()] = true
					targets = append(targets, health.Target{Endpoint: ep, Check: check, Service: sc.Name})
				}
			}
		}
	}
	return s.health.SetTargets(targets)
}

func (s *Server) config() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// gatewayURL is the data plane's base URL on this host, where a release's
// load test sends its requests so they are routed and judged like users'.
func (s *Server) gatewayURL() string {
	scheme := "http"
	if s.config().TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + s.DataAddr()
}

// holderID names this server for the controller lease and the analysis it
// publishes: host and pid, and a random part so that two servers in one
// process (tests) are two replicas.
func holderID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%04x", host, os.Getpid(), rand.Uint32()&0xffff)
}

// alertTotals feeds the alert-only monitor from the data plane's counters.
func (s *Server) alertTotals(service, build string) (alerting.Totals, bool) {
	bm := s.metrics.Lookup(service, build)
	if bm == nil {
		return alerting.Totals{}, false
	}
	t := bm.Totals()
	return alerting.Totals{Requests: t.Requests(), Errors: t.Errors(), LatencySum: t.LatencySum}, true
}

// Alerts returns the alerting service.
func (s *Server) Alerts() *alerting.Service { return s.alerts }

// Releases returns the release controller.
func (s *Server) Releases() *release.Controller { return s.release }

// Plane returns the control plane.
func (s *Server) Plane() *control.Plane { return s.plane }

func openAccessLog(path string) (*slog.Logger, io.Closer, error) {
	var w io.Writer
	var c io.Closer
	switch path {
	case "":
		return nil, nil, nil
	case "stdout":
		w = os.Stdout
	case "stderr":
		w = os.Stderr
	default:
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("access_log.path: %w", err)
		}
		w, c = f, f
	}
	return slog.New(slog.NewJSONHandler(w, nil)), c, nil
}
