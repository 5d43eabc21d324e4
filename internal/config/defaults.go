package config

import (
	"math"
	"time"
)

// applyDefaults fills every field the file may leave out.
func (c *Config) applyDefaults() {
	if c.Store == "" {
		c.Store = "sqlite://canaryd.db"
	}
	p := &c.Proxy
	setDur(&p.DialTimeout, 5*time.Second)
	setDur(&p.ResponseHeaderTimeout, 60*time.Second)
	setDur(&p.IdleTimeout, 120*time.Second)
	setDur(&p.ReadHeaderTimeout, 10*time.Second)
	setDur(&p.UpstreamIdleTimeout, 90*time.Second)
	setDur(&p.ShutdownTimeout, 30*time.Second)
	setInt(&p.MaxIdlePerEndpoint, 512)
	setInt(&p.MaxHeaderBytes, 64<<10)
	setInt(&p.MoveRate, 50)
	if p.RequestIDHeader == "" {
		p.RequestIDHeader = DefaultRequestIDHeader
	}
	for i := range c.Services {
		c.Services[i].applyDefaults()
	}
	c.Alerts.applyDefaults()
}

func (s *Service) applyDefaults() {
	if s.Match.PathPrefix == "" {
		s.Match.PathPrefix = "/"
	}
	if s.User.Sources == nil {
		s.User.Sources = []UserSource{{Kind: "header", Name: DefaultUserHeader}}
		if s.User.AnonymousCookie == "" {
			s.User.AnonymousCookie = DefaultAnonymousCookie
		}
	}
	if s.Routing == "" {
		s.Routing = RoutingSticky
	}
	if s.Salt == "" {
		s.Salt = s.Name
	}
	if s.Overrides.Header == "" {
		s.Overrides.Header = DefaultOverrideHeader
	}
	if s.BuildHeader == "" {
		s.BuildHeader = DefaultBuildHeader
	}
	if s.Balance == "" {
		s.Balance = "p2c"
	}
	h := &s.Health
	setDur(&h.Interval, 10*time.Second)
	setDur(&h.Timeout, 2*time.Second)
	setInt(&h.HealthyThreshold, 2)
	setInt(&h.UnhealthyThreshold, 3)
	setInt(&h.MaxFails, 5)
	setDur(&h.FailTimeout, 10*time.Second)
	setInt(&s.Retries.Attempts, 2)
	if s.Retries.Budget == 0 {
		s.Retries.Budget = 20
	}
	for i := range s.Builds {
		if s.Builds[i].State == "" {
			s.Builds[i].State = StateDeployed
		}
	}
	r := &s.Release
	if len(r.Steps) == 0 {
		r.Steps = []Percent{5, 10, 30, 50, 75, 100}
	}
	setDur(&r.StepDuration, 2*time.Minute)
	setDur(&r.MaxStepDuration, 5*r.StepDuration.D())
	if r.OnInconclusive == "" {
		r.OnInconclusive = "pause"
	}
	setDur(&r.Analysis.Interval, 10*time.Second)
	setInt(&r.Analysis.MinSamples, 100)
	if r.Analysis.MaxErrorRateDelta == 0 {
		r.Analysis.MaxErrorRateDelta = 1
	}
	if r.Analysis.MaxLatencyDeviation == 0 {
		r.Analysis.MaxLatencyDeviation = 30
	}
	for i := range r.Analysis.Metrics {
		m := &r.Analysis.Metrics[i]
		setDur(&m.Interval, r.Analysis.Interval.D())
		setDur(&m.Timeout, 5*time.Second)
		setInt(&m.FailureLimit, 1)
		if m.Kind == "" {
			m.Kind = MetricThreshold
		}
	}
	if lt := r.LoadTest; lt != nil {
		setInt(&lt.Users, loadTestUsers(r.Steps))
		if lt.UserHeader == "" {
			lt.UserHeader = DefaultUserHeader
			for _, src := range s.User.Sources {
				if src.Kind == "header" {
					lt.UserHeader = src.Name
					break
				}
			}
		}
		if lt.Method == "" {
			lt.Method = "GET"
		}
		if lt.Path == "" {
			lt.Path = s.Match.PathPrefix
		}
		setInt(&lt.Concurrency, 64)
		setDur(&lt.Timeout, 5*time.Second)
		if lt.MaxRequests == 0 && lt.Rate > 0 && lt.Rate <= MaxLoadRate {
			lt.MaxRequests = int(math.Ceil(lt.Rate * r.MaxStepDuration.D().Seconds()))
		}
	}
	for i := range r.Gates {
		g := &r.Gates[i]
		setDur(&g.Timeout, 10*time.Second)
		if g.OnDeny == "" {
			g.OnDeny = "pause"
		}
	}
}

func setDur(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

// loadTestUsers is the default number of synthetic users of a load test:
// enough that the first step's share holds about 50 of them (sticky
// routing judges users, and a handful on the canary could never bound its
// error rate), and at least 100. Steps 5, 10, … give 1 000.
func loadTestUsers(steps []Percent) int {
	n := 100
	if len(steps) > 0 && steps[0] > 0 {
		n = max(n, int(math.Ceil(50*100/float64(steps[0]))))
	}
	return min(n, 100_000)
}

func setInt(n *int, def int) {
	if *n == 0 {
		*n = def
	}
}
