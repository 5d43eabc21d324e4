// Package config loads and validates canaryd's YAML configuration.
//
// Load expands ${VAR} from the environment in values (never in comments),
// decodes strictly (unknown fields and wrong types are errors with their
// line), fills defaults and checks every invariant, reporting all problems
// at once. A Config that Load returns is complete and valid: nothing
// downstream needs to check it again.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/canaryd/canaryd/internal/notify"
)

// Defaults that the documentation promises.
const (
	DefaultUserHeader      = "X-User-ID"
	DefaultAnonymousCookie = "canaryd_uid"
	DefaultOverrideHeader  = "X-Canary"
	DefaultBuildHeader     = "X-Canary-Build"
	DefaultRequestIDHeader = "X-Request-ID"
)

// Build states.
const (
	StateDeployed = "deployed"
	StateCanary   = "canary"
	StateStable   = "stable"
)

// Kinds of custom metrics (release.analysis.metrics[].kind).
const (
	MetricThreshold = "threshold"
	MetricGauge     = "gauge"
	MetricCounter   = "counter"
)

// Routing modes.
const (
	RoutingSticky   = "sticky"
	RoutingWeighted = "weighted"
)

// Config is the whole file.
type Config struct {
	// Listen is the data plane's address (host:port).
	Listen string `yaml:"listen"`
	// TLS, when set, serves the data plane over TLS (HTTP/2 negotiated).
	TLS *TLS `yaml:"tls"`
	// H2C accepts cleartext HTTP/2 (prior knowledge) on the data plane.
	H2C   bool  `yaml:"h2c"`
	Admin Admin `yaml:"admin"`
	// Store is sqlite://PATH (default sqlite://canaryd.db) or postgres://...
	Store     string    `yaml:"store"`
	Proxy     Proxy     `yaml:"proxy"`
	AccessLog AccessLog `yaml:"access_log"`
	Services  []Service `yaml:"services"`
	// Alerts configures alert channels and alert-only monitoring.
	Alerts Alerts `yaml:"alerts"`
}

// TLS names the certificate and key files; they are reloaded when they change.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Admin configures the admin listener (API, UI, /metrics, /healthz).
type Admin struct {
	Listen string  `yaml:"listen"`
	Tokens []Token `yaml:"tokens"`
	// MetricsAuth requires a token for /metrics too.
	MetricsAuth bool `yaml:"metrics_auth"`
}

// Token is one bearer token of the admin API.
type Token struct {
	Name  string `yaml:"name"`
	Role  string `yaml:"role"` // admin | viewer
	Value string `yaml:"value"`
}

// String never shows the token's value.
func (t Token) String() string { return fmt.Sprintf("%s (%s)", t.Name, t.Role) }

// Proxy holds the data plane's limits and timeouts.
type Proxy struct {
	DialTimeout           Duration `yaml:"dial_timeout"`            // default 5s
	ResponseHeaderTimeout Duration `yaml:"response_header_timeout"` // default 60s
	IdleTimeout           Duration `yaml:"idle_timeout"`            // client keep-alive; default 120s
	ReadHeaderTimeout     Duration `yaml:"read_header_timeout"`     // default 10s
	UpstreamIdleTimeout   Duration `yaml:"upstream_idle_timeout"`   // default 90s
	MaxIdlePerEndpoint    int      `yaml:"max_idle_per_endpoint"`   // default 512
	MaxHeaderBytes        int      `yaml:"max_header_bytes"`        // default 64 KiB
	MaxBodyBytes          int64    `yaml:"max_body_bytes"`          // 0: unlimited
	ShutdownTimeout       Duration `yaml:"shutdown_timeout"`        // default 30s
	// TrustedProxies may set X-Forwarded-For / Forwarded; others' are replaced.
	TrustedProxies  CIDRs  `yaml:"trusted_proxies"`
	RequestIDHeader string `yaml:"request_id_header"` // default X-Request-ID
	// MoveRate bounds how many long-lived connections per second are closed
	// when their user's build changes (default 50).
	MoveRate int `yaml:"move_rate"`
}

