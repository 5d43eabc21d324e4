package api

import (
	"errors"
	"net/http"
	"testing"

	"github.com/canaryd/canaryd/internal/api/wire"
)

// decode never panics, and every failure is a 400 the client can read.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"build":"42","traffic":5}`, `{"traffic":"x"}`, `{"x":1}`, `[`, ``, `{} {}`, `{"replace":1e400}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req wire.StartCanaryRequest
		err := decode(body, &req, false)
		if err == nil {
			return
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.status != http.StatusBadRequest || ae.msg == "" {
			t.Fatalf("decode(%q) = %v; want a 400 apiError", body, err)
		}
	})
}
