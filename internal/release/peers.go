package release

import (
	"context"
	"slices"
	"time"

	"github.com/canaryd/canaryd/internal/judge"
	"github.com/canaryd/canaryd/internal/metrics"
	"github.com/canaryd/canaryd/internal/metrics/hll"
	"github.com/canaryd/canaryd/internal/store"
)

const (
	// PeerTimeout: a replica whose mark is older is gone; the leader stops
	// waiting for it.
	PeerTimeout = 5 * time.Second
	// maxPeerLag is how many seconds the leader waits for a live but slow
	// replica before it judges a second without that replica's bins (they
	// are then lost to the judge, which only sees fewer samples).
	maxPeerLag = 3
	// eventBatches is how many batches of first events one read takes.
	eventBatches = 1000
)

// peerData is what the other replicas published for one release: their
// bins up to Through (keyed by second), their users' first events (already
// fed to the release's tracker), and their distinct-user sketches.
type peerData struct {
	// Through is the last second that may be judged now: every live
	// replica has published it, or it is too old to wait for.
	Through int64
	bins    map[int64][]store.AnalysisBin
	users   []*hll.Sketch
	harmed  []*hll.Sketch
}

// readPeers reads what other replicas published for rel since its last
// judged second, and feeds their first events to rel's tracker (which
// de-duplicates them against this replica's own).
func (c *Controller) readPeers(ctx context.Context, rel *running, stable string, now time.Time) (peerData, error) {
	service := rel.rec.Service
	own := binKey(now) - 1 // nothing sealed yet: the last whole second
	if tick := c.o.Judged.LastTick(); !tick.IsZero() {
		own = binKey(tick)
	}
	pd := peerData{Through: own, bins: map[int64][]store.AnalysisBin{}}
	var marks []store.AnalysisMark
	var batches []store.AnalysisEvents
	var bins []store.AnalysisBin
	err := c.o.Plane.Store().View(ctx, func(r store.Reader) error {
		var err error
		if marks, err = r.ListAnalysisMarks(ctx, service); err != nil {
			return err
		}
		waitFor := int64(-1)
		for _, m := range marks {
			if m.Replica == c.o.Holder || m.At.Before(now.Add(-PeerTimeout)) {
				continue
			}
			if waitFor < 0 || m.Through < waitFor {
				waitFor = m.Through
			}
		}
		if waitFor >= 0 {
			pd.Through = min(own, max(waitFor, binKey(now)-maxPeerLag))
		}
		if bins, err = r.ListAnalysisBins(ctx, service, binKey(rel.st.LastBin), pd.Through); err != nil {
			return err
		}
		batches, err = r.ListAnalysisEvents(ctx, rel.rec.ID, rel.eventsRead, eventBatches)
		return err
	})
	if err != nil {
		return peerData{}, err
	}
	for _, b := range bins {
		if b.Replica != c.o.Holder && (b.Build == rel.rec.Build || b.Build == stable) {
			pd.bins[b.End] = append(pd.bins[b.End], b)
		}
	}
	for _, m := range marks {
		if m.Replica == c.o.Holder || m.At.Before(rel.rec.StartedAt) {
			continue
		}
		if s := decodeHLL(m.Users); s != nil {
			pd.users = append(pd.users, s)
		}
		if s := decodeHLL(m.Harmed); s != nil {
			pd.harmed = append(pd.harmed, s)
		}
	}
	c.addEvents(rel, batches, func(b store.AnalysisEvents) bool { return b.Replica != c.o.Holder })
	return pd, nil
}

// addEvents feeds the first events of batches that keep accepts to rel's
// tracker and moves rel's read position past all of them.
func (c *Controller) addEvents(rel *running, batches []store.AnalysisEvents, keep func(store.AnalysisEvents) bool) {
	for _, b := range batches {
		rel.eventsRead = b.ID
		if !keep(b) {
			continue
		}
		evs, err := judge.DecodeEvents(b.Events)
		if err != nil {
			c.o.Logger.Warn("unreadable first events skipped", "release", rel.rec.ID, "replica", b.Replica, "err", err.Error())
			continue
		}
		for _, e := range evs {
			rel.tracker.Add(e.User, e.Build, e.Events)
		}
	}
}

