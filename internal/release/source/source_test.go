package source

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestExpand(t *testing.T) {
	v := Vars{Service: "api", Build: "42", Interval: 90 * time.Second}
	if got := v.Expand(`rate(x{service="{{service}}",build="{{build}}"}[{{interval}}])`); got != `rate(x{service="api",build="42"}[90s])` {
		t.Errorf("Expand = %s", got)
	}
}

// The query API's answers, served by a real HTTP server.
func TestPrometheusAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
		want       float64
		err        string
		noData     bool
	}{
		{name: "vector", body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"0.25"]}]}}`, want: 0.25},
		{name: "scalar", body: `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3"]}}`, want: 3},
		{name: "empty", body: `{"status":"success","data":{"resultType":"vector","result":[]}}`, err: "empty result", noData: true},
		{name: "NaN", body: `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"NaN"]}}`, err: "NaN", noData: true},
		{name: "two series", body: `{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]},{"value":[1,"2"]}]}}`, err: "2 series; aggregate"},
		{name: "matrix", body: `{"status":"success","data":{"resultType":"matrix","result":[]}}`, err: `result type "matrix"`},
		{name: "bad query", status: 400, body: `{"status":"error","errorType":"bad_data","error":"parse error"}`, err: "HTTP 400"},
		{name: "not json", body: `<html>`, err: "not the query API's JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var query string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				query = r.URL.Query().Get("query")
				if r.URL.Path != "/api/v1/query" {
					http.NotFound(w, r)
					return
				}
				if tc.status != 0 {
					w.WriteHeader(tc.status)
				}
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			p := &Prometheus{Address: srv.URL + "/", Query: `up{build="{{build}}"}`}
			got, err := p.Value(context.Background(), Vars{Service: "api", Build: "7"})
			if query != `up{build="7"}` {
				t.Errorf("query sent %q", query)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || errors.Is(err, ErrNoData) != tc.noData {
					t.Fatalf("err %v, want %q (no data %v)", err, tc.err, tc.noData)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("= %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestHTTPJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0k" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/issues/42":
			_, _ = w.Write([]byte(`{"data":{"new_issues":4}}`))
		default:
			_, _ = w.Write([]byte(`not json`))
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	h := &HTTPJSON{URL: srv.URL + "/issues/{{build}}", Path: "data.new_issues", Headers: map[string]string{"Authorization": "Bearer t0k"}}
	if got, err := h.Value(ctx, Vars{Build: "42"}); err != nil || got != 4 {
		t.Fatalf("= %v, %v", got, err)
	}
	if _, err := h.Value(ctx, Vars{Build: "9"}); err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Fatalf("not json: %v", err)
	}
	noAuth := &HTTPJSON{URL: srv.URL + "/issues/42", Path: "data.new_issues"}
	if _, err := noAuth.Value(ctx, Vars{}); err == nil || !strings.Contains(err.Error(), "HTTP 401: who are you") {
		t.Fatalf("401: %v", err)
	}
}

// Evaluate: the outcome and its numbers, and inconclusive when a source
// cannot answer.
func TestEvaluate(t *testing.T) {
	vals := map[string]float64{"c": 0.9, "s": 0.5}
	src := sourceFunc(func(_ context.Context, v Vars) (float64, error) {
		x, ok := vals[v.Build]
		if !ok {
			return 0, ErrNoData
		}
		return x, nil
	})
	now := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		cond, canary, stable string
		want                 Outcome
		msg                  string
	}{
		{"< 0.8", "c", "s", Fail, "cpu: canary 0.9 is not < 0.8"},
		{"< 1", "c", "s", Pass, "cpu: canary 0.9 < 1 holds"},
		{"<= stable * 2", "c", "s", Pass, "(<= stable * 2 with stable 0.5) holds"},
		{"<= stable + 0.1", "c", "s", Fail, "is not <= 0.6"},
		{"< 1", "x", "s", Inconclusive, "canary x: no data"},
		{"< stable", "c", "x", Inconclusive, "stable x: no data"},
		{"< stable", "c", "", Inconclusive, "no stable build"},
	} {
		cond, err := ParseCondition(tc.cond)
		if err != nil {
			t.Fatal(err)
		}
		r := Check{Name: "cpu", Source: src, Condition: cond}.Evaluate(context.Background(), "api", tc.canary, tc.stable, time.Minute, now)
		if r.Outcome != tc.want || !strings.Contains(r.Message, tc.msg) || !r.At.Equal(now) {
			t.Errorf("%s: %+v; want %s with %q", tc.cond, r, tc.want, tc.msg)
		}
	}
}

type sourceFunc func(context.Context, Vars) (float64, error)

func (f sourceFunc) Value(ctx context.Context, v Vars) (float64, error) { return f(ctx, v) }
