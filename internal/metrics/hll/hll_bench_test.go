package hll

import (
	"sync/atomic"
	"testing"
)

// BenchmarkAdd adds distinct hashes: the sketch saturates quickly, so this
// measures the steady state of a long-running build (mostly one load).
func BenchmarkAdd(b *testing.B) {
	var s Sketch
	b.ReportAllocs()
	for i := uint64(0); b.Loop(); i++ {
		s.Add(i)
	}
}

// BenchmarkAddParallel is BenchmarkAdd from every P at once.
func BenchmarkAddParallel(b *testing.B) {
	var s Sketch
	var seed atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := seed.Add(1) << 40
		for pb.Next() {
			s.Add(i)
			i++
		}
	})
}

func BenchmarkEstimate(b *testing.B) {
	var s Sketch
	for i := uint64(0); i < 100_000; i++ {
		s.Add(i)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Estimate()
	}
}
