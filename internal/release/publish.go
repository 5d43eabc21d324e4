package release

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/canaryd/canaryd/internal/judge"
	"github.com/canaryd/canaryd/internal/metrics"
	"github.com/canaryd/canaryd/internal/route"
	"github.com/canaryd/canaryd/internal/store"
)

// Publisher ships this replica's share of every active release to the store
// once a second: the judged bins of the canary and the stable build, a mark
// saying how far they are published, the canary's distinct-user sketches,
// and the users' first events its tracker saw. The controller, on the
// replica that holds the lease, judges the sum of every replica (see
// peers.go). Every replica runs one, the leader included, so that a new
// leader can rebuild the release's set of users from the store.
type Publisher struct {
	Store   store.Store
	Replica string // unique per process; the controller's Holder
	Judged  *metrics.Registry
	// Analysis returns a service's data-plane feed; the publisher installs a
	// tracker there when the controller (on another replica) has not.
	Analysis func(service string) *route.Analysis
	Now      func() time.Time
	Logger   *slog.Logger

	services map[string]*published
	pending  []store.AnalysisEvents // batches not yet stored
	pruned   time.Time
}

// published is what the publisher keeps about one service's release.
type published struct {
	release        string
	canary, stable string
	last           map[string]time.Time // per build: End of the last bin stored
	own            *judge.Tracker       // the tracker this publisher installed, if any
	thresholdsRev  int64                // record revision own's thresholds come from
	users, harmed  float64              // the canary's estimates last published
	sketchesSent   time.Time            // when the canary's sketches were last published
}

const (
	// maxPendingBatches bounds the first events kept while the store
	// refuses writes (10 minutes of batches); older ones are dropped.
	maxPendingBatches = 600
	// analysisRetention is how long published bins and marks are kept.
	analysisRetention = 10 * time.Minute
	// sketchEvery spaces the publication of the canary's user sketches
	// (32 KiB): the users exposed and harmed in the record may lag by it.
	sketchEvery = 10 * time.Second
)

// Run publishes every second, half a second after each whole second (the
// judged registry seals its bins on whole seconds), until ctx ends.
func (p *Publisher) Run(ctx context.Context) error {
	p.defaults()
	for {
		now := p.Now()
		next := now.Truncate(time.Second).Add(1500 * time.Millisecond)
		if next.Sub(now) > time.Second {
			next = next.Add(-time.Second)
		}
		t := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if err := p.Publish(ctx); err != nil && ctx.Err() == nil {
			p.Logger.Warn("publishing analysis failed; will retry", "err", err.Error())
		}
	}
}

func (p *Publisher) defaults() {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.services == nil {
		p.services = map[string]*published{}
	}
}

// activeRelease is an active release record with its service's stable build.
type activeRelease struct {
	rec    store.Release
	stable string
}

// Publish is one round; Run calls it every second, tests with a fake clock.
func (p *Publisher) Publish(ctx context.Context) error {
	p.defaults()
	now := p.Now()
	var active []activeRelease
	err := p.Store.View(ctx, func(r store.Reader) error {
		recs, err := r.ListReleases(ctx, store.ReleaseFilter{ActiveOnly: true})
		if err != nil {
			return err
		}
		for _, rec := range recs {
			bs, err := r.ListBuilds(ctx, store.BuildFilter{Service: rec.Service, States: []store.BuildState{store.StateStable}})
			if err != nil {
				return err
			}
			a := activeRelease{rec: rec}
			if len(bs) == 1 {
				a.stable = bs[0].ID
			}
			active = append(active, a)
		}
		return nil
	})
	if err != nil {
		return err
	}

	var bins []store.AnalysisBin
	var marks []store.AnalysisMark
	next := map[string]map[string]time.Time{}
	seen := map[string]bool{}
	tick := p.Judged.LastTick()
	for _, a := range active {
		svc := a.rec.Service
		if seen[svc] { // newest first: an older active record of the same service is stale
			continue
		}
		seen[svc] = true
		st := p.track(a)
		p.takeEvents(p.Analysis(svc).Tracker(), st.release)
		last := map[string]time.Time{}
		for _, b := range []string{st.canary, st.stable} {
			bm := p.Judged.Lookup(svc, b)
			if b == "" || bm == nil {
				continue
			}
			last[b] = st.last[b]
			for _, bin := range bm.Window(st.last[b]) {
				lat, err := bin.Latency.MarshalBinary()
				if err != nil {
					return err
				}
				bins = append(bins, store.AnalysisBin{Replica: p.Replica, Service: svc, Build: b, End: binKey(bin.End),
					Requests: bin.Requests, Errors: bin.Errors, Latency: lat})
				last[b] = bin.End
			}
		}
		next[svc] = last
		if tick.IsZero() {
			continue // the registry has sealed nothing yet: no promise to make
		}
		m := store.AnalysisMark{Replica: p.Replica, Service: svc, Through: binKey(tick), At: now}
		if bm := p.Judged.Lookup(svc, st.canary); bm != nil {
			if bs := bm.Window(tick.Add(-2 * time.Second)); len(bs) > 0 {
				u, h := bs[len(bs)-1].Users, bs[len(bs)-1].Harmed
				if (u != st.users || h != st.harmed) && now.Sub(st.sketchesSent) >= sketchEvery {
					us, hs := bm.DistinctUsers()
					m.Users, _ = us.MarshalBinary()
					m.Harmed, _ = hs.MarshalBinary()
					st.users, st.harmed, st.sketchesSent = u, h, now
				}
			}
		}
		marks = append(marks, m)
	}
	for svc, st := range p.services {
		if !seen[svc] {
			p.untrack(svc, st)
		}
	}

	prune := now.Sub(p.pruned) >= time.Minute
	err = p.Store.Update(ctx, func(tx store.Tx) error {
		if err := tx.PublishAnalysis(ctx, bins, marks, p.pending); err != nil {
			return err
		}
		if prune {
			_, err := tx.PruneAnalysis(ctx, now.Add(-analysisRetention))
			return err
		}
		return nil
	})
	if err != nil {
		for _, st := range p.services {
			st.users, st.harmed, st.sketchesSent = -1, -1, time.Time{} // send the sketches again
		}
		return err
	}
	p.pending = nil
	if prune {
		p.pruned = now
	}
	for svc, last := range next {
		for b, t := range last {
			p.services[svc].last[b] = t
		}
	}
	return nil
}