// AccessLog configures the JSON access log. Path is "stdout", "stderr" or a
// file; empty disables it.
type AccessLog struct {
	Path string `yaml:"path"`
}

// Service is one application behind the gateway.
type Service struct {
	Name    string `yaml:"name"`
	Match   Match  `yaml:"match"`
	User    User   `yaml:"user"`
	Routing string `yaml:"routing"` // sticky (default) | weighted
	// Salt seeds the user bucket hash; default the service name. Changing it
	// reshuffles every user.
	Salt      string      `yaml:"salt"`
	Segment   []Condition `yaml:"segment"`
	Overrides Overrides   `yaml:"overrides"`
	// BuildHeader carries the chosen build id to the upstream.
	BuildHeader string `yaml:"build_header"`
	// ExposeBuild also sets BuildHeader on the response.
	ExposeBuild bool    `yaml:"expose_build"`
	Balance     string  `yaml:"balance"` // p2c (default) | round_robin | least_conn
	Health      Health  `yaml:"health"`
	Retries     Retries `yaml:"retries"`
	Builds      []Build `yaml:"builds"`
	Release     Release `yaml:"release"`
}

// Match selects the requests of a service.
type Match struct {
	Host        string `yaml:"host"`        // optional; exact, case-insensitive, port ignored
	PathPrefix  string `yaml:"path_prefix"` // default "/"
	StripPrefix bool   `yaml:"strip_prefix"`
}

// Condition is one rule of a segment; all rules of a segment must hold for a
// user to be eligible for the canary. Exactly one subject (header, claim,
// cookie, path_prefix, networks) is set; header and claim take one test.
type Condition struct {
	Header     string `yaml:"header"`
	Claim      string `yaml:"claim"`
	Cookie     string `yaml:"cookie"` // present
	PathPrefix string `yaml:"path_prefix"`
	Networks   CIDRs  `yaml:"networks"`
	Equals     string `yaml:"equals"`
	Matches    string `yaml:"matches"`     // regular expression
	VersionGTE string `yaml:"version_gte"` // dotted numeric version
}

// Overrides are evaluated before the cohort.
type Overrides struct {
	// Header names the override header (values always|never); default X-Canary.
	Header        string `yaml:"header"`
	DisableHeader bool   `yaml:"disable_header"`
	// TrustedNetworks, when set, limits the header to these client networks.
	TrustedNetworks CIDRs    `yaml:"trusted_networks"`
	Allow           []string `yaml:"allow"` // user keys that always get the canary
	Deny            []string `yaml:"deny"`  // user keys that never do
}

// Health configures active and passive health checks.
type Health struct {
	Path               string   `yaml:"path"` // empty: no active checks
	Interval           Duration `yaml:"interval"`
	Timeout            Duration `yaml:"timeout"`
	HealthyThreshold   int      `yaml:"healthy_threshold"`
	UnhealthyThreshold int      `yaml:"unhealthy_threshold"`
	MaxFails           int      `yaml:"max_fails"`    // passive: consecutive failures that eject
	FailTimeout        Duration `yaml:"fail_timeout"` // passive: first ejection's length
}

// Retries bounds retrying.
type Retries struct {
	Attempts int     `yaml:"attempts"` // total tries of an idempotent request; default 2
	Budget   Percent `yaml:"budget"`   // retries as % of requests; default 20%
	// StableFallback retries an idempotent request that failed on the canary
	// once on stable. Default true.
	StableFallback *bool `yaml:"stable_fallback"`
}

// Build is a static build.
type Build struct {
	ID        string            `yaml:"id"`
	Version   string            `yaml:"version"`
	State     string            `yaml:"state"` // deployed (default) | canary | stable
	Traffic   *Percent          `yaml:"traffic"`
	Endpoints []Endpoint        `yaml:"endpoints"`
	Labels    map[string]string `yaml:"labels"`
	Changelog string            `yaml:"changelog"`
}

