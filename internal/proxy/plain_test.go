package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/route"
)

// gatewayPair serves the same routing through two Proxies, one with the
// plain path and one that sends everything through the ReverseProxy.
func gatewayPair(t *testing.T, upstream *httptest.Server, serviceExtra string) (plain, rp *httptest.Server) {
	t.Helper()
	src := fmt.Sprintf(`
listen: 127.0.0.1:0
proxy: {trusted_proxies: [10.0.0.0/8]}
services:
  - name: api
    match: {path_prefix: /}
%s    builds: [{id: "7", state: stable, endpoints: [%s]}]
`, serviceExtra, strings.TrimPrefix(upstream.URL, "http://"))
	cfg, err := config.Parse([]byte(src), "t", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := (&route.Builder{}).Build(cfg, route.StatesFromConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	var h route.Holder
	h.Publish(tbl)
	withRP := New(Options{Routes: &h, Config: cfg.Proxy})
	withRP.plain = false
	plain = httptest.NewServer(New(Options{Routes: &h, Config: cfg.Proxy}))
	rp = httptest.NewServer(withRP)
	t.Cleanup(plain.Close)
	t.Cleanup(rp.Close)
	return plain, rp
}

// seen is what the upstream received.
type seen struct {
	method, uri, proto, host string
	header                   http.Header
	contentLength            int64
}

// upstreamForPair answers by path with the kinds of responses a proxy must
// pass on: plain, hop-by-hop fields, trailers, streams, no-body statuses,
// informational answers, errors, a big body, a body cut short.
func upstreamForPair(t *testing.T, got chan<- seen) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Method, r.RequestURI, r.Proto, r.Host, r.Header.Clone(), r.ContentLength}
		h := w.Header()
		h.Set("Connection", "X-Secret-Hop")
		h.Set("X-Secret-Hop", "leak")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Add("X-Multi", "a")
		h.Add("X-Multi", "b")
		h.Set("X-Request-Id", "from-upstream") // added to the gateway's, not replacing it
		switch path := strings.TrimPrefix(r.URL.Path, "/"); path {
		case "trailers":
			h.Set("Trailer", "X-Checksum")
			io.WriteString(w, "body")
			h.Set("X-Checksum", "abc")
			h.Set(http.TrailerPrefix+"X-Late", "unannounced")
		case "chunked":
			io.WriteString(w, "part one;")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part two")
		case "sse":
			h.Set("Content-Type", "text/event-stream; charset=utf-8")
			io.WriteString(w, "data: 1\n\n")
		case "204":
			w.WriteHeader(http.StatusNoContent)
		case "304":
			h.Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		case "103":
			h.Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "after hints")
		case "503":
			http.Error(w, "down", http.StatusServiceUnavailable)
		case "big":
			h.Set("Content-Type", "application/octet-stream")
			w.Write([]byte(strings.Repeat("0123456789abcdef", 8<<10)))
		case "cut":
			h.Set("Content-Length", "100")
			io.WriteString(w, "only ten b")
			w.(http.Flusher).Flush()
			c, _, _ := http.NewResponseController(w).Hijack()
			c.Close()
		default:
			h.Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "%s %s", r.Method, r.URL.Path)
		}
	}))
	t.Cleanup(up.Close)
	return up
}

// exchangeRaw sends a raw request on a new connection and describes the
// response read with the standard parser, body and trailers included.
func exchangeRaw(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		return "no response: " + err.Error()
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return describe(resp, string(body), err)
}