// replayEvents rebuilds a resumed release's set of users from every batch
// the replicas published, this one's included. Batches stored before the
// record's last save were counted by the judge state saved with it: they
// only rebuild the set. Later ones are counted now. (A leader counts its
// own events a moment before it publishes them, so a second or so around
// the save may be counted twice or not at all: the judge sees a few users
// more or fewer, never a release's worth.)
func (c *Controller) replayEvents(ctx context.Context, rel *running) error {
	var all []store.AnalysisEvents
	for {
		var batches []store.AnalysisEvents
		err := c.o.Plane.Store().View(ctx, func(r store.Reader) error {
			var err error
			batches, err = r.ListAnalysisEvents(ctx, rel.rec.ID, rel.eventsRead, eventBatches)
			return err
		})
		if err != nil {
			return err
		}
		all = append(all, batches...)
		if len(batches) > 0 {
			rel.eventsRead = batches[len(batches)-1].ID
		}
		if len(batches) < eventBatches {
			break
		}
	}
	saved := rel.rec.UpdatedAt
	c.addEvents(rel, all, func(b store.AnalysisEvents) bool { return !b.CreatedAt.After(saved) })
	var discard judge.Bin
	rel.tracker.Drain(&discard)
	c.addEvents(rel, all, func(b store.AnalysisEvents) bool { return b.CreatedAt.After(saved) })
	return nil
}

func decodeHLL(b []byte) *hll.Sketch {
	if len(b) == 0 {
		return nil
	}
	s := hll.New()
	if s.UnmarshalBinary(b) != nil {
		return nil
	}
	return s
}

// merged is one second of both builds, this replica's and the others'.
type merged struct {
	end  time.Time
	c, s judge.Sample
}

// addBin adds one bin's counts and latencies to a build's sample.
func addBin(to *judge.Sample, requests, errors uint64, lat metrics.Sketch) {
	to.Requests += requests
	to.Errors += errors
	lat.AddTo(&to.Latency)
}

// mergeBins sums this replica's bins (canary and stable, sealed by the same
// ticks) and the peers' into one judge sample per build and second, for the
// seconds in (after, through], oldest first.
func mergeBins(cbins, sbins []metrics.Bin, pd peerData, canary string, after, through int64) []merged {
	byKey := map[int64]*merged{}
	at := func(k int64, end time.Time) *merged {
		m := byKey[k]
		if m == nil {
			m = &merged{end: end}
			byKey[k] = m
		}
		return m
	}
	for i := range cbins {
		if b := &cbins[i]; binKey(b.End) > after && binKey(b.End) <= through {
			addBin(&at(binKey(b.End), b.End).c, b.Requests, b.Errors, b.Latency)
		}
	}
	for i := range sbins {
		if b := &sbins[i]; binKey(b.End) > after && binKey(b.End) <= through {
			addBin(&at(binKey(b.End), b.End).s, b.Requests, b.Errors, b.Latency)
		}
	}
	for k, bs := range pd.bins {
		if k <= after || k > through {
			continue
		}
		m := at(k, time.Unix(k, 0))
		for _, b := range bs {
			lat, err := metrics.UnmarshalSketch(b.Latency)
			if err != nil {
				continue // a corrupt row: its counts without a latency would skew the judge
			}
			side := &m.s
			if b.Build == canary {
				side = &m.c
			}
			addBin(side, b.Requests, b.Errors, lat)
		}
	}
	keys := make([]int64, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]merged, len(keys))
	for i, k := range keys {
		out[i] = *byKey[k]
	}
	return out
}
