package balance

import (
	"fmt"
	"testing"
)

// BenchmarkPick measures one Pick per op on healthy, idle Sets, serial and
// with RunParallel (GOMAXPROCS goroutines sharing one Set, as the proxy
// does). Pick must not allocate.
func BenchmarkPick(b *testing.B) {
	for _, p := range policies {
		for _, c := range []struct {
			n     int
			equal bool
		}{{3, true}, {3, false}, {16, false}} {
			n := c.n
			weights := make([]int, n)
			kind := "weighted"
			for i := range weights {
				weights[i] = 1 + i%3
				if c.equal {
					weights[i], kind = 1, "equal"
				}
			}
			b.Run(fmt.Sprintf("%s/n=%d/%s", p, n, kind), func(b *testing.B) {
				_, s, _ := build(b, p, weights...)
				b.ReportAllocs()
				for b.Loop() {
					if e, _ := s.Pick(nil); e == nil {
						b.Fatal("nil")
					}
				}
			})
			b.Run(fmt.Sprintf("%s/n=%d/%s/parallel", p, n, kind), func(b *testing.B) {
				_, s, _ := build(b, p, weights...)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if e, _ := s.Pick(nil); e == nil {
							b.Fatal("nil")
						}
					}
				})
			})
		}
	}
}

// BenchmarkRequest is the whole per-request balance cost: Pick, Begin,
// End(true), under parallel load.
func BenchmarkRequest(b *testing.B) {
	for _, p := range policies {
		b.Run(string(p), func(b *testing.B) {
			_, s, _ := build(b, p, 1, 2, 3)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					e, _ := s.Pick(nil)
					e.Begin()
					e.End(true)
				}
			})
		})
	}
}

// BenchmarkPickDegraded measures Pick when half the endpoints are ejected
// (clock reads, rejection sampling) and when all are (fallback pass).
func BenchmarkPickDegraded(b *testing.B) {
	for _, p := range policies {
		for _, down := range []string{"half", "all"} {
			b.Run(p.String()+"/"+down, func(b *testing.B) {
				pool := NewPool(PoolOptions{Passive: Passive{MaxFails: 1}}) // real clock
				eps := make([]*Endpoint, 8)
				for i := range eps {
					eps[i] = pool.Get(addr(i), 1)
				}
				s, err := NewSet(p, eps)
				if err != nil {
					b.Fatal(err)
				}
				for i, e := range s.Endpoints() {
					if down == "all" || i%2 == 0 {
						e.Begin()
						e.End(false)
					}
				}
				b.ReportAllocs()
				for b.Loop() {
					s.Pick(nil)
				}
			})
		}
	}
}
