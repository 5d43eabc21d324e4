package metrics

import (
	"net/http"

	"github.com/canaryd/canaryd/internal/latency"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// latencyBuckets are the upper bounds of canaryd_request_duration_seconds,
// from half a millisecond to a minute.
//
// The internal histogram's buckets (latency package: 16 per power of two)
// do not fall on these round bounds, so each internal bucket is counted
// under the first bound at or above its upper edge: a request is never
// counted below a bound it exceeded, and one within 6.25 % under a bound may
// be counted under the next. Quantiles from Prometheus therefore err
// slightly high, equally for every build.
var latencyBuckets = [...]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Handler returns the Prometheus exposition of every build (and, unless
// Options.NoRuntimeMetrics, of the Go runtime and the process), for the
// admin listener to mount at /metrics. Values are read from the counters at
// scrape time.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.prom, promhttp.HandlerOpts{})
}

// collector converts every build's counters to Prometheus metrics at scrape
// time. It is a prometheus.Collector of the Registry's own
// prometheus.Registry, never of the global default one.
type collector struct {
	r *Registry

	requests, inFlight, bytesIn, bytesOut, users, harmed, duration *prometheus.Desc

	// le maps each internal latency bucket to the index in latencyBuckets
	// it is counted under; len(latencyBuckets) means only +Inf.
	le [latency.NumBuckets]int
}

func newCollector(r *Registry) *collector {
	labels := []string{"service", "build", "state"}
	c := &collector{
		r: r,
		requests: prometheus.NewDesc("canaryd_requests_total",
			"Requests proxied to a build, by outcome class: 1xx..5xx of the upstream's status, conn_error when the upstream never answered, other for a status outside 100-599.",
			append(labels, "class"), nil),
		inFlight: prometheus.NewDesc("canaryd_requests_in_flight",
			"Requests to a build begun and not yet ended.", labels, nil),
		bytesIn: prometheus.NewDesc("canaryd_request_bytes_total",
			"Request body bytes read from clients for a build.", labels, nil),
		bytesOut: prometheus.NewDesc("canaryd_response_bytes_total",
			"Response body bytes written to clients from a build.", labels, nil),
		users: prometheus.NewDesc("canaryd_distinct_users",
			"Estimated distinct users a build served since the gateway started counting it (HyperLogLog, about 0.8% relative error).", labels, nil),
		harmed: prometheus.NewDesc("canaryd_users_harmed",
			"Estimated distinct users who got at least one 5xx or connection error from a build (HyperLogLog, about 0.8% relative error).", labels, nil),
		duration: prometheus.NewDesc("canaryd_request_duration_seconds",
			"Time from the start of a request to a build to the end of its response or failure, every outcome included.", labels, nil),
	}
	j := 0
	for i := range c.le {
		_, hi := latency.Bounds(i)
		for j < len(latencyBuckets) && hi.Seconds() > latencyBuckets[j] {
			j++
		}
		c.le[i] = j
	}
	return c
}

// Describe sends the fixed descriptors of every canaryd series.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.inFlight, c.bytesIn, c.bytesOut, c.users, c.harmed, c.duration} {
		ch <- d
	}
}

// Collect reads every build's counters.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, bm := range c.r.Builds("") {
		var t Totals
		bm.counters(&t)
		lv := []string{bm.service, bm.build, bm.State()}
		for cl, n := range t.Classes {
			if Class(cl) == ClassOther && n == 0 {
				continue // a status outside 100–599 is rare: no series until it happens
			}
			ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(n), append(lv, Class(cl).String())...)
		}
		ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(t.InFlight), lv...)
		ch <- prometheus.MustNewConstMetric(c.bytesIn, prometheus.CounterValue, float64(t.BytesIn), lv...)
		ch <- prometheus.MustNewConstMetric(c.bytesOut, prometheus.CounterValue, float64(t.BytesOut), lv...)
		ch <- prometheus.MustNewConstMetric(c.users, prometheus.GaugeValue, bm.users.Estimate(), lv...)
		ch <- prometheus.MustNewConstMetric(c.harmed, prometheus.GaugeValue, bm.harmed.Estimate(), lv...)
		ch <- prometheus.MustNewConstHistogram(c.duration, t.Latency.Total, t.LatencySum.Seconds(), c.buckets(&t.Latency), lv...)
	}
}

// buckets converts h to Prometheus' cumulative bucket counts.
func (c *collector) buckets(h *latency.Histogram) map[float64]uint64 {
	per := make([]uint64, len(latencyBuckets)+1)
	for i, n := range h.Counts {
		per[c.le[i]] += n
	}
	out := make(map[float64]uint64, len(latencyBuckets))
	var cum uint64
	for j, ub := range latencyBuckets {
		cum += per[j]
		out[ub] = cum
	}
	return out
}
