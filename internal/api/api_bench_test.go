package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/canaryd/canaryd/internal/api/apitest"
	"github.com/canaryd/canaryd/internal/store/postgres"
)

// benchStores runs f over SQLite and PostgreSQL.
func benchStores(b *testing.B, f func(*testing.B, *apitest.Server)) {
	b.Run("sqlite", func(b *testing.B) { f(b, apitest.New(b, apitest.Options{})) })
	b.Run("postgres", func(b *testing.B) {
		s, err := postgres.Open(b.Context(), pg.Database(b), postgres.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		f(b, apitest.New(b, apitest.Options{Store: s}))
	})
}

// The admin API over HTTP on 127.0.0.1: a read (GET one service with its
// builds) and a write (a traffic change: one transaction with its event,
// then a read of the service). Figures are in docs/api.md.
func BenchmarkGetService(b *testing.B) {
	benchStores(b, func(b *testing.B, srv *apitest.Server) {
		c := srv.Srv.Client()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest("GET", srv.URL+"/api/v1/services/api", nil)
				req.Header.Set("Authorization", "Bearer "+apitest.ViewerToken)
				benchDo(b, c, req)
			}
		})
	})
}

func BenchmarkSetTraffic(b *testing.B) {
	benchStores(b, func(b *testing.B, srv *apitest.Server) {
		c := srv.Srv.Client()
		post := func(path, body string) *http.Request {
			req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+apitest.AdminToken)
			return req
		}
		benchDo(b, c, post("/api/v1/services/api/canary", `{"build":"42","traffic":1}`))
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				benchDo(b, c, post("/api/v1/services/api/traffic", `{"traffic":5}`))
			}
		})
	})
}

func benchDo(b *testing.B, c *http.Client, req *http.Request) {
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("%s %s: %d", req.Method, req.URL.Path, resp.StatusCode)
	}
}