// binKey is the whole second a bin ends at: replicas tick on whole seconds,
// so the same second of traffic has the same key on every replica.
func binKey(t time.Time) int64 { return t.Round(time.Second).Unix() }

// track returns the service's state for release a, installing this
// replica's own tracker when no controller tracker is in place.
func (p *Publisher) track(a activeRelease) *published {
	svc := a.rec.Service
	st := p.services[svc]
	if st == nil || st.release != a.rec.ID {
		if st != nil {
			p.untrack(svc, st)
		}
		// Bins from before the release are of no use to its judge.
		start := p.Now().Add(-10 * time.Second)
		if a.rec.StartedAt.After(start) {
			start = a.rec.StartedAt
		}
		st = &published{release: a.rec.ID, last: map[string]time.Time{}, users: -1, harmed: -1}
		st.last[a.rec.Build], st.last[a.stable] = start, start
		p.services[svc] = st
	}
	if st.stable != a.stable || st.canary != a.rec.Build {
		st.canary, st.stable = a.rec.Build, a.stable
		for _, b := range []string{st.canary, st.stable} {
			if _, ok := st.last[b]; !ok {
				st.last[b] = p.Now().Add(-10 * time.Second)
			}
		}
	}
	an := p.Analysis(svc)
	if cur := an.Tracker(); cur == nil || cur != st.own {
		st.own = nil
		if cur == nil {
			t := judge.NewTracker(1)
			t.Journal()
			if an.SwapTracker(nil, t) {
				st.own, st.thresholdsRev = t, 0
			}
		}
	}
	if st.own != nil && st.thresholdsRev != a.rec.Revision {
		if th, ok := thresholdsOf(a.rec); ok {
			st.own.SetThresholds(th)
			st.thresholdsRev = a.rec.Revision
		}
	}
	return st
}

// untrack removes this publisher's tracker of a release that ended.
func (p *Publisher) untrack(svc string, st *published) {
	if st.own != nil {
		p.Analysis(svc).SwapTracker(st.own, nil)
		p.takeEvents(st.own, st.release)
	}
	delete(p.services, svc)
}

// takeEvents queues the first events journaled by t (this publisher's
// tracker or the controller's: both journal) for the next write.
func (p *Publisher) takeEvents(t *judge.Tracker, release string) {
	if t == nil {
		return
	}
	evs, lost := t.TakeJournal()
	if lost > 0 {
		p.Logger.Warn("first events lost: the journal was full", "release", release, "lost", lost)
	}
	if len(evs) == 0 {
		return
	}
	if len(p.pending) >= maxPendingBatches {
		p.Logger.Warn("first events dropped: the store has refused them for too long", "release", p.pending[0].Release)
		p.pending = p.pending[1:]
	}
	p.pending = append(p.pending, store.AnalysisEvents{Release: release, Replica: p.Replica, Events: judge.EncodeEvents(evs)})
}

// thresholdsOf reads the judge's latency thresholds from a release record,
// so a replica's tracker counts first exceedances against the same
// thresholds as the leader's.
func thresholdsOf(rec store.Release) ([3]time.Duration, bool) {
	var st persisted
	if len(rec.State) == 0 || json.Unmarshal(rec.State, &st) != nil || len(st.Judge) == 0 {
		return [3]time.Duration{}, false
	}
	j, err := judge.New(st.Policy.Judge)
	if err == nil {
		err = j.UnmarshalJSON(st.Judge)
	}
	if err != nil {
		return [3]time.Duration{}, false
	}
	return j.Thresholds(), true
}
