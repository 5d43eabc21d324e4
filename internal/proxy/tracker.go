package proxy

import (
	"io"
	"sync"
)

// Tracker follows upgraded (WebSocket and other Upgrade) connections, so
// that when routing moves a user to another build their long-lived
// connection can be closed and reconnect to the right build.
type Tracker struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker { return &Tracker{conns: map[*trackedConn]struct{}{}} }

type trackedConn struct {
	io.ReadWriteCloser
	t    *Tracker
	x    *exchange
	once sync.Once
}

func (t *Tracker) track(x *exchange, rwc io.ReadWriteCloser) io.ReadWriteCloser {
	c := &trackedConn{ReadWriteCloser: rwc, t: t, x: x}
	t.mu.Lock()
	t.conns[c] = struct{}{}
	t.mu.Unlock()
	return c
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.t.mu.Lock()
		delete(c.t.conns, c)
		c.t.mu.Unlock()
	})
	return c.ReadWriteCloser.Close()
}

// Len returns the number of open tracked connections.
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}
