// Package release is the release controller: for every service with a
// canary it feeds the judge one bin a second from the data plane's judged
// metrics, raises traffic step by step when a step passes, rolls back at
// once when the judge fails, promotes after the last step, and pauses (or
// rolls back) a step that stays inconclusive too long. It acts only through
// the control plane's operations, so every action is an event with a
// reason, and it keeps its state in release records so another replica (or
// this one after a crash) resumes at the right step.
package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/control"
	"github.com/canaryd/canaryd/internal/judge"
	"github.com/canaryd/canaryd/internal/metrics"
	"github.com/canaryd/canaryd/internal/route"
	"github.com/canaryd/canaryd/internal/store"
)

// LeaseName is the store lease that makes one replica the controller.
const LeaseName = "release-controller"

// Actor is how the controller appears in the event log.
const Actor control.Actor = "controller"

// Options configure a Controller.
type Options struct {
	Plane *control.Plane
	// Config returns the config in force (it may change on reload).
	Config func() *config.Config
	// Judged is the data plane's registry of randomised traffic.
	Judged *metrics.Registry
	// Analysis returns a service's data-plane feed, where the controller
	// installs the first-event tracker of a release.
	Analysis func(service string) *route.Analysis
	// Holder names this replica for the lease; LeaseTTL is its length
	// (default 10 s).
	Holder   string
	LeaseTTL time.Duration
	// Tick is the analysis period (default 1 s).
	Tick   time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// Controller runs releases. Run it once per process; only the replica that
// holds the lease acts.
type Controller struct {
	o        Options
	releases map[string]*running // by service; only Run's goroutine touches it
	leader   bool

	mu     sync.Mutex
	status map[string]Status // published copies for readers
}

// Status is a running release as readers (API, demo, compare) see it.
type Status struct {
	Release   store.Release  `json:"release"`
	Step      int            `json:"step"` // index into Steps; -1 before the first
	Steps     []float64      `json:"steps"`
	StepStart time.Time      `json:"step_start"`
	Verdict   *judge.Verdict `json:"verdict,omitempty"`
	Exposed   float64        `json:"users_exposed"`
	Harmed    float64        `json:"users_harmed"`
	Waiting   bool           `json:"waiting_for_promote,omitempty"`
}

// Status returns the release of a service that this replica is running, if
// any. Safe for concurrent use.
func (c *Controller) Status(service string) (Status, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.status[service]
	return st, ok
}

func (c *Controller) publish(service string, rel *running) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status == nil {
		c.status = map[string]Status{}
	}
	if rel == nil {
		delete(c.status, service)
		return
	}
	rec := rel.rec
	rec.State = nil
	c.status[service] = Status{Release: rec, Step: rel.st.Step, Steps: rel.st.Policy.Steps, StepStart: rel.st.StepStart,
		Verdict: rel.st.Verdict, Exposed: rel.st.Exposed, Harmed: rel.st.Harmed, Waiting: rel.st.Waiting}
}

// running is one release in memory.
type running struct {
	rec     store.Release
	st      persisted
	judge   *judge.Judge
	tracker *judge.Tracker
	saved   time.Time
}

// persisted is the controller's state of a release, kept in the release
// record so a restart resumes it.
type persisted struct {
	Policy    Policy          `json:"policy"`
	Step      int             `json:"step"`       // index into Policy.Steps; -1 before the first
	StepStart time.Time       `json:"step_start"` // when the current step began
	LastBin   time.Time       `json:"last_bin"`   // end of the last bin judged
	Judge     json.RawMessage `json:"judge"`
	Verdict   *judge.Verdict  `json:"verdict,omitempty"`
	Waiting   bool            `json:"waiting,omitempty"` // passed the last step; waiting for a manual promote
	// Exposed and Harmed are the distinct users seen on the canary and
	// harmed by it, for the release record.
	Exposed float64 `json:"users_exposed"`
	Harmed  float64 `json:"users_harmed"`
}

// New returns a Controller.
func New(o Options) *Controller {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 10 * time.Second
	}
	return &Controller{o: o, releases: map[string]*running{}}
}

// Run drives releases until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	t := time.NewTicker(c.o.Tick)
	defer t.Stop()
	defer c.resign()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := c.Step(ctx); err != nil && ctx.Err() == nil {
			c.o.Logger.Error("release controller step failed", "err", err.Error())
		}
	}
}

