package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Keep-alive connections are reused; one the endpoint closed while idle is
// replaced transparently, without an error for the client.
func TestUpstreamReusesAndReplacesStaleConnections(t *testing.T) {
	var conns atomic.Int32
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	up.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Config.IdleTimeout = 100 * time.Millisecond
	up.Start()
	defer up.Close()
	gw, _ := gateway(t, up, "")
	c := &http.Client{Timeout: 5 * time.Second}
	get := func() {
		t.Helper()
		resp, err := c.Get(gw.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
	}
	for i := 0; i < 20; i++ {
		get()
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("20 sequential requests used %d upstream connections, want 1", n)
	}
	time.Sleep(300 * time.Millisecond) // the endpoint closes the idle connection
	get()
	if n := conns.Load(); n != 2 {
		t.Fatalf("after the idle close: %d connections, want 2", n)
	}
}

func TestUpstreamHeaderTimeout(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer up.Close()
	gw, _ := gatewayWith(t, up, "proxy: {response_header_timeout: 100ms}", "")
	resp, err := http.Get(gw.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(body), "did not answer in time") {
		t.Fatalf("got %d %s, want 504", resp.StatusCode, body)
	}
}
