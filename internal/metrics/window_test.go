package metrics

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/latency"
)

func TestWindowBins(t *testing.T) {
	c := newClock()
	t0 := c.Now()
	r := newTestRegistry(c, 5*time.Second)
	bm := r.Build("api", "42")

	// Second 1: three requests, one 5xx, one conn error.
	for _, o := range []Outcome{
		{Status: 200, Duration: 5 * time.Millisecond, BytesIn: 1, BytesOut: 10, User: 1},
		{Status: 500, Duration: 7 * time.Millisecond, User: 2},
		{ConnErr: true, Duration: time.Second, User: 3},
	} {
		bm.Begin()
		bm.End(o)
	}
	bm.Begin() // stays in flight
	r.Tick(c.Advance(time.Second))
	// Second 2: nothing. Second 3: one slow success.
	r.Tick(c.Advance(time.Second))
	bm.End(Outcome{Status: 200, Duration: 300 * time.Millisecond, BytesOut: 5, User: 1})
	r.Tick(c.Advance(time.Second))

	bins := bm.Window(time.Time{})
	if len(bins) != 3 {
		t.Fatalf("%d bins, want 3", len(bins))
	}
	for i, b := range bins {
		if want := t0.Add(time.Duration(i) * time.Second); !b.Start.Equal(want) || b.Duration() != time.Second {
			t.Errorf("bin %d covers [%v, %v), want 1 s from %v", i, b.Start, b.End, want)
		}
	}
	for _, tc := range []struct {
		i                      int
		requests, errors, conn uint64
		bytesIn, bytesOut      uint64
		inFlight               int64
		users, harmed          float64
		maxLat                 time.Duration
	}{
		{0, 3, 2, 1, 1, 10, 1, 3, 2, time.Second},
		{1, 0, 0, 0, 0, 0, 1, 3, 2, 0},
		{2, 1, 0, 0, 0, 5, 0, 3, 2, 300 * time.Millisecond},
	} {
		b := bins[tc.i]
		if b.Requests != tc.requests || b.Errors != tc.errors || b.Classes[ClassConnError] != tc.conn ||
			b.BytesIn != tc.bytesIn || b.BytesOut != tc.bytesOut || b.InFlight != tc.inFlight {
			t.Errorf("bin %d = %+v", tc.i, b)
		}
		if int(b.Users+0.5) != int(tc.users) || int(b.Harmed+0.5) != int(tc.harmed) {
			t.Errorf("bin %d users %.2f harmed %.2f, want %v and %v", tc.i, b.Users, b.Harmed, tc.users, tc.harmed)
		}
		if b.Latency.Count() != b.Requests {
			t.Errorf("bin %d latency count %d, requests %d", tc.i, b.Latency.Count(), b.Requests)
		}
		h := b.Latency.Histogram()
		if got := h.Quantile(1); tc.maxLat != 0 && (got < tc.maxLat || float64(got) > 1.07*float64(tc.maxLat)) {
			t.Errorf("bin %d max %v, want %v + at most one bucket", tc.i, got, tc.maxLat)
		}
	}

	// since filters on End.
	if got := bm.Window(t0.Add(2 * time.Second)); len(got) != 1 || !got[0].Start.Equal(t0.Add(2*time.Second)) {
		t.Errorf("Window(t0+2s) = %d bins", len(got))
	}
	if got := bm.Window(t0.Add(time.Hour)); len(got) != 0 {
		t.Errorf("Window(future) = %d bins", len(got))
	}

	s := Sum(bins)
	if s.Requests != 4 || s.Errors != 2 || s.BytesOut != 15 || s.Latency.Count() != 4 ||
		!s.Start.Equal(t0) || !s.End.Equal(t0.Add(3*time.Second)) || s.InFlight != 0 {
		t.Errorf("Sum = %+v", s)
	}
	if z := Sum(nil); z.Requests != 0 || !z.Start.IsZero() {
		t.Errorf("Sum(nil) = %+v", z)
	}
}

func TestWindowRotationAndStaleTicks(t *testing.T) {
	c := newClock()
	r := newTestRegistry(c, 4500*time.Millisecond) // rounds up to 5 bins
	bm := r.Build("api", "42")
	for i := 1; i <= 8; i++ {
		for range i {
			bm.Begin()
			bm.End(Outcome{Status: 200})
		}
		now := c.Advance(time.Second)
		r.Tick(now)
		r.Tick(now)                        // same instant: ignored
		r.Tick(now.Add(-time.Millisecond)) // clock went back: ignored
	}
	bins := bm.Window(time.Time{})
	if len(bins) != 5 {
		t.Fatalf("%d bins, want the last 5", len(bins))
	}
	for j, b := range bins {
		if want := uint64(4 + j); b.Requests != want {
			t.Errorf("bin %d has %d requests, want %d", j, b.Requests, want)
		}
		if j > 0 && !b.Start.Equal(bins[j-1].End) {
			t.Errorf("bin %d starts at %v, previous ends at %v", j, b.Start, bins[j-1].End)
		}
	}
}