// Step is one pass: take or keep the lease, then advance every release.
// Run calls it every Tick; tests call it with a fake clock.
func (c *Controller) Step(ctx context.Context) error {
	now := c.o.Now()
	st := c.o.Plane.Store()
	err := st.Update(ctx, func(tx store.Tx) error {
		_, err := tx.AcquireLease(ctx, LeaseName, c.o.Holder, c.o.LeaseTTL, now)
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		if c.leader {
			c.o.Logger.Warn("release controller lease lost", "holder", c.o.Holder)
			c.forget()
		}
		c.leader = false
		return nil
	}
	if err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	c.leader = true
	cfg := c.o.Config()
	var errs []error
	for i := range cfg.Services {
		sc := &cfg.Services[i]
		if !sc.Release.ControllerOn() {
			continue
		}
		if err := c.service(ctx, sc, now); err != nil {
			errs = append(errs, fmt.Errorf("service %q: %w", sc.Name, err))
		}
		c.publish(sc.Name, c.releases[sc.Name])
	}
	return errors.Join(errs...)
}

// forget drops in-memory releases (after losing the lease): the new leader
// resumes them from their records.
func (c *Controller) forget() {
	for name, r := range c.releases {
		c.o.Analysis(name).SetTracker(nil)
		_ = r
	}
	c.releases = map[string]*running{}
	c.mu.Lock()
	c.status = nil
	c.mu.Unlock()
}

// resign releases the lease on shutdown so another replica takes over at once.
func (c *Controller) resign() {
	if !c.leader {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, r := range c.releases {
		_ = c.save(ctx, r, true)
	}
	_ = c.o.Plane.Store().Update(ctx, func(tx store.Tx) error { return tx.ReleaseLease(ctx, LeaseName, c.o.Holder) })
}

func (c *Controller) service(ctx context.Context, sc *config.Service, now time.Time) error {
	var svc store.Service
	var canary *store.Build
	err := c.o.Plane.Store().View(ctx, func(r store.Reader) error {
		var err error
		if svc, err = r.GetService(ctx, sc.Name); err != nil {
			return err
		}
		if svc.Canary != "" {
			b, err := r.GetBuild(ctx, sc.Name, svc.Canary)
			if err != nil {
				return err
			}
			canary = &b
		}
		return nil
	})
	if err != nil {
		return err
	}
	rel := c.releases[sc.Name]
	if rel != nil && (canary == nil || rel.rec.Build != canary.ID) {
		// The canary ended or changed outside the controller (an operator
		// promoted, rolled back or replaced it): close the record.
		if err := c.finish(ctx, rel, outsideOutcome(ctx, c.o.Plane.Store(), rel), "ended by an operator"); err != nil {
			return err
		}
		rel = nil
	}
	if canary == nil {
		return nil
	}
	if rel == nil {
		if rel, err = c.begin(ctx, sc, svc, canary, now); err != nil {
			return err
		}
	}
	return c.advance(ctx, sc, svc, rel, now)
}

// begin resumes the release of the current canary from its record, or
// starts a new record.
func (c *Controller) begin(ctx context.Context, sc *config.Service, svc store.Service, canary *store.Build, now time.Time) (*running, error) {
	var recs []store.Release
	err := c.o.Plane.Store().View(ctx, func(r store.Reader) error {
		var err error
		recs, err = r.ListReleases(ctx, store.ReleaseFilter{Service: sc.Name, ActiveOnly: true})
		return err
	})
	if err != nil {
		return nil, err
	}
	rel := &running{}
	for _, rec := range recs {
		if rec.Build == canary.ID && json.Unmarshal(rec.State, &rel.st) == nil {
			rel.rec = rec
			break
		}
	}
	if rel.rec.ID != "" {
		j, err := judge.New(rel.st.Policy.Judge)
		if err == nil && len(rel.st.Judge) > 0 {
			err = j.UnmarshalJSON(rel.st.Judge)
		}
		if err != nil {
			c.o.Logger.Warn("release state unreadable; judging afresh", "service", sc.Name, "err", err.Error())
			j, _ = judge.New(rel.st.Policy.Judge)
		}
		rel.judge = j
		// The store is the truth about traffic: an action taken just before
		// a crash may not be in the record yet.
		if idx := rel.st.Policy.stepIndex(svc.Traffic); idx != rel.st.Step {
			rel.st.Step, rel.st.StepStart = idx, svc.UpdatedAt
		}
		c.o.Logger.Info("release resumed", "service", sc.Name, "build", canary.ID, "step", rel.st.Step)
	} else {
		p := PolicyFromConfig(sc)
		j, err := judge.New(p.Judge)
		if err != nil {
			return nil, err
		}
		rel.judge = j
		rel.st = persisted{Policy: p, Step: p.stepIndex(svc.Traffic), StepStart: now, LastBin: now}
		rel.rec = store.Release{ID: fmt.Sprintf("%s-%s-%d", sc.Name, canary.ID, now.Unix()), Service: sc.Name, Build: canary.ID,
			Status: store.ReleaseRunning, Step: rel.st.Step + 1, Traffic: svc.Traffic, StartedAt: now}
		c.o.Logger.Info("release started", "service", sc.Name, "build", canary.ID, "traffic", svc.Traffic)
	}
	rel.judge.MarkHealthy(rel.st.StepStart)
	rel.tracker = judge.NewTracker(1)
	rel.tracker.SetThresholds(rel.judge.Thresholds())
	c.o.Analysis(sc.Name).SetTracker(rel.tracker)
	c.releases[sc.Name] = rel
	return rel, c.save(ctx, rel, true)
}

// advance feeds new bins to the judge and acts on its verdict.
func (c *Controller) advance(ctx context.Context, sc *config.Service, svc store.Service, rel *running, now time.Time) error {
	c.observe(sc.Name, svc, rel)
	p := rel.st.Policy
	if rel.st.Step < 0 && !svc.Paused {
		// The canary was started below the first step: begin there.
		return c.setStep(ctx, rel, 0, now, fmt.Sprintf("release started: first step %g%%", p.Steps[0]))
	}
	v := rel.judge.Verdict(now, rel.st.StepStart)
	rel.st.Verdict = &v
	// At 100 % nobody is left on stable to compare with: the last step
	// only bakes under the guardrails and absolute ceilings.
	fullBake := p.Steps[rel.st.Step] >= 100 && now.Sub(rel.st.StepStart) >= p.StepDuration
	switch {
	case v.Outcome == judge.Fail:
		reason := "judge: " + failReasons(v)
		if _, err := c.o.Plane.Rollback(ctx, Actor, sc.Name, reason); err != nil && !errors.Is(err, control.ErrIllegal) {
			return err
		}
		return c.finish(ctx, rel, store.ReleaseRolledBack, reason)
	case svc.Paused:
	case v.Outcome == judge.Pass || fullBake:
		if rel.st.Step >= len(p.Steps)-1 {
			if !p.AutoPromote {
				if !rel.st.Waiting {
					rel.st.Waiting = true
					c.o.Logger.Info("release passed every step; waiting for a manual promote", "service", sc.Name)
				}
				break
			}
			reason := fmt.Sprintf("passed every step (%s)", summary(v))
			if _, err := c.o.Plane.Promote(ctx, Actor, sc.Name, reason); err != nil && !errors.Is(err, control.ErrIllegal) {
				return err
			}
			return c.finish(ctx, rel, store.ReleasePromoted, reason)
		}
		return c.setStep(ctx, rel, rel.st.Step+1, now, fmt.Sprintf("step %g%% passed (%s)", p.Steps[rel.st.Step], summary(v)))
	case now.Sub(rel.st.StepStart) > p.MaxStepDuration:
		reason := fmt.Sprintf("step %g%% still inconclusive after %s (%s)", p.Steps[rel.st.Step], p.MaxStepDuration, summary(v))
		if p.OnInconclusive == "rollback" {
			if _, err := c.o.Plane.Rollback(ctx, Actor, sc.Name, reason); err != nil && !errors.Is(err, control.ErrIllegal) {
				return err
			}
			return c.finish(ctx, rel, store.ReleaseRolledBack, reason)
		}
		if _, err := c.o.Plane.SetPaused(ctx, Actor, sc.Name, true, reason); err != nil && !errors.Is(err, control.ErrIllegal) {
			return err
		}
	}
	return c.save(ctx, rel, false)
}

func (c *Controller) setStep(ctx context.Context, rel *running, step int, now time.Time, reason string) error {
	traffic := rel.st.Policy.Steps[step]
	if _, err := c.o.Plane.SetTraffic(ctx, Actor, rel.rec.Service, traffic, reason); err != nil {
		return err
	}
	rel.st.Step, rel.st.StepStart = step, now
	rel.rec.Step, rel.rec.Traffic = step+1, traffic
	return c.save(ctx, rel, true)
}

// observe turns the judged metrics' new bins into judge bins. Stable and
// canary bins are sealed by the same tick, so their ends line up.
func (c *Controller) observe(service string, svc store.Service, rel *running) {
	sb := c.o.Judged.Lookup(service, stableOf(c, service))
	cb := c.o.Judged.Lookup(service, rel.rec.Build)
	if cb == nil {
		return
	}
	cbins := cb.Window(rel.st.LastBin)
	var sbins []metrics.Bin
	if sb != nil {
		sbins = sb.Window(rel.st.LastBin)
	}
	byEnd := make(map[int64]*metrics.Bin, len(sbins))
	for i := range sbins {
		byEnd[sbins[i].End.UnixNano()] = &sbins[i]
	}
	share := svc.Traffic / 100
	for i := range cbins {
		cbin := &cbins[i]
		b := judge.Bin{Time: cbin.End, Share: share}
		b.Canary = sample(cbin)
		if s := byEnd[cbin.End.UnixNano()]; s != nil {
			b.Stable = sample(s)
		}
		if i == len(cbins)-1 {
			rel.tracker.Drain(&b)
			rel.st.Exposed, rel.st.Harmed = cbin.Users, cbin.Harmed
		}
		if err := rel.judge.Observe(&b); err != nil {
			c.o.Logger.Debug("bin dropped", "service", service, "err", err.Error())
		}
		rel.st.LastBin = cbin.End
	}
	rel.tracker.SetThresholds(rel.judge.Thresholds())
}

func sample(b *metrics.Bin) judge.Sample {
	return judge.Sample{Requests: b.Requests, Errors: b.Errors, Latency: b.Latency.Histogram()}
}

// stableOf returns the id of the service's stable build in the current
// routing, or "".
func stableOf(c *Controller, service string) string {
	var id string
	_ = c.o.Plane.Store().View(context.Background(), func(r store.Reader) error {
		bs, err := r.ListBuilds(context.Background(), store.BuildFilter{Service: service, States: []store.BuildState{store.StateStable}})
		if err == nil && len(bs) == 1 {
			id = bs[0].ID
		}
		return err
	})
	return id
}

// save writes the release record, at most every 5 s unless forced.
func (c *Controller) save(ctx context.Context, rel *running, force bool) error {
	now := c.o.Now()
	if !force && now.Sub(rel.saved) < 5*time.Second {
		return nil
	}
	js, err := rel.judge.MarshalJSON()
	if err != nil {
		return err
	}
	rel.st.Judge = js
	state, err := json.Marshal(rel.st)
	if err != nil {
		return err
	}
	rel.rec.State = state
	err = c.o.Plane.Store().Update(ctx, func(tx store.Tx) error {
		stored, err := tx.PutRelease(ctx, rel.rec)
		if err != nil {
			return err
		}
		rel.rec = stored
		return nil
	})
	if err == nil {
		rel.saved = now
	}
	return err
}

// finish closes a release record with its outcome.
func (c *Controller) finish(ctx context.Context, rel *running, status store.ReleaseStatus, reason string) error {
	c.o.Analysis(rel.rec.Service).SetTracker(nil)
	delete(c.releases, rel.rec.Service)
	rel.rec.Status, rel.rec.Reason, rel.rec.EndedAt = status, reason, c.o.Now()
	c.o.Logger.Info("release ended", "service", rel.rec.Service, "build", rel.rec.Build, "outcome", string(status), "reason", reason)
	return c.save(ctx, rel, true)
}

// outsideOutcome tells how a canary the controller did not end has ended.
func outsideOutcome(ctx context.Context, st store.Store, rel *running) store.ReleaseStatus {
	status := store.ReleaseAborted
	_ = st.View(ctx, func(r store.Reader) error {
		b, err := r.GetBuild(ctx, rel.rec.Service, rel.rec.Build)
		if err == nil {
			switch b.State {
			case store.StateStable:
				status = store.ReleasePromoted
			case store.StateDeployed:
				status = store.ReleaseRolledBack
			}
		}
		return err
	})
	return status
}

func failReasons(v judge.Verdict) string {
	var parts []string
	for _, r := range v.Reasons {
		if r.Outcome == judge.Fail {
			parts = append(parts, r.Message)
		}
	}
	return strings.Join(parts, "; ")
}

func summary(v judge.Verdict) string {
	var parts []string
	for _, r := range v.Reasons {
		parts = append(parts, r.Message)
	}
	return strings.Join(parts, "; ")
}
