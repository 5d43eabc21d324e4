// Package proxy is the data plane's HTTP handler: it matches a request to a
// service, decides stable or canary for its user, picks an endpoint and
// forwards — ordinary bodiless HTTP/1 requests on a plain path of its own
// (plain.go), everything else through net/http/httputil.ReverseProxy —
// retrying idempotent requests on another endpoint and, as a safety net, on
// stable when the canary fails. Both paths parse HTTP only with the
// standard library.
package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/route"
	"github.com/canaryd/canaryd/internal/route/cohort"
)

// Options configure a Proxy.
type Options struct {
	// Routes supplies the routing Table; required.
	Routes *route.Holder
	// Limits and timeouts; zero values take the config defaults.
	Config config.Proxy
	// AccessLog, when not nil, receives one record per request.
	AccessLog *slog.Logger
	// Logger receives errors of the proxy itself; nil discards.
	Logger *slog.Logger
	// Transport overrides the upstream transport (tests); nil builds one
	// from Config.
	Transport http.RoundTripper
	// Tracker, when not nil, follows long-lived connections so they can be
	// moved when their user's build changes.
	Tracker *Tracker
}

// Proxy is the data plane's http.Handler. Safe for concurrent use.
type Proxy struct {
	routes    *route.Holder
	cfg       config.Proxy
	rp        *httputil.ReverseProxy
	upstream  http.RoundTripper
	accessLog *slog.Logger
	log       *slog.Logger
	tracker   *Tracker
	buffers   *bufferPool
	exchanges sync.Pool // of *exchange, see newExchange
	// reqIDKey is the request id header in canonical form, so setting and
	// reading it per request skips canonicalising (an allocation).
	reqIDKey string
	// plain enables the plain path. It needs the built-in upstream, which
	// keeps nothing of a request once its response body is closed (plain
	// exchanges are recycled); tests turn it off to compare the paths.
	plain bool
}

// New returns a Proxy.
func New(o Options) *Proxy {
	p := &Proxy{routes: o.Routes, cfg: o.Config, accessLog: o.AccessLog, log: o.Logger, tracker: o.Tracker,
		buffers: newBufferPool(), plain: o.Transport == nil}
	p.exchanges.New = func() any { return new(exchange) }
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.cfg.RequestIDHeader == "" {
		p.cfg.RequestIDHeader = config.DefaultRequestIDHeader
	}
	p.reqIDKey = http.CanonicalHeaderKey(p.cfg.RequestIDHeader)
	p.upstream = o.Transport
	if p.upstream == nil {
		t := NewTransport(p.cfg)
		p.upstream = newUpstream(t, &net.Dialer{Timeout: durOr(p.cfg.DialTimeout, 5*time.Second), KeepAlive: 30 * time.Second},
			t.ResponseHeaderTimeout, t.IdleConnTimeout, t.MaxIdleConnsPerHost)
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      (*attempts)(p),
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		// FlushInterval 0: a response of known length goes out in one write;
		// event streams and responses of unknown length are flushed as
		// they come (the ReverseProxy does that by itself).
		FlushInterval: 0,
		BufferPool:    p.buffers,
	}
	return p
}

// NewTransport returns the upstream transport: keep-alive pools sized for a
// gateway, the configured timeouts, no compression tampering, HTTP/1.1 to
// upstreams.
func NewTransport(c config.Proxy) *http.Transport {
	dial := &net.Dialer{Timeout: durOr(c.DialTimeout, 5*time.Second), KeepAlive: 30 * time.Second}
	idle := c.MaxIdlePerEndpoint
	if idle <= 0 {
		idle = 512
	}
	return &http.Transport{
		DialContext:            dial.DialContext,
		MaxIdleConns:           0,
		MaxIdleConnsPerHost:    idle,
		IdleConnTimeout:        durOr(c.UpstreamIdleTimeout, 90*time.Second),
		ResponseHeaderTimeout:  durOr(c.ResponseHeaderTimeout, 60*time.Second),
		ExpectContinueTimeout:  time.Second,
		DisableCompression:     true,
		MaxResponseHeaderBytes: int64(max(c.MaxHeaderBytes, 64<<10)),
	}
}

