package release

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/loadgen"
	"github.com/canaryd/canaryd/internal/store"
)

// LoadStatus is the load-test gate's account of the current step, for the
// release record, compare and the API.
type LoadStatus struct {
	Step    int       `json:"step"` // index into Steps
	Traffic float64   `json:"traffic"`
	Target  string    `json:"target"`
	Rate    float64   `json:"rate"`
	Started time.Time `json:"started"`
	// Sent, Dropped (at the concurrency cap) and the finished requests by
	// status class and by build (from the service's build header, when
	// expose_build is on).
	Sent    uint64            `json:"sent"`
	Dropped uint64            `json:"dropped"`
	Classes map[string]uint64 `json:"classes,omitempty"`
	Builds  map[string]uint64 `json:"builds,omitempty"`
	// Done says the step's run ended (Why: max requests, duration,
	// stopped); Error why it could not start.
	Done  bool   `json:"done,omitempty"`
	Why   string `json:"why,omitempty"`
	Error string `json:"error,omitempty"`
}

// loadRun is the load test of one step of one release on this replica.
type loadRun struct {
	key    string // release, step and config it runs for
	gen    *loadgen.Generator
	status LoadStatus
}

// syncLoad starts, keeps or stops the load test of a service after its
// tick, so that it runs exactly while a step of its release is being
// judged on this replica: not before the before_start gates allowed the
// release, not while it is paused or held at a manual gate or waiting for
// a manual promote, and not after it ended. A new step (or a changed
// load_test) starts a new run.
func (c *Controller) syncLoad(ctx context.Context, sc *config.Service) {
	rel := c.releases[sc.Name]
	key := ""
	if lt := sc.Release.LoadTest; lt != nil && rel != nil && rel.rec.Status.Active() && rel.st.Started &&
		rel.st.Step >= 0 && rel.st.Held == "" && !rel.st.Waiting && !pausedOf(ctx, c, sc.Name) {
		key = fmt.Sprintf("%s|%d|%v", rel.rec.ID, rel.st.Step, *lt)
	}
	run := c.loads[sc.Name]
	if run != nil && run.key != key {
		c.stopLoad(sc.Name)
		if rel != nil && rel.st.LoadTest != nil && strings.HasPrefix(run.key, rel.rec.ID+"|") {
			st := run.status // its final counts, for the record
			rel.st.LoadTest = &st
		}
		run = nil
	}
	if key == "" {
		return
	}
	if run == nil {
		run = c.startLoad(sc, rel, key)
		if c.loads == nil {
			c.loads = map[string]*loadRun{}
		}
		c.loads[sc.Name] = run
	}
	if run.gen != nil {
		run.status.fill(run.gen.Snapshot())
	}
	st := run.status
	rel.st.LoadTest = &st
}

// startLoad starts the run of the current step, bounded by what is left
// of the step's max_step_duration and by load_test.max_requests.
func (c *Controller) startLoad(sc *config.Service, rel *running, key string) *loadRun {
	lt := sc.Release.LoadTest
	p := rel.st.Policy
	run := &loadRun{key: key, status: LoadStatus{Step: rel.st.Step, Traffic: p.Steps[rel.st.Step], Rate: lt.Rate, Started: c.o.Now()}}
	base, serverName, err := c.loadTarget(sc)
	if err != nil {
		run.status.Error = err.Error()
		c.o.Logger.Warn("load test not started", "service", sc.Name, "err", err.Error())
		return run
	}
	run.status.Target = base + lt.Path
	left := p.MaxStepDuration - c.o.Now().Sub(rel.st.StepStart)
	if left < time.Second {
		left = time.Second // a step past its maximum is about to pause or roll back
	}
	header := http.Header{}
	for k, v := range lt.Headers {
		header.Set(k, v)
	}
	if header.Get("User-Agent") == "" {
		header.Set("User-Agent", "canaryd-loadtest")
	}
	buildHeader := ""
	if sc.ExposeBuild {
		buildHeader = sc.BuildHeader
	}
	var body []byte
	if lt.Body != "" {
		body = []byte(lt.Body)
	}
	gen, err := loadgen.Start(context.Background(), loadgen.Config{
		URL: base + lt.Path, Method: lt.Method, Header: header, Host: sc.Match.Host, Body: body, ServerName: serverName,
		Rate: lt.Rate, Users: lt.Users, UserHeader: lt.UserHeader, UserPrefix: "canaryd-loadtest-",
		Concurrency: lt.Concurrency, MaxRequests: lt.MaxRequests, Duration: left, Timeout: lt.Timeout.D(),
		BuildHeader: buildHeader,
	})
	if err != nil {
		run.status.Error = err.Error()
		c.o.Logger.Warn("load test not started", "service", sc.Name, "err", err.Error())
		return run
	}
	run.gen = gen
	c.o.Logger.Info("load test started", "service", sc.Name, "release", rel.rec.ID, "step", rel.st.Step,
		"rate", lt.Rate, "users", lt.Users, "target", run.status.Target, "for", left.String())
	return run
}

