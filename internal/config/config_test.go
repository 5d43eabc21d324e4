package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testEnv(name string) (string, bool) {
	switch name {
	case "TOKEN":
		return "s3cret-token-value", true
	case "CANARYD_ADMIN_TOKEN":
		return "example-admin-token", true
	case "CANARYD_BENCH_DIR":
		return "/tmp", true
	}
	return "", false
}

func TestGoodConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yaml")
	// The examples users copy: the repository's own copies, and the shared
	// originals when the checkout sits beside them.
	examples, _ := filepath.Glob("../../examples/*.yaml")
	if len(examples) < 2 {
		t.Fatalf("examples/*.yaml missing: found %v", examples)
	}
	shared, _ := filepath.Glob("../../../shared/examples/*.yaml")
	files = append(append(files, examples...), shared...)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Parse(data, f, testEnv); err != nil {
				t.Fatalf("want valid, got:\n%v", err)
			}
		})
	}
}

// Each bad file starts with "# error: TEXT"; loading it must fail with an
// error containing TEXT.
func TestBadConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) < 10 {
		t.Fatalf("found only %d bad configs", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(data), "\n")
			want, ok := strings.CutPrefix(first, "# error: ")
			if !ok {
				t.Fatalf("%s: first line must be '# error: TEXT'", f)
			}
			_, err = Parse(data, f, testEnv)
			if err == nil {
				t.Fatalf("want error containing %q, got a valid config", want)
			}
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("want error containing\n  %q\ngot\n  %v", want, err)
			}
		})
	}
}

func TestFullConfigValues(t *testing.T) {
	data, err := os.ReadFile("testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, "full", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Admin.Tokens[0].Value; got != "s3cret-token-value" {
		t.Errorf("expanded token = %q", got)
	}
	if got := c.Admin.Tokens[1].Value; got != "cost$5" {
		t.Errorf("$$ escape: got %q, want cost$5", got)
	}
	s := c.Services[0]
	var order []string
	for _, src := range s.User.Sources {
		order = append(order, src.Kind)
	}
	if strings.Join(order, ",") != "jwt_claim,header,client_address" {
		t.Errorf("user sources in file order: got %v", order)
	}
	if s.User.AnonymousCookie != "sid" {
		t.Errorf("anonymous cookie = %q", s.User.AnonymousCookie)
	}
	if s.Builds[0].Endpoints[1].Weight != 3 || s.Builds[0].Endpoints[0].Weight != 1 {
		t.Errorf("endpoint weights: %+v", s.Builds[0].Endpoints)
	}
	if *s.Builds[1].Traffic != 12.5 {
		t.Errorf("traffic = %v", *s.Builds[1].Traffic)
	}
	if s.Retries.Budget != 10 || s.Retries.StableFallbackOn() {
		t.Errorf("retries: %+v", s.Retries)
	}
	if s.Release.Analysis.MaxErrorRateDelta != 0.5 || s.Release.Analysis.MaxLatencyP99.D() != 800*time.Millisecond {
		t.Errorf("analysis: %+v", s.Release.Analysis)
	}
	if s.Release.AutoPromoteOn() {
		t.Error("auto_promote: false not honoured")
	}
	if len(c.Proxy.TrustedProxies) != 2 || c.Proxy.TrustedProxies[1].String() != "192.168.1.1/32" {
		t.Errorf("trusted proxies: %v", c.Proxy.TrustedProxies)
	}
}

func TestDefaults(t *testing.T) {
	data, _ := os.ReadFile("testdata/minimal.good.yaml")
	c, err := Parse(data, "minimal", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Services[0]
	if s.Routing != RoutingSticky || s.Salt != "api" || s.Match.PathPrefix != "/" || s.Balance != "p2c" {
		t.Errorf("service defaults: %+v", s)
	}
	if len(s.User.Sources) != 1 || s.User.Sources[0].Name != DefaultUserHeader || s.User.AnonymousCookie != DefaultAnonymousCookie {
		t.Errorf("user defaults: %+v", s.User)
	}
	want := []Percent{5, 10, 30, 50, 75, 100}
	for i, st := range s.Release.Steps {
		if st != want[i] {
			t.Fatalf("default steps %v, want %v", s.Release.Steps, want)
		}
	}
	if c.Store != "sqlite://canaryd.db" {
		t.Errorf("store default %q", c.Store)
	}
}

func TestAllProblemsReported(t *testing.T) {
	src := `listen: nope
services:
  - name: "bad name"
    routing: x
    builds: [{id: "1", state: stable, endpoints: [127.0.0.1:1]}]
`
	_, err := Parse([]byte(src), "multi", testEnv)
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"line 1: listen:", "line 3: services[0].name:", "line 4: services[0].routing:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestSplitComment(t *testing.T) {
	for _, tc := range []struct{ in, content string }{
		{"a: b # c", "a: b "},
		{"# all", ""},
		{`a: "x # y" # z`, `a: "x # y" `},
		{`a: 'it''s # x'`, `a: 'it''s # x'`},
		{"a: b#c", "a: b#c"},
	} {
		if got, _ := splitComment(tc.in); got != tc.content {
			t.Errorf("splitComment(%q) content = %q, want %q", tc.in, got, tc.content)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz", testEnv)
		if err == nil && (c == nil || len(c.Services) == 0) {
			t.Fatalf("valid config without services")
		}
	})
}