func durOr(d config.Duration, def time.Duration) time.Duration {
	if d > 0 {
		return d.D()
	}
	return def
}

type ctxKey struct{}

// exchange is the routing state of one request, from ServeHTTP to the
// access log.
type exchange struct {
	svc      *route.Service
	decision cohort.Decision
	build    *route.Build // the build that answered (stable after a fallback)
	canary   *route.Build // set when the canary was tried and failed
	endpoint string
	reqID    string
	client   netip.Addr
	start    time.Time
	sent     time.Time // start of the last attempt
	status   int       // the status written to the client
	bytesOut int64
	errKind  string
	attempts int
	// unhealthy: the last attempt went to an endpoint picked although none
	// was available (failing checks or ejected).
	unhealthy bool
	key       string
	req       *http.Request
	// out and url are the plain path's outbound request, allocated (and
	// recycled) with the exchange.
	out http.Request
	url url.URL
}

// track describes x for the Tracker; end closes the connection.
func (x *exchange) track(b *route.Build, end func()) *tracked {
	var once sync.Once
	return &tracked{service: x.svc.Name, build: b.ID, key: x.key, client: x.client, req: x.req,
		end: func() { once.Do(end) }}
}

// ServeHTTP routes and forwards one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	t := p.routes.Load()
	var svc *route.Service
	if t != nil {
		svc = t.Match(r.Host, r.URL.Path)
	}
	if svc == nil {
		writeError(w, http.StatusNotFound, "no service matches this request", "", "", "")
		return
	}
	plain := p.plain && plainRequest(r)
	if p.cfg.MaxBodyBytes > 0 && !plain {
		if r.ContentLength > p.cfg.MaxBodyBytes {
			writeError(w, http.StatusRequestEntityTooLarge, "request body is larger than the limit", svc.Name, "", "")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, p.cfg.MaxBodyBytes)
	}
	x := p.newExchange(plain)
	x.svc, x.start = svc, start
	x.client, _ = clientAddr(r, svc.TrustedProxies)
	x.reqID = requestID(r, p.reqIDKey)
	w.Header()[p.reqIDKey] = []string{x.reqID}

	var clientIP string // formatted only when a source wants it
	if slices.ContainsFunc(svc.Sources, func(s cohort.Source) bool { return s.Kind == cohort.FromClientAddress }) {
		clientIP = addrString(x.client)
	}
	key, _ := cohort.UserKey(r, svc.Sources, clientIP)
	if key == "" {
		key = newAnonymousKey()
		if svc.AnonymousCookie != "" {
			http.SetCookie(w, &http.Cookie{Name: svc.AnonymousCookie, Value: key, Path: "/",
				MaxAge: 365 * 24 * 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
		}
	}
	x.key, x.req = key, r
	x.decision = svc.Rules.Decide(r, key, x.client, svc.Canary != nil)
	x.build = svc.Stable
	if x.decision.Canary {
		x.build = svc.Canary
	}
	if x.build == nil {
		writeError(w, http.StatusServiceUnavailable, "the service has no stable build yet", svc.Name, "", x.reqID)
		p.logAccess(r, x, http.StatusServiceUnavailable)
		return
	}
	svc.Budget.Request()
	if plain {
		p.servePlain(w, r, x)
	} else {
		p.serveReverseProxy(w, r, x)
	}
	p.logAccess(r, x, x.status)
	if plain {
		p.recycle(x)
	}
}

// newExchange returns an exchange, recycled for the plain path: nothing
// keeps a plain exchange once its response is written, while the
// ReverseProxy path's escape to the Tracker and the body wrappers.
func (p *Proxy) newExchange(plain bool) *exchange {
	if plain {
		return p.exchanges.Get().(*exchange)
	}
	return new(exchange)
}

// recycle keeps x and its outbound header map for another request.
func (p *Proxy) recycle(x *exchange) {
	h := x.out.Header
	clear(h)
	*x = exchange{}
	x.out.Header = h
	p.exchanges.Put(x)
}

// serveReverseProxy forwards through the ReverseProxy: requests with a
// body, upgrades, event streams, HTTP/2.
func (p *Proxy) serveReverseProxy(w http.ResponseWriter, r *http.Request, x *exchange) {
	ctx := context.WithValue(r.Context(), ctxKey{}, x)
	if p.tracker != nil && acceptsEventStream(r) {
		// An event stream may live for hours: track it so a user moved to
		// another build is disconnected (and reconnects) promptly.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		c := x.track(x.build, cancel)
		p.tracker.add(c)
		defer p.tracker.remove(c)
	}
	p.rp.ServeHTTP(&statusWriter{ResponseWriter: w, x: x}, r.WithContext(ctx))
}

func acceptsEventStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	p.direct(pr.In.Context().Value(ctxKey{}).(*exchange), pr.In, pr.Out)
}

