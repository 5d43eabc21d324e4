package source_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/metrics"
	"github.com/canaryd/canaryd/internal/release/source"
)

// prometheusBinary is where Debian's prometheus package installs the
// server.
const prometheusBinary = "/usr/bin/prometheus"

// startPrometheus runs a real Prometheus on 127.0.0.1 that scrapes the
// targets every second, with its config and data in a temporary
// directory, and stops it (by its PID) when t ends. It returns the base
// URL once Prometheus is ready.
func startPrometheus(t *testing.T, targets ...string) string {
	t.Helper()
	bin := prometheusBinary
	if _, err := os.Stat(bin); err != nil {
		if p, err := exec.LookPath("prometheus"); err == nil {
			bin = p
		} else {
			t.Fatalf("%s not found: this test needs a real Prometheus; install the Debian package prometheus (apt-get install -y prometheus)", prometheusBinary)
		}
	}
	dir := t.TempDir()
	var jobs strings.Builder
	for i, target := range targets {
		fmt.Fprintf(&jobs, "  - job_name: target%d\n    static_configs:\n      - targets: ['%s']\n", i, target)
	}
	conf := "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n" + jobs.String()
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("prometheus log:\n%s", b)
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		select {
		case <-done:
			t.Fatalf("prometheus exited before it was ready")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready within 15 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitValue polls a source until it yields a value (the first scrapes).
func waitValue(t *testing.T, src source.Source, v source.Vars, within time.Duration) float64 {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		x, err := src.Value(context.Background(), v)
		if err == nil {
			return x
		}
		if !errors.Is(err, source.ErrNoData) || time.Now().After(deadline) {
			t.Fatalf("no value within %v: %v", within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The Prometheus source against a real Prometheus that scrapes canaryd's
// own /metrics (a metrics.Registry with real counts) and a test exporter:
// a gauge per build, a counter read through rate() over {{interval}}, and
// conditions on the canary alone and against stable.
func TestPrometheusReal(t *testing.T) {
	start := time.Now()
	reg := metrics.New(metrics.Options{NoRuntimeMetrics: true})
	for build, errs := range map[string]int{"1": 1, "2": 10} {
		bm := reg.Build("api", build)
		for i := range 100 {
			status := 200
			if i < errs {
				status = 503
			}
			bm.Begin()
			bm.End(metrics.Outcome{Status: status, Duration: 20 * time.Millisecond})
		}
	}
	canaryd := httptest.NewServer(reg.Handler())
	defer canaryd.Close()
	exporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secs := time.Since(start).Seconds()
		fmt.Fprintf(w, "# TYPE test_cpu_ratio gauge\ntest_cpu_ratio{service=\"api\",build=\"1\"} 0.5\ntest_cpu_ratio{service=\"api\",build=\"2\"} 0.93\n")
		fmt.Fprintf(w, "# TYPE test_jobs_total counter\ntest_jobs_total{service=\"api\",build=\"2\"} %.0f\n", 10*secs)
	}))
	defer exporter.Close()
	base := startPrometheus(t, strings.TrimPrefix(canaryd.URL, "http://"), strings.TrimPrefix(exporter.URL, "http://"))

	ctx := context.Background()
	canary := source.Vars{Service: "api", Build: "2", Interval: 5 * time.Second}
	errRate := &source.Prometheus{Address: base,
		Query: `sum(canaryd_requests_total{service="{{service}}",build="{{build}}",class="5xx"}) / sum(canaryd_requests_total{service="{{service}}",build="{{build}}"})`}
	if got := waitValue(t, errRate, canary, 15*time.Second); got != 0.1 {
		t.Errorf("canary error rate from canaryd's /metrics = %v, want 0.1", got)
	}
	cpu := &source.Prometheus{Address: base, Query: `max(test_cpu_ratio{service="{{service}}",build="{{build}}"})`}
	if got := waitValue(t, cpu, canary, 10*time.Second); got != 0.93 {
		t.Errorf("cpu = %v, want 0.93", got)
	}
	jobs := &source.Prometheus{Address: base, Query: `sum(rate(test_jobs_total{build="{{build}}"}[{{interval}}]))`}
	// The first samples make rate() extrapolate roughly: only its range
	// ({{interval}} filled in) and sign are checked.
	if got := waitValue(t, jobs, canary, 10*time.Second); got <= 0 || got > 20 {
		t.Errorf("rate over {{interval}} = %v, want about 10/s", got)
	}

	for _, tc := range []struct {
		name, cond string
		src        source.Source
		want       source.Outcome
		msg        string
	}{
		{"error rate against stable", "<= stable * 2", errRate, source.Fail, "errors: canary 0.1 is not <= 0.02 (<= stable * 2 with stable 0.01)"},
		{"cpu ceiling", "< 0.8", cpu, source.Fail, "cpu: canary 0.93 is not < 0.8"},
		{"cpu against stable", "<= stable + 0.5", cpu, source.Pass, "cpu: canary 0.93 <= 1 (<= stable + 0.5 with stable 0.5) holds"},
		{"no series for the build", "< 1", &source.Prometheus{Address: base, Query: `max(test_cpu_ratio{build="{{build}}x"})`}, source.Inconclusive, "empty result: no data"},
		{"bad PromQL", "< 1", &source.Prometheus{Address: base, Query: `max(`}, source.Inconclusive, "HTTP 400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cond, err := source.ParseCondition(tc.cond)
			if err != nil {
				t.Fatal(err)
			}
			name, _, _ := strings.Cut(tc.msg, ":")
			r := source.Check{Name: name, Source: tc.src, Condition: cond}.Evaluate(ctx, "api", "2", "1", 5*time.Second, time.Now())
			if r.Outcome != tc.want || !strings.Contains(r.Message, tc.msg) {
				t.Errorf("%+v\nwant %s with %q", r, tc.want, tc.msg)
			}
		})
	}
	// Unreachable Prometheus: inconclusive, never pass.
	dead := &source.Prometheus{Address: "http://" + freeAddr(t), Query: "up"}
	cond, _ := source.ParseCondition("< 1")
	if r := (source.Check{Name: "up", Source: dead, Condition: cond}).Evaluate(ctx, "api", "2", "1", time.Second, time.Now()); r.Outcome != source.Inconclusive || !strings.Contains(r.Message, "unreachable") {
		t.Errorf("unreachable: %+v", r)
	}
	t.Logf("real Prometheus test took %v", time.Since(start).Round(time.Millisecond))
}
