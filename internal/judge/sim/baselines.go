package sim

import (
	"math"
	"time"

	"github.com/canaryd/canaryd/internal/judge"
	"github.com/canaryd/canaryd/internal/latency"
)

// baselines are the field's default analyses, fed the same bins as the
// judge. Each is written from its documentation's description, not from
// its code:
//
//   - Flagger-style: every 60 s, a check fails when the canary's success
//     rate over the last minute is below 99 % or its p99 above 500 ms;
//     rollback after 5 failed checks (not reset by passing ones). A minute
//     without canary requests is not a check.
//   - Argo Rollouts docs example: every 5 minutes, success rate ≥ 0.95 over
//     the last 5 minutes; the analysis fails when failed measurements
//     exceed failureLimit 3. No requests: no measurement.
//   - Kayenta-style: every 10 minutes, a one-sided Mann–Whitney test
//     (ties corrected) of the last 10 minutes' canary against stable for
//     latency and for failures (0/1 per request); a metric fails at the
//     98 % two-sided level on the bad side (one-sided 1 %), and the run
//     rolls back when a metric fails (score 50 < 75). Fewer than 10
//     requests on a side: "nodata", no decision.
//   - Naive z-test: every second, the pooled two-proportion z-test of the
//     canary's cumulative error rate against stable's, one-sided at 0.5 %
//     (z > 2.576), once each side has 30 requests.
type baselines struct {
	flagHist                   latency.Histogram
	flagReq, flagErr           uint64
	flagFailed                 int
	argoReq, argoErr           uint64
	argoFailed                 int
	kayC, kayS                 latency.Histogram
	kayCReq, kayCErr           uint64
	kaySReq, kaySErr           uint64
	zCReq, zCErr, zSReq, zSErr uint64
	failed                     [4]bool
}

// observe adds the bin that ends elapsed seconds into the run and returns
// which baselines have failed (flagger, argo, kayenta, z-test).
func (b *baselines) observe(elapsed int, bin *judge.Bin) [4]bool {
	c, s := &bin.Canary, &bin.Stable
	if !b.failed[0] {
		b.flagHist.Merge(&c.Latency)
		b.flagReq += c.Requests
		b.flagErr += c.Errors
		if elapsed%60 == 0 {
			if b.flagReq > 0 {
				succ := 1 - float64(b.flagErr)/float64(b.flagReq)
				if succ < 0.99 || b.flagHist.Quantile(0.99) > 500*time.Millisecond {
					b.flagFailed++
				}
			}
			b.flagHist.Reset()
			b.flagReq, b.flagErr = 0, 0
			b.failed[0] = b.flagFailed >= 5
		}
	}
	if !b.failed[1] {
		b.argoReq += c.Requests
		b.argoErr += c.Errors
		if elapsed%300 == 0 {
			if b.argoReq > 0 && 1-float64(b.argoErr)/float64(b.argoReq) < 0.95 {
				b.argoFailed++
			}
			b.argoReq, b.argoErr = 0, 0
			b.failed[1] = b.argoFailed > 3
		}
	}
	if !b.failed[2] {
		b.kayC.Merge(&c.Latency)
		b.kayS.Merge(&s.Latency)
		b.kayCReq += c.Requests
		b.kayCErr += c.Errors
		b.kaySReq += s.Requests
		b.kaySErr += s.Errors
		if elapsed%600 == 0 {
			if b.kayCReq >= 10 && b.kaySReq >= 10 {
				const z98 = 2.3263478740408408
				zl := mannWhitneyZ(&b.kayC, &b.kayS)
				ze := proportionZ(b.kayCErr, b.kayCReq, b.kaySErr, b.kaySReq)
				b.failed[2] = zl > z98 || ze > z98
			}
			b.kayC.Reset()
			b.kayS.Reset()
			b.kayCReq, b.kayCErr, b.kaySReq, b.kaySErr = 0, 0, 0, 0
		}
	}
	if !b.failed[3] {
		b.zCReq += c.Requests
		b.zCErr += c.Errors
		b.zSReq += s.Requests
		b.zSErr += s.Errors
		if b.zCReq >= 30 && b.zSReq >= 30 {
			b.failed[3] = proportionZ(b.zCErr, b.zCReq, b.zSErr, b.zSReq) > 2.5758293035489004
		}
	}
	return b.failed
}

// proportionZ is the pooled two-proportion z statistic (positive when the
// canary fails more); identical to a tie-corrected Mann–Whitney test on
// 0/1 outcomes. 0 when undefined.
func proportionZ(xc, nc, xs, ns uint64) float64 {
	if nc == 0 || ns == 0 {
		return 0
	}
	p := float64(xc+xs) / float64(nc+ns)
	v := p * (1 - p) * (1/float64(nc) + 1/float64(ns))
	if v <= 0 {
		return 0
	}
	return (float64(xc)/float64(nc) - float64(xs)/float64(ns)) / math.Sqrt(v)
}

// mannWhitneyZ is the normal approximation of the Mann–Whitney U statistic
// of canary latencies against stable's, with ties (same bucket) counted
// half and the tie-corrected variance; positive when the canary is slower.
func mannWhitneyZ(c, s *latency.Histogram) float64 {
	nc, ns := float64(c.Total), float64(s.Total)
	if nc == 0 || ns == 0 {
		return 0
	}
	var u, below, ties float64
	for i := range c.Counts {
		ci, si := float64(c.Counts[i]), float64(s.Counts[i])
		u += ci * (below + si/2)
		below += si
		t := ci + si
		ties += t*t*t - t
	}
	n := nc + ns
	v := nc * ns / 12 * ((n + 1) - ties/(n*(n-1)))
	if v <= 0 {
		return 0
	}
	return (u - nc*ns/2) / math.Sqrt(v)
}
