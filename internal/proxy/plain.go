package proxy

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"unicode"
)

// The plain path forwards an ordinary bodiless HTTP/1 request — most
// traffic — without httputil.ReverseProxy: no clone of the request and its
// header map, no delete-then-copy of header fields, no per-request trace,
// context value or response wrappers. It keeps the ReverseProxy's semantics
// field for field (hop-by-hop removal, forwarding fields, trailers, flushing
// of streams, aborting on a broken body copy); plain_test.go checks both
// paths against each other. Requests with a body, upgrades, expectations,
// event streams (tracked) and HTTP/2 take the ReverseProxy.

// plainRequest reports whether r can take the plain path.
func plainRequest(r *http.Request) bool {
	if r.ProtoMajor != 1 || r.Body != http.NoBody || r.ContentLength != 0 {
		return false
	}
	h := r.Header
	if _, ok := h["Upgrade"]; ok {
		return false
	}
	if _, ok := h["Expect"]; ok {
		return false
	}
	return !acceptsEventStream(r) && queryKept(r.URL.RawQuery)
}

// reencodeQueries is set when GODEBUG urlmaxqueryparams makes the
// ReverseProxy re-encode every query.
var reencodeQueries = strings.Contains(os.Getenv("GODEBUG"), "urlmaxqueryparams=")

// queryKept reports whether the ReverseProxy would forward the raw query q
// as it is: it re-encodes a query with a ';', a malformed escape or more
// than 10 000 parameters.
func queryKept(q string) bool {
	if q == "" {
		return true
	}
	if reencodeQueries || strings.Count(q, "&") >= 10000 {
		return false
	}
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case ';':
			return false
		case '%':
			if i+2 >= len(q) || !ishex(q[i+1]) || !ishex(q[i+2]) {
				return false
			}
		}
	}
	return true
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// servePlain forwards r on the plain path and writes the response.
func (p *Proxy) servePlain(w http.ResponseWriter, r *http.Request, x *exchange) {
	out := &x.out
	recycled := out.Header // an empty map, or nil
	*out = *r              // same context; fields below are replaced, never modified in place
	x.url = *r.URL
	out.URL = &x.url
	out.Header = plainHeader(recycled, r.Header)
	out.Body = nil
	out.Close = false
	p.direct(x, r, out)

	resp, err := (*attempts)(p).send(x, out)
	if err != nil {
		p.fail(w, r, x, err)
		return
	}
	if resp.StatusCode == http.StatusSwitchingProtocols { // nobody asked for an upgrade
		x.finish(resp.StatusCode, 0)
		_ = resp.Body.Close()
		p.fail(w, r, x, errUnaskedUpgrade)
		return
	}
	removeHopByHop(resp.Header)
	exposeBuild(x, resp.Header)
	h := w.Header()
	for k, vv := range resp.Header {
		addValues(h, k, vv)
	}
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h.Add("Trailer", strings.Join(keys, ", "))
	}
	x.status = resp.StatusCode
	w.WriteHeader(resp.StatusCode)

	// A stream (an event stream, or a body of unknown length) is flushed
	// as it comes, starting with the header; anything else goes out in one
	// write when the handler returns.
	var flush func() error
	if resp.ContentLength == -1 || isEventStream(resp.Header.Get("Content-Type")) {
		flush = http.NewResponseController(w).Flush
		_ = flush()
	}
	n, err := p.copyBody(w, resp, flush)
	if err != nil {
		_ = resp.Body.Close()
		x.finish(resp.StatusCode, n)
		p.log.Debug("response body copy failed", "service", x.svc.Name, "build", x.build.ID, "endpoint", x.endpoint, "err", err)
		if r.Context().Value(http.ServerContextKey) != nil {
			panic(http.ErrAbortHandler) // the server drops the connection
		}
		return
	}
	_ = resp.Body.Close() // fills resp.Trailer
	x.finish(resp.StatusCode, n)
	if len(resp.Trailer) > 0 {
		// Chunked, so the trailers can follow; a short body would
		// otherwise get a Content-Length.
		_ = http.NewResponseController(w).Flush()
	}
	if len(resp.Trailer) == announced {
		for k, vv := range resp.Trailer {
			addValues(h, k, vv)
		}
		return
	}
	for k, vv := range resp.Trailer {
		addValues(h, http.TrailerPrefix+k, vv)
	}
}

// addValues adds the values vv of the canonical key k to h, as h.Add
// would one by one; vv itself becomes h's slice when h has none, so vv
// must not be changed afterwards.
func addValues(h http.Header, k string, vv []string) {
	switch {
	case len(vv) == 0:
	case len(h[k]) == 0:
		h[k] = vv
	default:
		h[k] = append(h[k], vv...)
	}
}

var errUnaskedUpgrade = errors.New("the upstream switched protocols unasked")

// copyBody copies resp's body to w, calling flush after each write when
// it is not nil. It returns the bytes read from the upstream.
func (p *Proxy) copyBody(w http.ResponseWriter, resp *http.Response, flush func() error) (int64, error) {
	bp := p.buffers.get()
	defer p.buffers.put(bp)
	buf := *bp
	var n int64
	for {
		nr, rerr := resp.Body.Read(buf)
		n += int64(nr)
		if nr > 0 {
			if _, err := w.Write(buf[:nr]); err != nil {
				return n, err
			}
			if flush != nil {
				_ = flush()
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return n, nil
			}
			return n, rerr
		}
	}
}

// plainHeader fills out (an empty map, or nil for a new one) with the
// header to send upstream for a request with header in: in's fields minus
// the hop-by-hop ones, and "Te: trailers" when the client accepts
// trailers; direct then replaces the forwarding fields. The values are in's
// slices, so they are only ever replaced, never appended to.
func plainHeader(out, in http.Header) http.Header {
	if out == nil {
		out = make(http.Header, len(in)+6)
	}
	for k, vv := range in {
		if !hopByHop(k) {
			out[k] = vv
		}
	}
	for _, f := range in["Connection"] {
		for name := range strings.SplitSeq(f, ",") {
			if name = textproto.TrimString(name); name != "" {
				delete(out, textproto.CanonicalMIMEHeaderKey(name))
			}
		}
	}
	if hasToken(in["Te"], "trailers") {
		out["Te"] = []string{"trailers"}
	}
	return out
}

// removeHopByHop deletes from h the fields that belong to one connection:
// those named in Connection (RFC 9110, 7.6.1) and the fixed list the
// ReverseProxy removes.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for name := range strings.SplitSeq(f, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for k := range h {
		if hopByHop(k) {
			delete(h, k)
		}
	}
}

// hopByHop reports whether the canonical field name k is one the
// ReverseProxy always removes.
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// hasToken reports whether one of the comma-separated lists vv holds
// token, in any case.
func hasToken(vv []string, token string) bool {
	for _, v := range vv {
		for t := range strings.SplitSeq(v, ",") {
			if asciiEqualFold(textproto.TrimString(t), token) {
				return true
			}
		}
	}
	return false
}

// isEventStream reports whether the Content-Type ct is
// text/event-stream, as the ReverseProxy decides it; the prefix test spares
// parsing every other type.
func isEventStream(ct string) bool {
	const es = "text/event-stream"
	ct = strings.TrimLeftFunc(ct, unicode.IsSpace)
	if len(ct) < len(es) || !asciiEqualFold(ct[:len(es)], es) {
		return false
	}
	base, _, _ := mime.ParseMediaType(ct)
	return base == es
}

// asciiEqualFold is strings.EqualFold for ASCII only, as HTTP compares
// tokens: no other letter folds to an ASCII one.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
