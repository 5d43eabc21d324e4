package proxy

import (
	"encoding/json"
	"net/http"
	"sync"
)

// statusWriter remembers in x the status the ReverseProxy writes. It
// unwraps to the real ResponseWriter, so http.ResponseController (which the
// ReverseProxy uses to flush and to hijack for upgrades) reaches the
// connection.
type statusWriter struct {
	http.ResponseWriter
	x *exchange
}

func (w *statusWriter) WriteHeader(code int) {
	if w.x.status == 0 || w.x.status < 200 {
		w.x.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.x.status == 0 {
		w.x.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap returns the underlying writer for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush lets code that asserts http.Flusher directly still flush.
func (w *statusWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// bufferPool recycles the ReverseProxy's copy buffers.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *b.get() }
func (b *bufferPool) Put(v []byte) { b.put(&v) }

// get and put spare the plain path Put's allocation of a new pointer.
func (b *bufferPool) get() *[]byte  { return b.p.Get().(*[]byte) }
func (b *bufferPool) put(v *[]byte) { b.p.Put(v) }
