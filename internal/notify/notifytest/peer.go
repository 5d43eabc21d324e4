// Package notifytest runs real peers on 127.0.0.1 for the notification
// tests: HTTP servers that implement the documented Slack incoming-webhook
// and Telegram Bot API contracts, a signed-webhook receiver, and a real
// SMTP server (github.com/emersion/go-smtp) with STARTTLS and AUTH PLAIN.
// Each records what it received and can be switched down (its port refuses
// connections) and up again on the same address, to test outages. It also
// has a manual Clock.
//
// The peers are test helpers: they take a testing.TB, stop themselves in
// t.Cleanup, and fail the test on setup errors.
package notifytest

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// httpPeer is an HTTP server on a fixed 127.0.0.1 address that can be taken
// down (listener and open connections closed, so clients get "connection
// refused") and brought back on the same port.
type httpPeer struct {
	t       testing.TB
	handler http.Handler
	addr    string

	mu  sync.Mutex
	srv *http.Server
}

func startHTTP(t testing.TB, h http.Handler) *httpPeer {
	t.Helper()
	p := &httpPeer{t: t, handler: h}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("notifytest: listen: %v", err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Down)
	return p
}

func (p *httpPeer) serve(ln net.Listener) {
	srv := &http.Server{Handler: p.handler, ReadHeaderTimeout: 5 * time.Second}
	p.srv = srv
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.t.Logf("notifytest: serve %s: %v", p.addr, err)
		}
	}()
}

// URL is the peer's base URL, "http://127.0.0.1:PORT".
func (p *httpPeer) URL() string { return "http://" + p.addr }

// Down closes the listener and every open connection; until Up, connecting
// to the peer fails with "connection refused". Idempotent.
func (p *httpPeer) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		p.srv.Close()
		p.srv = nil
	}
}

// Up listens again on the same address. Idempotent.
func (p *httpPeer) Up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		return
	}
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger for a moment after Close
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("notifytest: relisten %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// Clock is a manual clock for tests: Now returns the set time until
// Advance moves it. Safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock set to start.
func NewClock(start time.Time) *Clock { return &Clock{t: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// failure is a canned answer queued with Fail.
type failure struct {
	status     int
	body       string
	retryAfter string
}

// failQueue hands out queued failures in order.
type failQueue struct {
	mu sync.Mutex
	q  []failure
}

func (f *failQueue) push(n int, fl failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.q = append(f.q, fl)
	}
}

func (f *failQueue) pop() (failure, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.q) == 0 {
		return failure{}, false
	}
	fl := f.q[0]
	f.q = f.q[1:]
	return fl, true
}