// The plain path and the ReverseProxy send the same request upstream and
// the same response to the client, for requests that take the plain path.
func TestPlainPathMatchesReverseProxy(t *testing.T) {
	got := make(chan seen, 1)
	up := upstreamForPair(t, got)
	plain, rp := gatewayPair(t, up, "    expose_build: true\n")
	const common = "Host: gw.example\r\nX-User-ID: u1\r\nX-Request-ID: rid-1\r\n"
	for _, tc := range []struct{ name, raw string }{
		{"simple", "GET /a?x=1&y=%20z HTTP/1.1\r\n" + common + "User-Agent: ua/1\r\nAccept: */*\r\n\r\n"},
		{"no user agent", "GET /a HTTP/1.1\r\n" + common + "\r\n"},
		{"hop-by-hop", "GET /b HTTP/1.1\r\n" + common + "Connection: keep-alive, X-Hop, x-other\r\nX-Hop: 1\r\nX-Other: 2\r\n" +
			"Keep-Alive: 300\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eDp5\r\nTe: deflate\r\n" +
			"Trailer: X-T\r\nUpgrade-Insecure-Requests: 1\r\n\r\n"},
		{"connection names our fields", "GET /b HTTP/1.1\r\n" + common +
			"Connection: X-Request-ID, User-Agent, X-Canary-Build, X-Forwarded-For\r\nUser-Agent: ua\r\n\r\n"},
		{"forged forwarding", "GET /c HTTP/1.1\r\n" + common + "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil\r\n" +
			"X-Forwarded-Proto: https\r\nForwarded: for=6.6.6.6\r\n\r\n"},
		{"repeated fields", "GET /d HTTP/1.1\r\n" + common + "X-Multi: a\r\nX-Multi: b, c\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n"},
		{"escaped path", "GET /a%2Fb/c%20d?q=%41 HTTP/1.1\r\n" + common + "\r\n"},
		{"absolute form", "GET http://gw.example/abs?q HTTP/1.1\r\n" + common + "\r\n"},
		{"HTTP/1.0", "GET /old HTTP/1.0\r\n" + common + "\r\n"},
		{"HEAD", "HEAD /a HTTP/1.1\r\n" + common + "\r\n"},
		{"DELETE", "DELETE /a HTTP/1.1\r\n" + common + "\r\n"},
		{"POST without body", "POST /a HTTP/1.1\r\n" + common + "Content-Length: 0\r\n\r\n"},
		{"trailers", "GET /trailers HTTP/1.1\r\n" + common + "Te: trailers\r\n\r\n"},
		{"chunked stream", "GET /chunked HTTP/1.1\r\n" + common + "\r\n"},
		{"event stream", "GET /sse HTTP/1.1\r\n" + common + "\r\n"},
		{"204", "GET /204 HTTP/1.1\r\n" + common + "\r\n"},
		{"304", "GET /304 HTTP/1.1\r\n" + common + "If-None-Match: \"v1\"\r\n\r\n"},
		{"103 then 200", "GET /103 HTTP/1.1\r\n" + common + "\r\n"},
		{"503", "GET /503 HTTP/1.1\r\n" + common + "\r\n"},
		{"big body", "GET /big HTTP/1.1\r\n" + common + "\r\n"},
		{"body cut short", "GET /cut HTTP/1.1\r\n" + common + "\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tc.raw)))
			if err != nil {
				t.Fatal(err)
			}
			if !plainRequest(in) {
				t.Fatal("the request does not take the plain path")
			}
			var ups [2]seen
			var answers [2]string
			for i, gw := range []*httptest.Server{plain, rp} {
				answers[i] = exchangeRaw(t, strings.TrimPrefix(gw.URL, "http://"), tc.raw)
				ups[i] = <-got
			}
			if fmt.Sprint(ups[0]) != fmt.Sprint(ups[1]) {
				t.Errorf("upstream requests differ:\nplain: %v\nrp:    %v", ups[0], ups[1])
			}
			if answers[0] != answers[1] {
				t.Errorf("client responses differ:\nplain: %s\nrp:    %s", answers[0], answers[1])
			}
		})
	}
}

// describe renders a response for comparison: status, header fields
// (sorted, without Date), body, trailers, and whether the body was cut.
func describe(resp *http.Response, body string, bodyErr error) string {
	var lines []string
	for k, vv := range resp.Header {
		if k != "Date" {
			lines = append(lines, k+": "+strings.Join(vv, " | "))
		}
	}
	slices.Sort(lines)
	var trailers []string
	for k, vv := range resp.Trailer {
		trailers = append(trailers, k+": "+strings.Join(vv, " | "))
	}
	slices.Sort(trailers)
	return fmt.Sprintf("%s %q length=%d te=%v\n%s\nbody %q (cut: %v)\ntrailers %v", resp.Proto, resp.Status,
		resp.ContentLength, resp.TransferEncoding, strings.Join(lines, "\n"), body, bodyErr != nil, trailers)
}

// Requests with a body, upgrades, expectations, event streams, HTTP/2 and
// queries the ReverseProxy would re-encode stay on the ReverseProxy.
func TestPlainRequestChoice(t *testing.T) {
	for _, tc := range []struct {
		raw   string
		plain bool
	}{
		{"GET /?a=1&b=%2F HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", false},
		{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n", false},
		{"GET /?a=1;b=2 HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"GET /?a=%zz HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"GET /?a=%4 HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"GET /?" + strings.Repeat("a&", 10000) + " HTTP/1.1\r\nHost: x\r\n\r\n", false},
	} {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tc.raw)))
		if err != nil {
			t.Fatal(err)
		}
		if got := plainRequest(r); got != tc.plain {
			t.Errorf("plainRequest(%.60q) = %v, want %v", tc.raw, got, tc.plain)
		}
	}
	h2 := httptest.NewRequest("GET", "/", nil)
	h2.ProtoMajor, h2.ProtoMinor, h2.Proto = 2, 0, "HTTP/2.0"
	if plainRequest(h2) {
		t.Error("an HTTP/2 request took the plain path")
	}
}

// A client that goes away while the upstream is still working ends the
// upstream request at once on the plain path too.
func TestPlainPathClientGoneCancelsUpstream(t *testing.T) {
	cancelled := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(10 * time.Second):
		}
	}))
	defer up.Close()
	gw, _ := gateway(t, up, "")
	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\nX-User-ID: u\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	c.Close()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was not cancelled when the client went away")
	}
}
