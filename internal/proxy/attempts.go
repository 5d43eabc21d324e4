package proxy

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/canaryd/canaryd/internal/balance"
	"github.com/canaryd/canaryd/internal/judge"
	"github.com/canaryd/canaryd/internal/metrics"
	"github.com/canaryd/canaryd/internal/route"
)

// attempts is the Proxy seen as the ReverseProxy's Transport.
type attempts Proxy

// RoundTrip sends out for the ReverseProxy and measures the response: when
// its body is closed, or at once for an upgrade, which the Tracker follows.
func (a *attempts) RoundTrip(out *http.Request) (*http.Response, error) {
	x := out.Context().Value(ctxKey{}).(*exchange)
	resp, err := a.send(x, out)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		x.finish(resp.StatusCode, 0)
		if rwc, ok := resp.Body.(io.ReadWriteCloser); ok && a.tracker != nil {
			w := newWSConn(rwc, a.tracker, strings.EqualFold(resp.Header.Get("Upgrade"), "websocket"))
			w.c = x.track(x.build, w.requestClose)
			a.tracker.add(w.c)
			resp.Body = w
		}
		return resp, nil
	}
	resp.Body = &measuredBody{rc: resp.Body, status: resp.StatusCode, x: x}
	return resp, nil
}

// send sends out to an endpoint of the chosen build, retries an idempotent
// request on another endpoint after a connection error (within the attempt
// limit and the service's retry budget), and, as the safety net, retries an
// idempotent request that failed on the canary once on stable. Every
// attempt is measured against the build that served it, so a failure that
// the safety net hides from the user still counts against the canary. The
// response it returns is recorded by x.finish once it has been passed on.
func (a *attempts) send(x *exchange, out *http.Request) (*http.Response, error) {
	svc := x.svc
	replayable := out.Body == nil && idempotent(out.Method)
	var exclude *balance.Endpoint
	tries := 0
	for {
		tries++
		x.attempts++
		ep, fallback := x.build.Endpoints.Pick(exclude)
		if ep == nil {
			if exclude == nil {
				return nil, errNoEndpoint
			}
			ep, fallback = x.build.Endpoints.Pick(nil) // a single endpoint: retry it
		}
		x.unhealthy = fallback
		x.endpoint = ep.Addr()
		out.URL.Host = x.endpoint
		out.Header[svc.BuildHeader] = x.build.HeaderValue
		b := x.build
		ep.Begin()
		x.begin(b)
		x.sent = time.Now()
		resp, err := a.upstream.RoundTrip(out)
		if err != nil {
			if out.Context().Err() != nil { // the client went away: nobody's fault
				ep.EndNeutral()
				x.end(b, metrics.Outcome{Status: 499, Duration: time.Since(x.sent), User: x.decision.Hash})
				return nil, err
			}
			ep.End(false)
			x.end(b, metrics.Outcome{ConnErr: true, Duration: time.Since(x.sent), User: x.decision.Hash})
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
			x.end(b, metrics.Outcome{Status: resp.StatusCode, Duration: time.Since(x.sent), User: x.decision.Hash})
			drain(resp.Body)
			exclude, tries = nil, 0
			continue
		}
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
	x      *exchange
	status int
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
		b.x.finish(b.status, b.n)
	}
	return err
}

// finish records the response of the last attempt, with n body bytes, once
// it has been passed on.
func (x *exchange) finish(status int, n int64) {
	x.bytesOut = n
	x.end(x.build, metrics.Outcome{Status: status, Duration: time.Since(x.sent), BytesOut: n, User: x.decision.Hash})
}

// judged reports whether an attempt on b is a sample for the judge: only
// randomised traffic, and never the stable retry of the safety net (the
// canary failure that caused it is judged).
func (x *exchange) judged(b *route.Build) bool {
	return b.Judged != nil && x.decision.Reason.Randomised() && (x.canary == nil || b == x.canary)
}

func (x *exchange) begin(b *route.Build) {
	if b.Metrics != nil {
		b.Metrics.Begin()
	}
	if x.judged(b) {
		b.Judged.Begin()
	}
}

// end records one attempt on b: all traffic in Metrics; samples also in
// Judged and in the release's first-event tracker.
func (x *exchange) end(b *route.Build, o metrics.Outcome) {
	if b.Metrics != nil {
		b.Metrics.End(o)
	}
	if !x.judged(b) {
		return
	}
	b.Judged.End(o)
	if t := x.svc.Analysis.Tracker(); t != nil {
		side := judge.Stable
		if b == x.svc.Canary {
			side = judge.Canary
		}
		t.Observe(o.User, side, o.ConnErr || o.Status >= 500, o.Duration)
	}
}
