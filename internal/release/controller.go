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
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/control"
	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/judge"
	"github.com/canaryd/canaryd/internal/latency"
	"github.com/canaryd/canaryd/internal/metrics"
	"github.com/canaryd/canaryd/internal/metrics/hll"
	"github.com/canaryd/canaryd/internal/release/gate"
	"github.com/canaryd/canaryd/internal/release/source"
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
	// HTTPClient calls metric sources and gates; nil means a client with
	// no overall timeout (each check and gate has its own).
	HTTPClient *http.Client
	// Gateway returns the data plane's base URL (http://127.0.0.1:8080),
	// which a load test (release.load_test) sends its requests to; nil
	// or "" means the config's listen address, which cannot serve when
	// it asks for a free port (port 0).
	Gateway func() string
}

// Controller runs releases. Run it once per process; only the replica that
// holds the lease acts.
type Controller struct {
	o        Options
	releases map[string]*running // by service; only Run's goroutine touches it
	loads    map[string]*loadRun // load tests by service; the same
	leader   bool

	mu     sync.Mutex
	status map[string]Status // published copies for readers
}

// Status is a release as readers (API, demo, compare) see it: a running
// one from the controller's memory, or any one from its record.
type Status struct {
	Release   store.Release  `json:"release"`
	Step      int            `json:"step"` // index into Steps; -1 before the first
	Steps     []float64      `json:"steps"`
	StepStart time.Time      `json:"step_start"`
	Verdict   *judge.Verdict `json:"verdict,omitempty"`
	Exposed   float64        `json:"users_exposed"`
	Harmed    float64        `json:"users_harmed"`
	Waiting   bool           `json:"waiting_for_promote,omitempty"`

	// Policy is the policy the release runs under (config, or the
	// per-release override).
	Policy Policy `json:"policy"`
	// Totals are the judged requests and errors of both builds in the
	// release; Latency their quantiles (since this replica began judging).
	Totals  Totals          `json:"totals"`
	Latency *LatencySummary `json:"latency,omitempty"`
	// Checks are the latest results of the custom metrics; Gates the
	// latest calls of the webhook gates.
	Checks []source.Result `json:"checks,omitempty"`
	Gates  []gate.Result   `json:"gates,omitempty"`
	// Held says why the release waits for a person (a manual gate), ""
	// when it does not.
	Held      string     `json:"held,omitempty"`
	Approvals []Approval `json:"approvals,omitempty"`
	// Forced is true when an operator promoted it skipping the analysis.
	Forced bool `json:"forced,omitempty"`
	// LoadTest is the load-test gate's run of the current step.
	LoadTest *LoadStatus `json:"load_test,omitempty"`
}

// Totals counts judged traffic of a release.
type Totals struct {
	CanaryRequests uint64 `json:"canary_requests"`
	CanaryErrors   uint64 `json:"canary_errors"`
	StableRequests uint64 `json:"stable_requests"`
	StableErrors   uint64 `json:"stable_errors"`
}

// LatencySummary is both builds' median and p99 of judged requests.
type LatencySummary struct {
	StableP50 time.Duration `json:"stable_p50"`
	StableP99 time.Duration `json:"stable_p99"`
	CanaryP50 time.Duration `json:"canary_p50"`
	CanaryP99 time.Duration `json:"canary_p99"`
}

