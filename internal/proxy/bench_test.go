package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/route"
)

// BenchmarkServePlain measures the proxy's own work for one ordinary
// request on the plain path: ServeHTTP with a discarding ResponseWriter,
// upstream a loopback keep-alive server that answers every request with
// the same 100-byte response (standard parser, nothing else). Its B/op and
// allocs/op are what to compare (they include the upstream's parsing);
// ns/op is mostly loopback wake-up latency, not CPU.
func BenchmarkServePlain(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	const body = `{"service":"bench","build":"1.0.0","status":"ok","items":[1,2,3,4,5],"note":"proxy-bench backend"}` + "\n"
	answer := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n" +
		"Date: Sat, 29 Nov 2026 18:00:00 GMT\r\n\r\n" + body
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_ = req.Body.Close()
					if _, err := io.WriteString(c, answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	src := `
listen: 127.0.0.1:0
services:
  - name: bench
    user: {header: X-User-ID}
    builds:
      - {id: "1", state: stable, endpoints: [` + ln.Addr().String() + `]}
      - {id: "2", state: canary, traffic: 10, endpoints: [` + ln.Addr().String() + `]}
`
	cfg, err := config.Parse([]byte(src), "t", func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	tbl, err := (&route.Builder{}).Build(cfg, route.StatesFromConfig(cfg))
	if err != nil {
		b.Fatal(err)
	}
	var h route.Holder
	h.Publish(tbl)
	p := New(Options{Routes: &h, Config: cfg.Proxy})
	req := httptest.NewRequest("GET", "http://bench.example/api/items?page=2", nil)
	req.RemoteAddr = "192.0.2.7:40000"
	req.Header.Set("User-Agent", "wrk")
	req.Header.Set("Accept", "*/*")
	req.Header.Set("X-User-ID", "user-1234")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		w.status = 0
		p.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