// Release is the release policy of a service.
type Release struct {
	Steps        []Percent `yaml:"steps"`
	StepDuration Duration  `yaml:"step_duration"` // minimum bake time per step
	// MaxStepDuration ends a step that is still inconclusive; default 5 ×
	// step_duration. What happens then is OnInconclusive.
	MaxStepDuration Duration `yaml:"max_step_duration"`
	// OnInconclusive is "pause" (default: wait for a person) or "rollback".
	OnInconclusive string   `yaml:"on_inconclusive"`
	Analysis       Analysis `yaml:"analysis"`
	AutoPromote    *bool    `yaml:"auto_promote"`
	// Controller turns the automatic release controller off for the
	// service when false (operators move traffic by hand). Default true.
	Controller *bool `yaml:"controller"`
	// ManualGates are step percentages (each one of Steps) where the
	// release, once the step has passed its analysis, waits for a person
	// to approve (canaryctl approve) before it goes on.
	ManualGates []Percent `yaml:"manual_gates"`
	// Gates are webhooks asked before the first step, before each later
	// step, before promotion, and told after a rollback.
	Gates []Gate `yaml:"gates"`
	// LoadTest, when set, sends synthetic traffic through the gateway
	// during each step, so a service with little traffic still gives the
	// judge enough samples.
	LoadTest *LoadTest `yaml:"load_test"`
}

// LoadTest is the load-test gate of a release: open-loop requests at Rate
// per second, through the gateway's own listener, made by Users synthetic
// users, while a step is being judged (see docs/releases.md).
type LoadTest struct {
	// Rate is requests per second (all builds together; the router
	// splits them like real traffic).
	Rate float64 `yaml:"rate"`
	// Users is the number of synthetic users; their keys go in
	// UserHeader so sticky routing spreads them over the cohort.
	Users int `yaml:"users"`
	// UserHeader defaults to the service's first user header source.
	UserHeader string `yaml:"user_header"`
	// Method, Path (default the service's path_prefix), Headers and Body
	// shape every request.
	Method  string            `yaml:"method"`
	Path    string            `yaml:"path"`
	Headers map[string]string `yaml:"headers"`
	Body    string            `yaml:"body"`
	// Concurrency caps the requests in flight; a request due beyond it is
	// dropped, not queued.
	Concurrency int `yaml:"concurrency"`
	// Timeout bounds one request.
	Timeout Duration `yaml:"timeout"`
	// MaxRequests bounds the requests of one step; default rate ×
	// max_step_duration.
	MaxRequests int `yaml:"max_requests"`
	// Target is the gateway's base URL as the load test reaches it;
	// default its own data-plane listener.
	Target string `yaml:"target"`
}

// Gate is one webhook gate of a release (see docs/releases.md).
type Gate struct {
	Name string `yaml:"name"`
	// URL receives a signed JSON POST; {{service}}, {{build}} and
	// {{interval}} are replaced.
	URL string `yaml:"url"`
	// Secret keys the X-Canaryd-Signature HMAC; empty sends unsigned
	// requests.
	Secret notify.Secret `yaml:"secret"`
	// At lists the points where the gate is called: before_start,
	// before_step, before_promote, after_rollback. Empty means all.
	At []string `yaml:"at"`
	// OnDeny is what a "no" (or an unreachable gate) does: pause
	// (default) or rollback.
	OnDeny  string   `yaml:"on_deny"`
	Timeout Duration `yaml:"timeout"` // default 10s
}

