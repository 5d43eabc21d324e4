package proxy

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/canaryd/canaryd/internal/balance"
	"github.com/canaryd/canaryd/internal/metrics"
)

// attempts is the Proxy seen as the ReverseProxy's Transport: it sends one
// request to an endpoint of the chosen build, retries an idempotent request
// on another endpoint after a connection error (within the attempt limit
// and the service's retry budget), and, as the safety net, retries an
// idempotent request that failed on the canary once on stable. Every
// attempt is measured against the build that served it, so a failure that
// the safety net hides from the user still counts against the canary.
type attempts Proxy

func (a *attempts) RoundTrip(out *http.Request) (*http.Response, error) {
	x := out.Context().Value(ctxKey{}).(*exchange)
	svc := x.svc
	replayable := out.Body == nil && idempotent(out.Method)
	var exclude *balance.Endpoint
	tries := 0
	for {
		tries++
		x.attempts++
		ep, _ := x.build.Endpoints.Pick(exclude)
		if ep == nil {
			if exclude == nil {
				return nil, errNoEndpoint
			}
			ep, _ = x.build.Endpoints.Pick(nil) // a single endpoint: retry it
		}
		x.endpoint = ep.Addr()
		out.URL.Host = x.endpoint
		out.Header[svc.BuildHeader] = x.build.HeaderValue
		bm := x.build.Metrics
		ep.Begin()
		if bm != nil {
			bm.Begin()
		}
		start := time.Now()
		resp, err := a.upstream.RoundTrip(out)
		if err != nil {
			if out.Context().Err() != nil { // the client went away: nobody's fault
				ep.EndNeutral()
				if bm != nil {
					bm.End(metrics.Outcome{Status: 499, Duration: time.Since(start), User: x.decision.Hash})
				}
				return nil, err
			}
			ep.End(false)
			if bm != nil {
				bm.End(metrics.Outcome{ConnErr: true, Duration: time.Since(start), User: x.decision.Hash})
			}
			if replayable && tries < svc.Attempts && svc.Budget.TryRetry() {
				exclude = ep
				continue
			}
			if replayable && a.fallBack(x) {
				exclude, tries = nil, 0
				continue
			}
			return nil, err
		}
		ep.End(true)
		if resp.StatusCode >= 500 && replayable && a.fallBack(x) {
			if bm != nil {
				bm.End(metrics.Outcome{Status: resp.StatusCode, Duration: time.Since(start), User: x.decision.Hash})
			}
			drain(resp.Body)
			exclude, tries = nil, 0
			continue
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			if bm != nil {
				bm.End(metrics.Outcome{Status: resp.StatusCode, Duration: time.Since(start), User: x.decision.Hash})
			}
			if rwc, ok := resp.Body.(io.ReadWriteCloser); ok && a.tracker != nil {
				resp.Body = a.tracker.track(x, rwc)
			}
			return resp, nil
		}
		resp.Body = &measuredBody{rc: resp.Body, bm: bm, start: start, status: resp.StatusCode, user: x.decision.Hash, x: x}
		return resp, nil
	}
}

// fallBack switches x from a failed canary to stable, once, when the
// service allows it.
func (a *attempts) fallBack(x *exchange) bool {
	svc := x.svc
	if !svc.StableFallback || x.canary != nil || svc.Stable == nil || x.build != svc.Canary || svc.Canary == nil {
		return false
	}
	x.canary, x.build = x.build, svc.Stable
	return true
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// drain reads a little of a discarded body so its connection can be reused,
// then closes it.
func drain(rc io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, rc, 64<<10)
	_ = rc.Close()
}

// measuredBody records the outcome of a response when its body is done:
// duration to the last byte and bytes written.
type measuredBody struct {
	rc     io.ReadCloser
	bm     *metrics.BuildMetrics
	x      *exchange
	start  time.Time
	status int
	user   uint64
	n      int64
	done   atomic.Bool
}

func (b *measuredBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *measuredBody) Close() error {
	err := b.rc.Close()
	if b.done.CompareAndSwap(false, true) {
		b.x.bytesOut = b.n
		if b.bm != nil {
			b.bm.End(metrics.Outcome{Status: b.status, Duration: time.Since(b.start), BytesOut: b.n, User: b.user})
		}
	}
	return err
}
