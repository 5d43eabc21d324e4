package metrics

import (
	"sync"
	"time"

	"github.com/canaryd/canaryd/internal/latency"
)

// Bin is what one build did during one interval of the rolling window
// (about one second: the interval between two Registry.Ticks). The judge
// reads bins directly, so analysis needs no Prometheus.
//
// Counts are deltas over [Start, End). A request is counted in the bin
// whose tick followed its End; under load a bin's Latency.Count() may differ
// from its Requests by the few requests that were being recorded at the
// tick, and the next bin makes up for it: sums over several bins are exact.
type Bin struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Requests counts every outcome; Errors the 5xx and connection errors.
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
	// Classes counts requests by Class.
	Classes [NumClasses]uint64 `json:"classes"`
	// BytesIn and BytesOut are body bytes from and to clients.
	BytesIn  uint64 `json:"bytes_in"`
	BytesOut uint64 `json:"bytes_out"`
	// Latency is the durations recorded in the bin. Shared with the window
	// and with other callers: read it, never modify it.
	Latency Sketch `json:"latency,omitempty"`
	// InFlight is the number of requests in flight at End.
	InFlight int64 `json:"in_flight"`
	// Users and Harmed are the build's cumulative distinct users and
	// distinct users who saw an error, estimated at End: a rising Harmed is
	// the blast radius growing.
	Users  float64 `json:"users"`
	Harmed float64 `json:"harmed"`
}

// Duration returns End − Start.
func (b *Bin) Duration() time.Duration { return b.End.Sub(b.Start) }

// Sum folds bins (oldest first, as Window returns them) into one bin from
// the first Start to the last End; InFlight, Users and Harmed are those of
// the last bin. Sum of no bins is the zero Bin.
func Sum(bins []Bin) Bin {
	if len(bins) == 0 {
		return Bin{}
	}
	last := bins[len(bins)-1]
	out := Bin{Start: bins[0].Start, End: last.End, InFlight: last.InFlight, Users: last.Users, Harmed: last.Harmed}
	var h latency.Histogram
	for i := range bins {
		b := &bins[i]
		out.Requests += b.Requests
		out.Errors += b.Errors
		for c := range b.Classes {
			out.Classes[c] += b.Classes[c]
		}
		out.BytesIn += b.BytesIn
		out.BytesOut += b.BytesOut
		b.Latency.AddTo(&h)
	}
	out.Latency = sketchOf(&h, nil)
	return out
}

// BucketCount is one non-empty bucket of a Sketch: I is the index in the
// latency package's layout (latency.Bounds(I) gives its range), N the count.
type BucketCount struct {
	I uint16 `json:"i"`
	N uint64 `json:"n"`
}

// Sketch is a latency.Histogram that keeps only its non-empty buckets, in
// increasing index order: a one-second bin holds tens of buckets, not the
// full layout's several hundred, so five minutes of bins per build stay
// small. Expand it with AddTo or Histogram to query or merge.
type Sketch []BucketCount