// Metric is a custom metric check of the analysis: one number from
// Prometheus or an HTTP JSON endpoint, held to Condition every Interval.
type Metric struct {
	Name string `yaml:"name"`
	// Kind says how the values are judged: MetricThreshold (each
	// evaluation on its own, FailureLimit in a row fail), MetricGauge or
	// MetricCounter (evidence accumulated over the release in an
	// e-process, so repeated looks keep a bounded false-alarm rate).
	Kind       string           `yaml:"kind"`
	Prometheus *PrometheusQuery `yaml:"prometheus"`
	HTTP       *HTTPCheck       `yaml:"http"`
	// Condition is what the canary's value must satisfy: "< 0.8",
	// ">= 99.5", "<= stable * 1.2", "<= stable + 0.05".
	Condition string `yaml:"condition"`
	// Interval between evaluations; default the analysis interval.
	Interval Duration `yaml:"interval"`
	// Timeout of one evaluation; default 5s.
	Timeout Duration `yaml:"timeout"`
	// FailureLimit is the number of consecutive failed evaluations that
	// fail the release; default 1.
	FailureLimit int `yaml:"failure_limit"`
}

// PrometheusQuery is an instant PromQL query that yields one number;
// {{service}}, {{build}} and {{interval}} are replaced.
type PrometheusQuery struct {
	Address string            `yaml:"address"` // e.g. http://127.0.0.1:9090
	Query   string            `yaml:"query"`
	Headers map[string]string `yaml:"headers"`
}

// HTTPCheck reads a number at Path of the JSON that URL answers.
type HTTPCheck struct {
	URL     string            `yaml:"url"`
	Path    string            `yaml:"path"` // e.g. data.count or items[0].value
	Headers map[string]string `yaml:"headers"`
}

// Analysis holds the judge's thresholds.
type Analysis struct {
	Interval            Duration `yaml:"interval"`
	MinSamples          int      `yaml:"min_samples"`
	MaxErrors           int      `yaml:"max_errors"`
	MaxErrorRateDelta   Percent  `yaml:"max_error_rate_delta"`
	MaxLatencyP99       Duration `yaml:"max_latency_p99"`
	MaxLatencyDeviation Percent  `yaml:"max_latency_deviation"`
	MaxUsersHarmed      int      `yaml:"max_users_harmed"`
	// WarmUp ignores the first seconds after a canary starts.
	WarmUp Duration `yaml:"warm_up"`
	// Metrics are custom metric checks (Prometheus, HTTP JSON).
	Metrics []Metric `yaml:"metrics"`
}

// LookupEnv finds an environment variable; os.LookupEnv in production.
type LookupEnv func(string) (string, bool)

// Load reads, expands, decodes and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path, os.LookupEnv)
}

// Parse is Load for bytes already read; name prefixes error messages.
func Parse(data []byte, name string, env LookupEnv) (*Config, error) {
	expanded, err := expand(data, env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(expanded, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", name, cleanYAMLError(err))
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, errEOF) || strings.Contains(err.Error(), "EOF") {
			return nil, fmt.Errorf("%s: the file is empty", name)
		}
		return nil, fmt.Errorf("%s: %w", name, cleanYAMLError(err))
	}
	c.applyDefaults()
	if err := c.validate(newLines(&root)); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &c, nil
}

var errEOF = errors.New("EOF")

// cleanYAMLError strips the library's "yaml: " prefix and its Go type names,
// which mean nothing to a user.
func cleanYAMLError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
	msg = strings.ReplaceAll(msg, " in type config.", " in ")
	msg = strings.ReplaceAll(msg, "into config.", "into ")
	msg = strings.ReplaceAll(msg, " in type notify.", " in ")
	return errors.New(msg)
}

// StableFallbackOn reports whether the safety net is enabled.
func (r Retries) StableFallbackOn() bool { return r.StableFallback == nil || *r.StableFallback }

// AutoPromoteOn reports whether a passing release promotes by itself.
func (r Release) AutoPromoteOn() bool { return r.AutoPromote == nil || *r.AutoPromote }

// ControllerOn reports whether the release controller drives the service.
func (r Release) ControllerOn() bool { return r.Controller == nil || *r.Controller }