func TestLateTickMakesLongerBin(t *testing.T) {
	c := newClock()
	r := newTestRegistry(c, 0)
	bm := r.Build("api", "42")
	bm.Begin()
	bm.End(Outcome{Status: 200})
	r.Tick(c.Advance(2500 * time.Millisecond))
	bins := bm.Window(time.Time{})
	if len(bins) != 1 || bins[0].Duration() != 2500*time.Millisecond || bins[0].Requests != 1 {
		t.Fatalf("bins %+v, want one 2.5 s bin with 1 request", bins)
	}
}

// TestConcurrentRecordingAndTicks records from several goroutines while
// another ticks: no request may be lost or counted twice across bins.
func TestConcurrentRecordingAndTicks(t *testing.T) {
	c := newClock()
	r := newTestRegistry(c, time.Hour)
	bm := r.Build("api", "42")
	const workers, perWorker = 4, 5000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				bm.Begin()
				bm.End(Outcome{Status: 200 + 300*(i%2), Duration: time.Duration(i) * time.Microsecond, BytesOut: 1, User: uint64(w*perWorker + i + 1)})
			}
		})
	}
	stop := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		for {
			select {
			case <-stop:
				return
			default:
				r.Tick(c.Advance(time.Second))
				_ = bm.Window(time.Time{})
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-ticked
	r.Tick(c.Advance(time.Second))
	s := Sum(bm.Window(time.Time{}))
	const total = workers * perWorker
	if s.Requests != total || s.Errors != total/2 || s.BytesOut != total || s.Latency.Count() != total || s.InFlight != 0 {
		t.Fatalf("sum of bins: requests %d errors %d bytes %d latency %d in flight %d; want %d, %d, %d, %d, 0",
			s.Requests, s.Errors, s.BytesOut, s.Latency.Count(), s.InFlight, total, total/2, total, total)
	}
}

func TestSketch(t *testing.T) {
	var h latency.Histogram
	for _, d := range []time.Duration{time.Millisecond, time.Millisecond, 50 * time.Millisecond, time.Hour} {
		h.Record(d)
	}
	s := sketchOf(&h, nil)
	if len(s) != 3 || s.Count() != 4 {
		t.Fatalf("sketch %v: want 3 buckets, 4 counts", s)
	}
	for i := 1; i < len(s); i++ {
		if s[i].I <= s[i-1].I {
			t.Fatalf("sketch %v not in increasing bucket order", s)
		}
	}
	if back := s.Histogram(); back != h {
		t.Fatal("expanding the sketch does not give the histogram back")
	}
	if sketchOf(&h, &h) != nil {
		t.Fatal("difference of equal histograms is not empty")
	}
	// Bins travel as JSON between replicas.
	b, err := json.Marshal(Bin{Requests: 4, Latency: s})
	if err != nil {
		t.Fatal(err)
	}
	var back Bin
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Latency.Histogram() != h || back.Requests != 4 {
		t.Fatalf("JSON round trip lost data: %s", b)
	}
	// Indices outside the layout (from a peer with another layout) are ignored, not a panic.
	var g latency.Histogram
	Sketch{{I: latency.NumBuckets + 3, N: 1}}.AddTo(&g)
	if g.Total != 0 {
		t.Fatal("out-of-layout bucket was counted")
	}
}

func TestSnapshot(t *testing.T) {
	c := newClock()
	t0 := c.Now()
	r := newTestRegistry(c, 0)
	for _, id := range []string{"2", "1"} {
		bm := r.Build("api", id)
		bm.SetState(map[string]string{"1": "stable", "2": "canary"}[id])
		bm.Begin()
		bm.End(Outcome{Status: 200})
	}
	r.Build("web", "7")
	r.Tick(c.Advance(time.Second))
	r.Tick(c.Advance(time.Second))

	got := r.Snapshot("api", t0.Add(time.Second))
	if len(got) != 2 || got[0].Build != "1" || got[0].State != "stable" || got[1].State != "canary" {
		t.Fatalf("Snapshot(api) = %+v", got)
	}
	for _, w := range got {
		if len(w.Bins) != 1 || w.Bins[0].Requests != 0 {
			t.Errorf("build %s: bins %+v, want only the second, empty one", w.Build, w.Bins)
		}
	}
	if all := r.Snapshot("", time.Time{}); len(all) != 3 || all[2].Service != "web" || len(all[0].Bins) != 2 {
		t.Errorf("Snapshot(all) = %+v", all)
	}
}
