package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// upstream is the RoundTripper the proxy sends to builds with. Plain
// requests without a body — most traffic — are written and their response
// read in the calling goroutine on a pooled keep-alive connection, with the
// standard library's own writer (Request.Write) and parser
// (http.ReadResponse). net/http's Transport does the same work through two
// goroutines per connection and channel hand-offs; profiling the proxy under
// load showed that hand-off as its largest cost after the syscalls
// themselves. Anything else — bodies, upgrades, HTTPS — goes through the
// Transport.
type upstream struct {
	fallback       http.RoundTripper
	dialer         *net.Dialer
	headerTimeout  time.Duration
	idleTimeout    time.Duration
	maxIdlePerHost int

	mu   sync.Mutex
	idle map[string][]*upConn // LIFO per address: the warmest connection first
}

// upConn is one keep-alive connection to an endpoint.
type upConn struct {
	net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
	// writeDeadline is the write deadline set on the connection, so an
	// unchanged one is not set again.
	writeDeadline time.Time
}

func newUpstream(fallback http.RoundTripper, dial *net.Dialer, headerTimeout, idleTimeout time.Duration, maxIdle int) *upstream {
	return &upstream{fallback: fallback, dialer: dial, headerTimeout: headerTimeout, idleTimeout: idleTimeout,
		maxIdlePerHost: maxIdle, idle: map[string][]*upConn{}}
}

// simple reports whether req can take the direct path.
func simple(req *http.Request) bool {
	return req.URL.Scheme == "http" && (req.Body == nil || req.Body == http.NoBody) &&
		req.Header.Get("Upgrade") == "" && req.Header.Get("Expect") == ""
}

func (u *upstream) RoundTrip(req *http.Request) (*http.Response, error) {
	if !simple(req) {
		return u.fallback.RoundTrip(req)
	}
	addr := req.URL.Host
	c, reused, err := u.get(req.Context(), addr)
	if err != nil {
		return nil, err
	}
	resp, stop, err := u.exchange(c, req)
	if err != nil && reused && staleConn(err) {
		// A keep-alive connection the endpoint had closed while idle: the
		// request never reached it, so sending it again is safe.
		c.Close()
		if c, err = u.dial(req.Context(), addr); err != nil {
			return nil, err
		}
		resp, stop, err = u.exchange(c, req)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	resp.Body = &pooledBody{rc: resp.Body, c: c, u: u, addr: addr, keep: !resp.Close && !req.Close, stop: stop}
	return resp, nil
}

// exchange writes req and reads the response head on c. Until stop is
// called, the end of req's context interrupts any read on c, so a client
// that goes away (or a stream the tracker ends) stops the body too.
func (u *upstream) exchange(c *upConn, req *http.Request) (resp *http.Response, stop func() bool, err error) {
	if d, _ := req.Context().Deadline(); d != c.writeDeadline { // usually none, as before
		_ = c.SetWriteDeadline(d)
		c.writeDeadline = d
	}
	if err := req.Write(c.bw); err != nil {
		return nil, nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, nil, err
	}
	detach := context.AfterFunc(req.Context(), func() { _ = c.SetReadDeadline(time.Unix(1, 0)) })
	defer func() {
		if err != nil {
			detach()
		}
	}()
	if u.headerTimeout > 0 {
		_ = c.SetReadDeadline(time.Now().Add(u.headerTimeout))
	}
	for {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			if req.Context().Err() != nil {
				return nil, nil, req.Context().Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, nil, errHeaderTimeout
			}
			return nil, nil, err
		}
		// Informational answers (100, 103) are not forwarded on this path;
		// the final answer follows on the same connection.
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		if !buffered(resp, c.br) {
			// The body is read from the connection: no header timeout
			// (the next exchange sets a new one anyway).
			_ = c.SetReadDeadline(time.Time{})
		}
		if req.Context().Err() != nil {
			return nil, nil, req.Context().Err()
		}
		return resp, detach, nil
	}
}

// buffered reports whether resp's body, if any, is already all in br.
func buffered(resp *http.Response, br *bufio.Reader) bool {
	return resp.Body == http.NoBody || resp.ContentLength >= 0 && int64(br.Buffered()) >= resp.ContentLength
}

var errHeaderTimeout = &timeoutError{"timeout awaiting response headers"}

type timeoutError struct{ msg string }

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

// staleConn reports an error that shows the connection was dead before the
// request was sent or read.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (u *upstream) get(ctx context.Context, addr string) (*upConn, bool, error) {
	now := time.Now()
	u.mu.Lock()
	for {
		list := u.idle[addr]
		if len(list) == 0 {
			break
		}
		c := list[len(list)-1]
		list[len(list)-1] = nil
		u.idle[addr] = list[:len(list)-1]
		if u.idleTimeout > 0 && now.Sub(c.lastUsed) > u.idleTimeout {
			u.mu.Unlock()
			c.Close()
			u.mu.Lock()
			continue
		}
		u.mu.Unlock()
		return c, true, nil
	}
	u.mu.Unlock()
	c, err := u.dial(ctx, addr)
	return c, false, err
}

func (u *upstream) dial(ctx context.Context, addr string) (*upConn, error) {
	nc, err := u.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &upConn{Conn: nc, br: bufio.NewReaderSize(nc, 4<<10), bw: bufio.NewWriterSize(nc, 4<<10)}, nil
}

func (u *upstream) put(addr string, c *upConn) {
	c.lastUsed = time.Now()
	u.mu.Lock()
	if len(u.idle[addr]) < u.maxIdlePerHost {
		u.idle[addr] = append(u.idle[addr], c)
		u.mu.Unlock()
		return
	}
	u.mu.Unlock()
	c.Close()
}

// CloseIdleConnections closes every idle connection.
func (u *upstream) CloseIdleConnections() {
	u.mu.Lock()
	idle := u.idle
	u.idle = map[string][]*upConn{}
	u.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.Close()
		}
	}
	if ci, ok := u.fallback.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// pooledBody returns its connection to the pool once the body was read to
// its end, so the next request reuses it; a body closed early closes it.
type pooledBody struct {
	rc   io.ReadCloser
	c    *upConn
	u    *upstream
	addr string
	keep bool
	eof  bool
	done bool
	stop func() bool // detaches the context; false if it already fired
}

func (b *pooledBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *pooledBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	err := b.rc.Close()
	if b.stop() && b.eof && b.keep && b.c.br.Buffered() == 0 {
		b.u.put(b.addr, b.c)
	} else {
		b.c.Close()
	}
	return err
}