// sketchOf returns the non-empty buckets of h minus those of prev (prev may
// be nil). Every count of h must be at least that of prev.
func sketchOf(h, prev *latency.Histogram) Sketch {
	n := 0
	for i := range h.Counts {
		if d := h.Counts[i] - count(prev, i); d != 0 {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	s := make(Sketch, 0, n)
	for i := range h.Counts {
		if d := h.Counts[i] - count(prev, i); d != 0 {
			s = append(s, BucketCount{I: uint16(i), N: d})
		}
	}
	return s
}

func count(h *latency.Histogram, i int) uint64 {
	if h == nil {
		return 0
	}
	return h.Counts[i]
}

// Count returns the number of durations in s.
func (s Sketch) Count() uint64 {
	var n uint64
	for _, b := range s {
		n += b.N
	}
	return n
}

// AddTo adds the counts of s to h.
func (s Sketch) AddTo(h *latency.Histogram) {
	for _, b := range s {
		if int(b.I) < latency.NumBuckets {
			h.Counts[b.I] += b.N
			h.Total += b.N
		}
	}
}

// Histogram returns s expanded into a latency.Histogram, for Quantile and
// CountAbove.
func (s Sketch) Histogram() latency.Histogram {
	var h latency.Histogram
	s.AddTo(&h)
	return h
}

// window is a build's ring of sealed bins. Only Registry.Tick writes it and
// readers copy out of it, under mu; the request path never touches it, so
// rotation cannot block a request.
type window struct {
	mu    sync.Mutex
	bins  []Bin // ring of cap size
	next  int   // index the next bin goes to
	full  bool
	start time.Time // start of the next bin: the previous tick
	prev  Totals    // cumulative counts at the previous tick
	// prevActive: a request ended during the previous bin.
	prevActive bool
}

func (w *window) init(size int, now time.Time) {
	w.bins = make([]Bin, size)
	w.start = now
}

// seal closes the bin [w.start, now) from the build's counters. Ticks that
// do not move forward are ignored.
func (bm *BuildMetrics) seal(now time.Time) {
	w := &bm.win
	w.mu.Lock()
	defer w.mu.Unlock()
	if !now.After(w.start) {
		return
	}
	var cur Totals
	bm.counters(&cur)
	b := Bin{Start: w.start, End: now, InFlight: cur.InFlight}
	for c := range cur.Classes {
		b.Classes[c] = cur.Classes[c] - w.prev.Classes[c]
	}
	b.Requests = sumClasses(&b.Classes)
	b.Errors = b.Classes[Class5xx] + b.Classes[ClassConnError]
	b.BytesIn = cur.BytesIn - w.prev.BytesIn
	b.BytesOut = cur.BytesOut - w.prev.BytesOut
	b.Latency = sketchOf(&cur.Latency, &w.prev.Latency)
	// Estimating a sketch reads all its registers; skip it when no request
	// ended during this bin or the previous one (End adds the user after
	// counting the request, so a user may land one bin late), as the
	// estimate cannot have changed.
	active := b.Requests != 0 || b.Latency != nil
	if active || w.prevActive {
		cur.Users, cur.Harmed = bm.users.Estimate(), bm.harmed.Estimate()
	} else {
		cur.Users, cur.Harmed = w.prev.Users, w.prev.Harmed
	}
	b.Users, b.Harmed = cur.Users, cur.Harmed
	w.prev, w.prevActive = cur, active
	w.start = now
	w.bins[w.next] = b
	w.next++
	if w.next == len(w.bins) {
		w.next, w.full = 0, true
	}
}

// Window returns copies of the sealed bins that end after since, oldest
// first; a zero since returns every bin the window still holds. A reader
// that polls passes the End of the last bin it got and so sees each bin
// exactly once. The bins' Latency sketches are shared: read-only. Safe for
// concurrent use; the request path never waits for it. The bin being filled
// (since the last tick) is not included.
func (bm *BuildMetrics) Window(since time.Time) []Bin {
	w := &bm.win
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Bin
	add := func(bins []Bin) {
		for i := range bins {
			if bins[i].End.After(since) {
				out = append(out, bins[i])
			}
		}
	}
	if w.full {
		add(w.bins[w.next:])
	}
	add(w.bins[:w.next])
	return out
}

// BuildWindow is one build's recent history, as Registry.Snapshot returns
// it: what `canaryctl compare` shows and what a replica publishes for the
// leader's judge.
type BuildWindow struct {
	Service string `json:"service"`
	Build   string `json:"build"`
	State   string `json:"state"`
	// Bins end after the since given to Snapshot, oldest first.
	Bins []Bin `json:"bins"`
}

// Snapshot returns the windows of one service's builds (every service's
// when service is ""), ordered by service then build id, with the bins that
// end after since.
func (r *Registry) Snapshot(service string, since time.Time) []BuildWindow {
	builds := r.Builds(service)
	out := make([]BuildWindow, len(builds))
	for i, bm := range builds {
		out[i] = BuildWindow{Service: bm.service, Build: bm.build, State: bm.State(), Bins: bm.Window(since)}
	}
	return out
}