// direct points out, the outbound copy of in without its hop-by-hop
// fields, at the build: URL, Host, forwarding fields (replacing the
// client's), request id. Both paths use it.
func (p *Proxy) direct(x *exchange, in, out *http.Request) {
	out.URL.Scheme = "http"
	if x.svc.StripPrefix && x.svc.Prefix != "/" {
		out.URL.Path = "/" + strings.TrimLeft(strings.TrimPrefix(out.URL.Path, x.svc.Prefix), "/")
		out.URL.RawPath = ""
	}
	out.Host = in.Host
	v := make([]string, 5) // one allocation for the five single values
	v[0], v[1], v[2], v[3] = forwarded(in, x.svc.TrustedProxies)
	v[4] = x.reqID
	out.Header["X-Forwarded-For"] = v[0:1:1]
	out.Header["X-Forwarded-Proto"] = v[1:2:2]
	out.Header["X-Forwarded-Host"] = v[2:3:3]
	out.Header["Forwarded"] = v[3:4:4]
	out.Header[p.reqIDKey] = v[4:5:5]
	// Keep the user agent header exactly as the client sent it (or absent).
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = nil
	}
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	exposeBuild(resp.Request.Context().Value(ctxKey{}).(*exchange), resp.Header)
	return nil
}

// exposeBuild names the build that answered on the response, when the
// service wants it.
func exposeBuild(x *exchange, h http.Header) {
	if x.svc.ExposeBuild {
		h[x.svc.BuildHeader] = x.build.HeaderValue
	}
}

// Errors that the attempts loop returns to the ReverseProxy, mapped to
// statuses by errorHandler.
var (
	errNoEndpoint = errors.New("the build has no endpoint")
)

func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	p.fail(w, r, r.Context().Value(ctxKey{}).(*exchange), err)
}

// fail answers a request whose forwarding failed with err, with the status
// that says why.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, x *exchange, err error) {
	status, msg := http.StatusBadGateway, "the upstream could not be reached"
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(err, &maxBytes):
		status, msg = http.StatusRequestEntityTooLarge, "request body is larger than the limit"
	case errors.Is(err, errNoEndpoint):
		status, msg = http.StatusServiceUnavailable, "the build has no endpoint"
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		status, msg = 499, "the client went away"
	case x.unhealthy:
		status, msg = http.StatusServiceUnavailable, "no healthy endpoint: "+x.build.Endpoints.Status().String()
	case isTimeout(err):
		status, msg = http.StatusGatewayTimeout, "the upstream did not answer in time"
	}
	if x.errKind == "" {
		x.errKind = msg
	}
	x.status = status
	if status == 499 {
		return
	}
	p.log.Debug("upstream error", "service", x.svc.Name, "build", x.build.ID, "endpoint", x.endpoint, "err", err)
	writeError(w, status, msg, x.svc.Name, x.build.ID, x.reqID)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) ||
		strings.Contains(err.Error(), "timeout awaiting response headers")
}

// writeError answers with a small JSON body that says which service and why;
// never a stack trace.
func writeError(w http.ResponseWriter, status int, msg, service, build, reqID string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	var b strings.Builder
	b.WriteString(`{"error":`)
	b.WriteString(jsonString(msg))
	if service != "" {
		b.WriteString(`,"service":`)
		b.WriteString(jsonString(service))
	}
	if build != "" {
		b.WriteString(`,"build":`)
		b.WriteString(jsonString(build))
	}
	if reqID != "" {
		b.WriteString(`,"request_id":`)
		b.WriteString(jsonString(reqID))
	}
	b.WriteString("}\n")
	_, _ = w.Write([]byte(b.String()))
}

func newAnonymousKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