// Approval is a person's approval of a manual gate.
type Approval struct {
	Step    int       `json:"step"` // index into Steps
	Traffic float64   `json:"traffic"`
	Actor   string    `json:"actor"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
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
	st := statusOf(rel.rec, rel.st)
	if rel.cLat.Total > 0 || rel.sLat.Total > 0 {
		st.Latency = &LatencySummary{StableP50: rel.sLat.Quantile(0.5), StableP99: rel.sLat.Quantile(0.99),
			CanaryP50: rel.cLat.Quantile(0.5), CanaryP99: rel.cLat.Quantile(0.99)}
	}
	c.status[service] = st
}

// statusOf renders a record and its decoded state.
func statusOf(rec store.Release, st persisted) Status {
	rec.State = nil
	return Status{Release: rec, Step: st.Step, Steps: st.Policy.Steps, StepStart: st.StepStart,
		Verdict: st.Verdict, Exposed: st.Exposed, Harmed: st.Harmed, Waiting: st.Waiting,
		Policy: st.Policy, Totals: st.Totals, Checks: st.Checks, Gates: st.Gates, Held: st.Held,
		Approvals: st.Approvals, Forced: st.Forced, LoadTest: st.LoadTest}
}

// running is one release in memory.
type running struct {
	rec     store.Release
	st      persisted
	judge   *judge.Judge
	tracker *judge.Tracker
	saved   time.Time
	// eventsRead is the ID of the last batch of other replicas' first
	// events fed to tracker.
	eventsRead int64
	// cLat and sLat are the judged latencies since this replica began
	// judging the release (for compare; not persisted).
	cLat, sLat latency.Histogram
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

	Totals Totals `json:"totals"`
	// Checks holds the latest result of each custom metric, CheckFails
	// their consecutive failures and CheckDue when each is next evaluated.
	Checks     []source.Result      `json:"checks,omitempty"`
	CheckFails map[string]int       `json:"check_fails,omitempty"`
	CheckDue   map[string]time.Time `json:"check_due,omitempty"`
	// Sequential holds the evidence of each gauge and counter metric.
	Sequential map[string]*seqState `json:"sequential,omitempty"`
	// Gates holds the latest call of each gate at each point.
	Gates []gate.Result `json:"gates,omitempty"`
	// Started is true once the before_start gates allowed the release.
	Started bool `json:"started,omitempty"`
	// Held says why the release waits for a person (a manual gate).
	Held string `json:"held,omitempty"`
	// Approvals are the manual gates people approved.
	Approvals []Approval `json:"approvals,omitempty"`
	// Forced: promoted by an operator skipping the remaining analysis.
	Forced bool `json:"forced,omitempty"`
	// LoadTest: the load-test gate's run of the current step.
	LoadTest *LoadStatus `json:"load_test,omitempty"`
}

// approved reports whether the manual gate of step was approved.
func (p *persisted) approved(step int) bool {
	for _, a := range p.Approvals {
		if a.Step == step {
			return true
		}
	}
	return false
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
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
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
		c.syncLoad(ctx, sc)
		c.publish(sc.Name, c.releases[sc.Name])
	}
	c.stopStrayLoads(cfg)
	return errors.Join(errs...)
}

// forget drops in-memory releases (after losing the lease): the new leader
// resumes them from their records.
func (c *Controller) forget() {
	c.stopLoads()
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
	c.stopLoads()
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
		// promoted, rolled back, aborted or replaced it). Abort and a
		// forced promote close the record themselves; otherwise close it
		// here.
		if stored, ok := c.reload(ctx, rel); ok && !stored.Status.Active() {
			c.drop(rel)
		} else if err := c.finish(ctx, rel, outsideOutcome(ctx, c.o.Plane.Store(), rel), "ended by an operator"); err != nil {
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
	return c.advance(ctx, sc, svc, rel, canary, now)
}

// reload reads the stored record of rel.
func (c *Controller) reload(ctx context.Context, rel *running) (store.Release, bool) {
	var rec store.Release
	err := c.o.Plane.Store().View(ctx, func(r store.Reader) error {
		var err error
		rec, err = r.GetRelease(ctx, rel.rec.ID)
		return err
	})
	return rec, err == nil
}

// drop forgets a release whose record someone else closed.
func (c *Controller) drop(rel *running) {
	if c.releases[rel.rec.Service] != rel {
		return
	}
	c.o.Analysis(rel.rec.Service).SetTracker(nil)
	delete(c.releases, rel.rec.Service)
}

// begin resumes the release of the current canary from its record, or
// starts a new record.
func (c *Controller) begin(ctx context.Context, sc *config.Service, svc store.Service, canary *store.Build, now time.Time) (*running, error) {
	var recs []store.Release
	var override *store.Policy
	err := c.o.Plane.Store().View(ctx, func(r store.Reader) error {
		var err error
		recs, err = r.ListReleases(ctx, store.ReleaseFilter{Service: sc.Name, ActiveOnly: true})
		if err != nil {
			return err
		}
		pol, err := r.GetPolicy(ctx, sc.Name)
		if err == nil {
			override = &pol
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return nil
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
	resumed := rel.rec.ID != ""
	if resumed {
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
		if override != nil {
			var o Override
			if err := json.Unmarshal(override.Spec, &o); err != nil {
				c.o.Logger.Warn("policy override unreadable; using the config", "service", sc.Name, "err", err.Error())
			} else if o.Build == "" || o.Build == canary.ID {
				p = o.Apply(p)
			}
		}
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
	rel.tracker.Journal() // this replica's Publisher ships its first events to the store
	rel.tracker.SetThresholds(rel.judge.Thresholds())
	if resumed {
		if err := c.replayEvents(ctx, rel); err != nil {
			return nil, err
		}
	}
	c.o.Analysis(sc.Name).SetTracker(rel.tracker)
	c.releases[sc.Name] = rel
	return rel, c.save(ctx, rel, true)
}

// advance feeds new bins to the judge, evaluates the custom metrics, and
// acts on the verdict, the manual gates and the webhook gates.
func (c *Controller) advance(ctx context.Context, sc *config.Service, svc store.Service, rel *running, canary *store.Build, now time.Time) error {
	c.observe(ctx, sc.Name, svc, rel, now)
	p := rel.st.Policy
	if svc.Paused {
		rel.st.Held = "" // a pause supersedes a manual gate; resuming re-checks it
	}
	if !rel.st.Started && !svc.Paused {
		next := p.Steps[max(rel.st.Step, 0)]
		ok, done, err := c.gates(ctx, sc, rel, canary, gate.BeforeStart, next, now)
		if err != nil || done {
			return err
		}
		if !ok {
			return c.save(ctx, rel, true)
		}
		rel.st.Started = true
	}
	if rel.st.Step < 0 {
		if svc.Paused {
			// Held before the first step (a pause, or a gate's no): no
			// step to judge yet.
			return c.save(ctx, rel, false)
		}
		// The canary was started below the first step: begin there.
		return c.setStep(ctx, rel, 0, now, fmt.Sprintf("release started: first step %g%%", p.Steps[0]))
	}
	v := rel.judge.Verdict(now, rel.st.StepStart)
	rel.st.Verdict = &v
	last := rel.st.Step >= len(p.Steps)-1
	atFull := p.Steps[rel.st.Step] >= 100
	c.runChecks(ctx, sc, rel, atFull)
	checkFail, checksOK := checkState(sc, rel, atFull)
	// At 100 % nobody is left on stable to compare with: the last step
	// only bakes under the guardrails and absolute ceilings.
	fullBake := atFull && now.Sub(rel.st.StepStart) >= p.StepDuration
	c.o.Logger.Debug("release tick", "service", sc.Name, "step", rel.st.Step, "verdict", string(v.Outcome),
		"paused", svc.Paused, "checks_ok", checksOK, "held", rel.st.Held, "step_start", rel.st.StepStart)
	switch {
	case v.Outcome == judge.Fail:
		return c.rollback(ctx, sc, rel, canary, "judge: "+failReasons(v), now)
	case checkFail != "":
		return c.rollback(ctx, sc, rel, canary, "metric check: "+checkFail, now)
	case svc.Paused:
	case (v.Outcome == judge.Pass || fullBake) && checksOK:
		if gateAt(p.ManualGates, p.Steps[rel.st.Step]) && !rel.st.approved(rel.st.Step) {
			if held := fmt.Sprintf("manual gate at %g%%: waiting for approval (canaryctl approve %s)", p.Steps[rel.st.Step], sc.Name); rel.st.Held != held {
				rel.st.Held = held
				c.o.Logger.Info("release held at a manual gate", "service", sc.Name, "step", rel.st.Step)
				if err := c.save(ctx, rel, true); err != nil {
					return err
				}
				return c.note(ctx, rel, EventHeld, held)
			}
			c.pickApprovals(ctx, rel)
			if !rel.st.approved(rel.st.Step) {
				break
			}
		}
		rel.st.Held = ""
		if last {
			if !p.AutoPromote {
				if !rel.st.Waiting {
					rel.st.Waiting = true
					c.o.Logger.Info("release passed every step; waiting for a manual promote", "service", sc.Name)
					return c.save(ctx, rel, true) // operators on any replica may promote now
				}
				break
			}
			ok, done, err := c.gates(ctx, sc, rel, canary, gate.BeforePromote, 100, now)
			if err != nil || done || !ok {
				return err
			}
			reason := fmt.Sprintf("passed every step (%s)", summary(v, rel.st.Checks))
			if _, err := c.o.Plane.Promote(ctx, Actor, sc.Name, reason); err != nil && !errors.Is(err, control.ErrIllegal) {
				return err
			}
			return c.finish(ctx, rel, store.ReleasePromoted, reason)
		}
		ok, done, err := c.gates(ctx, sc, rel, canary, gate.BeforeStep, p.Steps[rel.st.Step+1], now)
		if err != nil || done || !ok {
			return err
		}
		return c.setStep(ctx, rel, rel.st.Step+1, now, fmt.Sprintf("step %g%% passed (%s)", p.Steps[rel.st.Step], summary(v, rel.st.Checks)))
	case now.Sub(rel.st.StepStart) > p.MaxStepDuration:
		reason := fmt.Sprintf("step %g%% still inconclusive after %s (%s)", p.Steps[rel.st.Step], p.MaxStepDuration, summary(v, rel.st.Checks))
		if p.OnInconclusive == "rollback" {
			return c.rollback(ctx, sc, rel, canary, reason, now)
		}
		if _, err := c.o.Plane.SetPaused(ctx, Actor, sc.Name, true, reason); err != nil && !errors.Is(err, control.ErrIllegal) {
			return err
		}
	}
	return c.save(ctx, rel, false)
}

// rollback rolls the canary back, closes the record and tells the
// after_rollback gates.
func (c *Controller) rollback(ctx context.Context, sc *config.Service, rel *running, canary *store.Build, reason string, now time.Time) error {
	if _, err := c.o.Plane.Rollback(ctx, Actor, sc.Name, reason); err != nil && !errors.Is(err, control.ErrIllegal) {
		return err
	}
	c.tell(ctx, sc, rel, canary, gate.AfterRollback, reason, now)
	return c.finish(ctx, rel, store.ReleaseRolledBack, reason)
}

func gateAt(gates []float64, step float64) bool {
	for _, g := range gates {
		if g > step-1e-9 && g < step+1e-9 {
			return true
		}
	}
	return false
}

// pickApprovals merges approvals written into the record by an operator
// (possibly on another replica) into rel.
func (c *Controller) pickApprovals(ctx context.Context, rel *running) {
	stored, ok := c.reload(ctx, rel)
	if !ok {
		return
	}
	var st persisted
	if json.Unmarshal(stored.State, &st) != nil {
		return
	}
	for _, a := range st.Approvals {
		if !rel.st.approved(a.Step) {
			rel.st.Approvals = append(rel.st.Approvals, a)
		}
	}
	rel.rec.Revision = stored.Revision
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

// observe turns the judged metrics' new bins, this replica's and those the
// other replicas published, into judge bins, one per second. With other
// live replicas it judges a second only once they all published it (or it
// is maxPeerLag seconds old).
func (c *Controller) observe(ctx context.Context, service string, svc store.Service, rel *running, now time.Time) {
	stable := stableOf(c, service)
	pd, err := c.readPeers(ctx, rel, stable, now)
	if err != nil {
		c.o.Logger.Warn("reading other replicas' analysis failed; judging this replica's traffic", "service", service, "err", err.Error())
		pd = peerData{Through: binKey(now)}
	}
	after := binKey(rel.st.LastBin)
	since := rel.st.LastBin.Add(-time.Second) // mergeBins keeps only seconds after LastBin's
	var cbins, sbins []metrics.Bin
	cb := c.o.Judged.Lookup(service, rel.rec.Build)
	if cb != nil {
		cbins = cb.Window(since)
	}
	if sb := c.o.Judged.Lookup(service, stable); sb != nil {
		sbins = sb.Window(since)
	}
	share := svc.Traffic / 100
	t := &rel.st.Totals
	secs := mergeBins(cbins, sbins, pd, rel.rec.Build, after, pd.Through)
	for i, m := range secs {
		b := judge.Bin{Time: m.end, Share: share, Canary: m.c, Stable: m.s}
		if i == len(secs)-1 {
			rel.tracker.Drain(&b)
		}
		if err := rel.judge.Observe(&b); err != nil {
			c.o.Logger.Debug("bin dropped", "service", service, "err", err.Error())
		} else {
			t.CanaryRequests += b.Canary.Requests
			t.CanaryErrors += b.Canary.Errors
			t.StableRequests += b.Stable.Requests
			t.StableErrors += b.Stable.Errors
			rel.cLat.Merge(&b.Canary.Latency)
			rel.sLat.Merge(&b.Stable.Latency)
		}
		rel.st.LastBin = time.Unix(binKey(m.end), 0)
	}
	if cb != nil || len(pd.users) > 0 {
		users, harmed := hll.New(), hll.New()
		if cb != nil {
			users, harmed = cb.DistinctUsers() // copies: the peers' merge into them
		}
		for i := range pd.users {
			users.Merge(pd.users[i])
		}
		for i := range pd.harmed {
			harmed.Merge(pd.harmed[i])
		}
		rel.st.Exposed, rel.st.Harmed = users.Estimate(), harmed.Estimate()
	}
	rel.tracker.SetThresholds(rel.judge.Thresholds())
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

// save writes the release record, at most every 5 s unless forced. An
// operator may have written the record meanwhile (an approval, an abort,
// a forced promote, possibly on another replica): on a conflict the
// stored record is read again, a closed one is adopted, and approvals are
// merged before one more try.
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
	for attempt := 0; ; attempt++ {
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
			return nil
		}
		if !errors.Is(err, store.ErrConflict) || attempt > 0 {
			return err
		}
		stored, ok := c.reload(ctx, rel)
		if !ok {
			return err
		}
		if !stored.Status.Active() {
			// Closed by an operator (abort, forced promote): theirs stands.
			c.drop(rel)
			c.o.Logger.Info("release closed by an operator", "service", rel.rec.Service, "build", rel.rec.Build, "outcome", string(stored.Status))
			return nil
		}
		c.pickApprovals(ctx, rel)
	}
}

// note appends an event about the release that no control-plane
// operation records (a hold at a manual gate), so people are told.
func (c *Controller) note(ctx context.Context, rel *running, typ event.Type, reason string) error {
	return c.o.Plane.Store().Update(ctx, func(tx store.Tx) error {
		_, err := tx.AppendEvent(ctx, event.Event{Service: rel.rec.Service, Type: typ, Severity: event.Warning, Actor: string(Actor),
			Build: rel.rec.Build, Reason: reason, Details: map[string]string{"release": rel.rec.ID, "traffic": fmt.Sprintf("%g%%", rel.rec.Traffic)}})
		return err
	})
}

// finish closes a release record with its outcome.
func (c *Controller) finish(ctx context.Context, rel *running, status store.ReleaseStatus, reason string) error {
	c.drop(rel)
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

func summary(v judge.Verdict, checks []source.Result) string {
	var parts []string
	for _, r := range v.Reasons {
		parts = append(parts, r.Message)
	}
	for _, r := range checks {
		parts = append(parts, r.Message)
	}
	return strings.Join(parts, "; ")
}
