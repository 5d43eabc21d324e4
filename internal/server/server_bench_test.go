package server

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkTrafficChangeToDataPlane measures how long a traffic change made
// through the control plane takes to be served: from the operation's call
// to the data plane's routing Table showing it (store commit, change feed,
// snapshot, rebuild, publish). It reports p50 and p99 in milliseconds.
func BenchmarkTrafficChangeToDataPlane(b *testing.B) {
	stable, canary := backend(b, "stable"), backend(b, "canary")
	srv, _ := start(b, twoBuilds, "sticky", addr(stable), 10, addr(canary))
	ctx := context.Background()
	var lat []time.Duration
	i := 0
	for b.Loop() {
		i++
		pct := float64(1 + i%99)
		start := time.Now()
		if _, err := srv.Plane().SetTraffic(ctx, "bench", "api", pct, ""); err != nil {
			b.Fatal(err)
		}
		for srv.Routes().Load().Service("api").Rules.Percent != pct {
			if time.Since(start) > 5*time.Second {
				b.Fatal("traffic change not served within 5 s")
			}
			time.Sleep(50 * time.Microsecond)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
