package server

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Active checks take a failing replica out of rotation and bring it back
// when it recovers; a build with no endpoint left answers 503 saying why.
func TestHealthChecksEjectAndRecover(t *testing.T) {
	var sick atomic.Bool
	sick.Store(true)
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" && sick.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("a"))
	}))
	defer a.Close()
	b := backend(t, "b")
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	srv, url := start(t, `
listen: 127.0.0.1:0
services:
  - name: api
    match: {path_prefix: /}
    health: {path: /health, interval: 50ms, timeout: 40ms, healthy_threshold: 1, unhealthy_threshold: 1}
    builds: [{id: "1", state: stable, endpoints: [%s, %s]}]
  - name: gone
    match: {path_prefix: /gone}
    health: {path: /health, interval: 50ms, timeout: 40ms, unhealthy_threshold: 1}
    builds: [{id: "9", state: stable, endpoints: [%s]}]
`, addr(a), addr(b), deadAddr)
	_ = srv
	c := &http.Client{Timeout: 5 * time.Second}
	onlyB := func() bool {
		for i := 0; i < 20; i++ {
			if _, body, _ := get(t, c, url+"/x"); body == "a" {
				return false
			}
		}
		return true
	}
	waitFor(t, onlyB)
	sick.Store(false)
	waitFor(t, func() bool {
		for i := 0; i < 20; i++ {
			if _, body, _ := get(t, c, url+"/x"); body == "a" {
				return true
			}
		}
		return false
	})
	waitFor(t, func() bool {
		code, body, _ := get(t, c, url+"/gone")
		return code == 503 && strings.Contains(body, "no healthy endpoint: 0 of 1 endpoints available")
	})
}
