package proxy

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/route"
)

// gateway serves a Proxy over one service whose stable build is upstream.
func gateway(t *testing.T, upstream *httptest.Server, yamlExtra string) (*httptest.Server, *route.Holder) {
	t.Helper()
	return gatewayWith(t, upstream, "proxy: {trusted_proxies: [10.0.0.0/8], max_body_bytes: 2147483648}", yamlExtra)
}

// gatewayWith is gateway with the config's proxy section given.
func gatewayWith(t *testing.T, upstream *httptest.Server, proxySection, yamlExtra string) (*httptest.Server, *route.Holder) {
	t.Helper()
	src := fmt.Sprintf(`
listen: 127.0.0.1:0
%s
services:
  - name: api
    match: {path_prefix: /}
%s    builds: [{id: "7", state: stable, endpoints: [%s]}]
`, proxySection, yamlExtra, strings.TrimPrefix(upstream.URL, "http://"))
	cfg, err := config.Parse([]byte(src), "t", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	b := &route.Builder{}
	tbl, err := b.Build(cfg, route.StatesFromConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	var h route.Holder
	h.Publish(tbl)
	gw := httptest.NewServer(New(Options{Routes: &h, Config: cfg.Proxy}))
	t.Cleanup(gw.Close)
	return gw, &h
}

func TestForwardingHeaders(t *testing.T) {
	got := make(chan http.Header, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		w.Header().Set("Connection", "X-Secret-Hop")
		w.Header().Set("X-Secret-Hop", "leak")
		w.Header().Set("Keep-Alive", "timeout=5")
	}))
	defer up.Close()
	gw, _ := gateway(t, up, "")
	req, _ := http.NewRequest("GET", gw.URL+"/x", nil)
	req.Header.Set("X-Forwarded-For", "6.6.6.6")     // forged by an untrusted client
	req.Header.Set("Forwarded", "for=6.6.6.6")       // forged too
	req.Header.Set("Connection", "X-Client-Hop")     // hop-by-hop named by Connection
	req.Header.Set("X-Client-Hop", "must not cross") //
	req.Header.Set("X-Request-ID", "req-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-got
	if v := h.Get("X-Forwarded-For"); v != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want only the real peer", v)
	}
	if v := h.Get("Forwarded"); !strings.HasPrefix(v, "for=127.0.0.1;") || strings.Contains(v, "6.6.6.6") {
		t.Errorf("Forwarded = %q", v)
	}
	if h.Get("X-Forwarded-Proto") != "http" || h.Get("X-Forwarded-Host") == "" {
		t.Errorf("proto/host: %q %q", h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-Host"))
	}
	if h.Get("X-Client-Hop") != "" {
		t.Error("a header named in Connection crossed the proxy")
	}
	if h.Get("X-Request-Id") != "req-123" || resp.Header.Get("X-Request-Id") != "req-123" {
		t.Errorf("request id not kept: %q / %q", h.Get("X-Request-Id"), resp.Header.Get("X-Request-Id"))
	}
	if h.Get("X-Canary-Build") != "7" {
		t.Errorf("build header = %q", h.Get("X-Canary-Build"))
	}
	if resp.Header.Get("X-Secret-Hop") != "" || resp.Header.Get("Keep-Alive") != "" {
		t.Error("hop-by-hop response headers reached the client")
	}
}

func TestClientAddrFromTrustedProxy(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct{ remote, xff, want string }{
		{"10.1.1.1:5", "203.0.113.9", "203.0.113.9"},
		{"10.1.1.1:5", "198.51.100.1, 203.0.113.9, 10.2.2.2", "203.0.113.9"},
		{"192.0.2.7:5", "203.0.113.9", "192.0.2.7"}, // untrusted peer: its header is ignored
		{"10.1.1.1:5", "garbage", "10.1.1.1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		r.Header.Set("X-Forwarded-For", tc.xff)
		if got, _ := clientAddr(r, trusted); got.String() != tc.want {
			t.Errorf("clientAddr(%s, %q) = %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
}

func TestStripPrefixAndTrailers(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, r.URL.Path)
		w.Header().Set("X-Checksum", "abc")
	}))
	defer up.Close()
	gw, _ := gateway(t, up, "")
	resp, err := http.Get(gw.URL + "/deep/path?q=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "/deep/path" || resp.Trailer.Get("X-Checksum") != "abc" {
		t.Fatalf("body %q trailer %q", body, resp.Trailer.Get("X-Checksum"))
	}
}

// Server-sent events arrive one by one, not buffered until the end.
func TestSSEStreamsEventByEvent(t *testing.T) {
	next := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	defer up.Close()
	gw, _ := gateway(t, up, "")
	resp, err := http.Get(gw.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	for i := 0; i < 3; i++ {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line != fmt.Sprintf("data: %d\n", i) {
			t.Fatalf("event %d: %q", i, line)
		}
		rd.ReadString('\n')
		next <- struct{}{} // the next event is produced only after this one arrived
	}
}

// A 1 GiB upload streams through with bounded memory.
func TestLargeUploadStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB upload: skipped with -short")
	}
	if raceEnabled {
		t.Skip("1 GiB upload: too slow under -race; make test runs it without the race detector")
	}
	const size = 1 << 30
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d %s", n, hex.EncodeToString(h.Sum(nil)))
	}))
	defer up.Close()
	gw, _ := gateway(t, up, "")
	pr, pw := io.Pipe()
	want := sha256.New()
	go func() {
		buf := make([]byte, 1<<20)
		for i := range buf {
			buf[i] = byte(i)
		}
		for sent := 0; sent < size; sent += len(buf) {
			want.Write(buf)
			if _, err := pw.Write(buf); err != nil {
				return
			}
		}
		pw.Close()
	}()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	stop := make(chan struct{})
	peak := make(chan uint64, 1)
	go func() {
		var max uint64
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > max {
				max = m.HeapInuse
			}
			select {
			case <-stop:
				peak <- max
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	req, _ := http.NewRequest("POST", gw.URL+"/upload", pr)
	req.ContentLength = size
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	close(stop)
	if got := fmt.Sprintf("%d %s", size, hex.EncodeToString(want.Sum(nil))); string(body) != got {
		t.Fatalf("upstream saw %q, want %q", body, got)
	}
	// The client, the gateway and the upstream share this process; all of
	// them stream, so the heap must stay far below the body's size.
	if grew := int64(<-peak) - int64(before.HeapInuse); grew > 64<<20 {
		t.Fatalf("heap grew by %d MiB while streaming 1 GiB", grew>>20)
	}
}

func TestBodyLimit(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer up.Close()
	src := fmt.Sprintf(`
listen: 127.0.0.1:0
proxy: {max_body_bytes: 1000}
services: [{name: api, builds: [{id: "1", state: stable, endpoints: [%s]}]}]
`, strings.TrimPrefix(up.URL, "http://"))
	cfg, _ := config.Parse([]byte(src), "t", func(string) (string, bool) { return "", false })
	tbl, _ := (&route.Builder{}).Build(cfg, route.StatesFromConfig(cfg))
	var h route.Holder
	h.Publish(tbl)
	gw := httptest.NewServer(New(Options{Routes: &h, Config: cfg.Proxy}))
	defer gw.Close()
	resp, err := http.Post(gw.URL+"/", "text/plain", strings.NewReader(strings.Repeat("x", 2000)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	// Chunked, so the length is only known while streaming.
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n%s\r\n0\r\n\r\n", strings.Repeat("y", 2000))
	st, _ := bufio.NewReader(conn).ReadString('\n')
	if !strings.Contains(st, "413") {
		t.Fatalf("chunked over the limit: %q, want 413", st)
	}
}

// Smuggling defences stay the standard library's: a request whose framing
// is ambiguous (Content-Length with a chain of transfer codings) is refused
// before routing.
func TestAmbiguousFramingRefused(t *testing.T) {
	var hits atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer up.Close()
	gw, _ := gateway(t, up, "")
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	st, _ := bufio.NewReader(conn).ReadString('\n')
	if !(strings.Contains(st, " 400 ") || strings.Contains(st, " 501 ")) || hits.Load() != 0 {
		t.Fatalf("got %q with %d upstream hits, want a refusal (400 or 501) and none", st, hits.Load())
	}
}
