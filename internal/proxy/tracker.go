package proxy

import (
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/canaryd/canaryd/internal/route"
)

// Tracker follows long-lived connections — WebSockets (and other
// upgrades) and server-sent event streams — so that when routing moves a
// user to another build their connection is closed gracefully and the
// client reconnects to the right build: WebSockets get a close frame with
// code 1012 ("service restart") at a frame boundary, event streams end.
// Closes are paced by Rate so the builds are not hit by a reconnect storm.
type Tracker struct {
	mu    sync.Mutex
	conns map[*tracked]struct{}
	// Rate is the most connections closed per second (default 50).
	Rate int
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker { return &Tracker{conns: map[*tracked]struct{}{}} }

// tracked is one long-lived exchange: what routed it and how to end it.
type tracked struct {
	service string
	build   string
	key     string
	client  netip.Addr
	req     *http.Request
	end     func() // asks the connection to close gracefully; idempotent
}

func (t *Tracker) add(c *tracked) {
	t.mu.Lock()
	t.conns[c] = struct{}{}
	t.mu.Unlock()
}

func (t *Tracker) remove(c *tracked) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// Len returns the number of open tracked connections.
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

// Run watches routes and, after each new Table, closes the tracked
// connections whose user the Table sends to another build, at most Rate a
// second. It returns when ctx ends.
func (t *Tracker) Run(ctx context.Context, routes *route.Holder) error {
	rate := t.Rate
	if rate <= 0 {
		rate = 50
	}
	var seen uint64
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var pending []*tracked
	budget := float64(rate)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		budget = min(budget+float64(rate)/10, float64(rate))
		if tbl := routes.Load(); tbl != nil && tbl.Version != seen {
			seen = tbl.Version
			pending = t.moved(tbl)
		}
		for len(pending) > 0 && budget >= 1 {
			pending[0].end()
			pending = pending[1:]
			budget--
		}
	}
}

// moved lists the tracked connections whose user tbl routes elsewhere.
func (t *Tracker) moved(tbl *route.Table) []*tracked {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*tracked
	for c := range t.conns {
		svc := tbl.Service(c.service)
		if svc == nil {
			out = append(out, c)
			continue
		}
		d := svc.Rules.Decide(c.req, c.key, c.client, svc.Canary != nil)
		b := svc.Stable
		if d.Canary {
			b = svc.Canary
		}
		if b == nil || b.ID != c.build {
			out = append(out, c)
		}
	}
	return out
}

// wsConn wraps the upstream side of an upgraded connection. It reads the
// upstream's frames (server to client: unmasked) to know where they end,
// so a requested close can be slipped in between two frames: a close frame
// 1012 to the client, a masked close frame to the upstream, then EOF, which
// makes the proxy close both sides. A reader goroutine feeds Read, so a
// close is delivered even while the upstream is silent.
type wsConn struct {
	io.ReadWriteCloser
	t  *Tracker
	c  *tracked
	ws bool // a WebSocket: frames are parsed; otherwise a close just ends it

	start    sync.Once
	chunks   chan []byte
	readErr  error
	closeReq chan struct{}
	quit     chan struct{} // closed by Close: the pump stops
	once     sync.Once
	quitOnce sync.Once
	pending  []byte
	done     bool
	hdr      []byte // bytes of a frame header read so far
	payload  uint64 // payload bytes of the current frame still to come
}

func newWSConn(rwc io.ReadWriteCloser, t *Tracker, ws bool) *wsConn {
	return &wsConn{ReadWriteCloser: rwc, t: t, ws: ws, chunks: make(chan []byte), closeReq: make(chan struct{}), quit: make(chan struct{})}
}

func (w *wsConn) requestClose() {
	w.once.Do(func() { close(w.closeReq) })
	if !w.ws {
		_ = w.ReadWriteCloser.Close()
	}
}

// pump reads the upstream; Read hands the chunks on.
func (w *wsConn) pump() {
	defer close(w.chunks)
	for {
		buf := make([]byte, 4<<10)
		n, err := w.ReadWriteCloser.Read(buf)
		if n > 0 {
			select {
			case w.chunks <- buf[:n]:
			case <-w.quit:
				return
			}
		}
		if err != nil {
			w.readErr = err
			return
		}
	}
}

// Read passes upstream bytes on, tracking frame boundaries; once a close is
// requested it returns the close frame at the next boundary, then EOF. Only
// the proxy's copying goroutine calls it.
func (w *wsConn) Read(p []byte) (int, error) {
	w.start.Do(func() { go w.pump() })
	for {
		if len(w.pending) > 0 {
			n := copy(p, w.pending)
			w.scan(p[:n])
			w.pending = w.pending[n:]
			return n, nil
		}
		if w.done {
			return 0, io.EOF
		}
		closing := false
		select {
		case <-w.closeReq:
			closing = true
		default:
		}
		if closing && w.ws && w.payload == 0 && len(w.hdr) == 0 {
			w.done = true
			_, _ = w.ReadWriteCloser.Write(closeFrame(true)) // tell the upstream, as a client would
			return copy(p, closeFrame(false)), nil
		}
		wake := w.closeReq
		if closing {
			wake = nil // mid-frame: wait for the frame to end
		}
		select {
		case chunk, ok := <-w.chunks:
			if !ok {
				return 0, w.readErr
			}
			w.pending = chunk
		case <-wake:
		}
	}
}

// scan advances the frame state over b.
func (w *wsConn) scan(b []byte) {
	if !w.ws {
		return
	}
	for len(b) > 0 {
		if w.payload > 0 {
			k := min(uint64(len(b)), w.payload)
			w.payload -= k
			b = b[k:]
			continue
		}
		w.hdr = append(w.hdr, b[0])
		b = b[1:]
		if need := headerLen(w.hdr); need > 0 && len(w.hdr) == need {
			w.payload = payloadLen(w.hdr)
			w.hdr = w.hdr[:0]
		}
	}
}

// headerLen returns the full length of the frame header that starts with
// h, or 0 while too few bytes are known.
func headerLen(h []byte) int {
	if len(h) < 2 {
		return 0
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4
	}
	return n
}

func payloadLen(h []byte) uint64 {
	switch l := h[1] & 0x7f; l {
	case 126:
		return uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		return binary.BigEndian.Uint64(h[2:10])
	default:
		return uint64(l)
	}
}

// closeFrame is a WebSocket close frame with status 1012 ("service
// restart"); masked when sent as a client (to the upstream).
func closeFrame(masked bool) []byte {
	payload := []byte{0x03, 0xf4, 'm', 'o', 'v', 'e', 'd'} // 1012 + reason
	if !masked {
		return append([]byte{0x88, byte(len(payload))}, payload...)
	}
	key := []byte{0x5a, 0xc3, 0x1e, 0x77}
	out := append([]byte{0x88, 0x80 | byte(len(payload))}, key...)
	for i, b := range payload {
		out = append(out, b^key[i%4])
	}
	return out
}

func (w *wsConn) Close() error {
	w.quitOnce.Do(func() { close(w.quit) })
	w.t.remove(w.c)
	return w.ReadWriteCloser.Close()
}
