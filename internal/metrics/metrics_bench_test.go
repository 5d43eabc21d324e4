package metrics

import (
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// outcome returns a varied but cheap outcome for request i: 1 % 5xx,
// latencies spread over 0–65 ms, users cycling through 1<<20 keys.
func outcome(i uint64) Outcome {
	o := Outcome{Status: 200, Duration: time.Duration(i&0xffff) * time.Microsecond, BytesIn: 100, BytesOut: 2000, User: (i & (1<<20 - 1)) * 0x9e3779b97f4a7c15}
	if i%100 == 0 {
		o.Status = 503
	}
	return o
}

// BenchmarkRecord is the per-request cost on the proxy's hot path: one
// Begin and one End on a cached handle.
func BenchmarkRecord(b *testing.B) {
	bm := New(Options{NoRuntimeMetrics: true}).Build("api", "42")
	b.ReportAllocs()
	for i := uint64(0); b.Loop(); i++ {
		bm.Begin()
		bm.End(outcome(i))
	}
}

// BenchmarkRecordParallel records into one build from every P at once: the
// worst case, every core updating the same counters.
func BenchmarkRecordParallel(b *testing.B) {
	bm := New(Options{NoRuntimeMetrics: true}).Build("api", "42")
	var seed atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := seed.Add(1) << 32
		for pb.Next() {
			bm.Begin()
			bm.End(outcome(i))
			i++
		}
	})
}

// BenchmarkRecordParallelWithTicks is BenchmarkRecordParallel while a
// goroutine seals bins as fast as it can (far more often than once a
// second): rotation must not slow recording down.
func BenchmarkRecordParallelWithTicks(b *testing.B) {
	c := newClock()
	r := New(Options{NoRuntimeMetrics: true, Now: c.Now})
	bm := r.Build("api", "42")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				r.Tick(c.Advance(time.Second))
			}
		}
	}()
	var seed atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := seed.Add(1) << 32
		for pb.Next() {
			bm.Begin()
			bm.End(outcome(i))
			i++
		}
	})
	b.StopTimer()
	close(stop)
	<-done
}

// BenchmarkTick is the once-a-second cost of sealing one busy build's bin.
func BenchmarkTick(b *testing.B) {
	c := newClock()
	r := New(Options{NoRuntimeMetrics: true, Now: c.Now})
	bm := r.Build("api", "42")
	b.ReportAllocs()
	for i := uint64(0); b.Loop(); i++ {
		for j := range uint64(100) {
			bm.Begin()
			bm.End(outcome(i*100 + j))
		}
		r.Tick(c.Advance(time.Second))
	}
}

// BenchmarkScrape is one Prometheus scrape of 20 builds.
func BenchmarkScrape(b *testing.B) {
	r := New(Options{NoRuntimeMetrics: true})
	for s := range 10 {
		for _, id := range []string{"1", "2"} {
			bm := r.Build(fmt.Sprintf("svc%d", s), id)
			for i := range uint64(1000) {
				bm.Begin()
				bm.End(outcome(i))
			}
		}
	}
	h := r.Handler()
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	}
}