// stopLoad ends the load test of a service, if any.
func (c *Controller) stopLoad(service string) {
	run := c.loads[service]
	delete(c.loads, service)
	if run == nil || run.gen == nil {
		return
	}
	res := run.gen.Stop()
	run.status.fill(res)
	c.o.Logger.Info("load test stopped", "service", service, "step", run.status.Step, "sent", res.Sent,
		"dropped", res.Dropped, "classes", fmt.Sprint(res.Total.Classes))
}

// stopLoads ends every load test (lease lost, shutdown).
func (c *Controller) stopLoads() {
	for service := range c.loads {
		c.stopLoad(service)
	}
}

// stopStrayLoads ends the load tests of services no longer in the config
// or no longer driven by the controller.
func (c *Controller) stopStrayLoads(cfg *config.Config) {
	for service := range c.loads {
		keep := false
		for i := range cfg.Services {
			if sc := &cfg.Services[i]; sc.Name == service && sc.Release.ControllerOn() {
				keep = true
			}
		}
		if !keep {
			c.stopLoad(service)
		}
	}
}

// loadTarget returns the base URL the load test sends to, and the name to
// verify a TLS certificate against: load_test.target, else the gateway's
// own listener (Options.Gateway, else the config's listen address).
func (c *Controller) loadTarget(sc *config.Service) (base, serverName string, err error) {
	if t := sc.Release.LoadTest.Target; t != "" {
		return strings.TrimRight(t, "/"), "", nil
	}
	cfg := c.o.Config()
	if cfg.TLS != nil {
		serverName = sc.Match.Host
	}
	if c.o.Gateway != nil {
		if g := c.o.Gateway(); g != "" {
			return strings.TrimRight(g, "/"), serverName, nil
		}
	}
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil || port == "0" {
		return "", "", fmt.Errorf("the gateway's address is not known (listen %q): set load_test.target", cfg.Listen)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port), serverName, nil
}

// fill copies a generator's counts into s.
func (s *LoadStatus) fill(r loadgen.Result) {
	s.Sent, s.Dropped, s.Done, s.Why = r.Sent, r.Dropped, r.Done, r.Why
	s.Classes = maps.Clone(r.Total.Classes)
	s.Builds = nil
	for b, n := range r.Builds {
		if b == "" {
			continue
		}
		if s.Builds == nil {
			s.Builds = map[string]uint64{}
		}
		s.Builds[b] = n.Requests
	}
}

// pausedOf reports whether a service is paused now.
func pausedOf(ctx context.Context, c *Controller, service string) bool {
	paused := false
	_ = c.o.Plane.Store().View(ctx, func(r store.Reader) error {
		svc, err := r.GetService(ctx, service)
		paused = err == nil && svc.Paused
		return err
	})
	return paused
}
