package client

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"github.com/canaryd/canaryd/internal/api/wire"
)

// Services lists every service with its stable, canary and traffic.
func (c *Client) Services(ctx context.Context) ([]wire.Service, error) {
	var out wire.ServiceList
	err := c.do(ctx, "GET", "/api/v1/services", nil, nil, &out)
	return out.Services, err
}

// Service returns one service with its builds. Its Revision is what
// IfRevision takes.
func (c *Client) Service(ctx context.Context, name string) (wire.Service, error) {
	var out wire.Service
	err := c.do(ctx, "GET", svcPath(name), nil, nil, &out)
	return out, err
}

// BuildFilter selects builds for Builds. The zero value lists every build
// that is not deleted.
type BuildFilter struct {
	Service string
	States  []string // deployed, canary, stable, deleted
}

// Builds lists builds.
func (c *Client) Builds(ctx context.Context, f BuildFilter) ([]wire.Build, error) {
	q := url.Values{}
	if f.Service != "" {
		q.Set("service", f.Service)
	}
	for _, s := range f.States {
		q.Add("state", s)
	}
	var out wire.BuildList
	err := c.do(ctx, "GET", "/api/v1/builds", q, nil, &out)
	return out.Builds, err
}

// Build returns one build with its endpoints.
func (c *Client) Build(ctx context.Context, service, id string) (wire.Build, error) {
	var out wire.Build
	err := c.do(ctx, "GET", svcPath(service, "builds", url.PathEscape(id)), nil, nil, &out)
	return out, err
}

// Register records a build and its endpoints, as a build does at
// start-up. Registering again with the same id and version is harmless.
func (c *Client) Register(ctx context.Context, service string, req wire.RegisterRequest, opts ...Option) (wire.Build, error) {
	var out wire.Build
	err := c.do(ctx, "POST", svcPath(service, "builds"), nil, req, &out, opts...)
	return out, err
}

// Heartbeat keeps an endpoint routable for its TTL. ErrNotFound means the
// endpoint is not registered: register again.
func (c *Client) Heartbeat(ctx context.Context, service, build, endpoint string) error {
	return c.do(ctx, "POST", svcPath(service, "builds", url.PathEscape(build), "heartbeat"), nil, wire.EndpointRequest{Endpoint: endpoint}, nil)
}

// Deregister removes one endpoint of a build.
func (c *Client) Deregister(ctx context.Context, service, build, endpoint string) error {
	return c.do(ctx, "POST", svcPath(service, "builds", url.PathEscape(build), "deregister"), nil, wire.EndpointRequest{Endpoint: endpoint}, nil)
}

// DeleteBuild deletes a deployed build.
func (c *Client) DeleteBuild(ctx context.Context, service, id, reason string, opts ...Option) (wire.Result, error) {
	var q url.Values
	if reason != "" {
		q = url.Values{"reason": {reason}}
	}
	var out wire.Result
	err := c.do(ctx, "DELETE", svcPath(service, "builds", url.PathEscape(id)), q, nil, &out, opts...)
	return out, err
}

// SetStable makes a deployed build the service's first stable build.
func (c *Client) SetStable(ctx context.Context, service, build, reason string, opts ...Option) (wire.Result, error) {
	return c.op(ctx, service, "stable", wire.SetStableRequest{Build: build, Reason: reason}, opts)
}

// StartCanary starts a deployed build as the canary.
func (c *Client) StartCanary(ctx context.Context, service string, req wire.StartCanaryRequest, opts ...Option) (wire.Result, error) {
	return c.op(ctx, service, "canary", req, opts)
}

// SetTraffic moves the canary's share to traffic percent.
func (c *Client) SetTraffic(ctx context.Context, service string, traffic float64, reason string, opts ...Option) (wire.Result, error) {
	return c.op(ctx, service, "traffic", wire.TrafficRequest{Traffic: &traffic, Reason: reason}, opts)
}

// Promote makes the canary stable.
func (c *Client) Promote(ctx context.Context, service, reason string, opts ...Option) (wire.Result, error) {
	return c.op(ctx, service, "promote", wire.ReasonRequest{Reason: reason}, opts)
}

// Rollback sends every user back to stable.
func (c *Client) Rollback(ctx context.Context, service, reason string, opts ...Option) (wire.Result, error) {
	return c.op(ctx, service, "rollback", wire.ReasonRequest{Reason: reason}, opts)
}

// Pause holds the release controller's steps.
func (c *Client) Pause(ctx context.Context, service, reason string, opts ...Option) (wire.Result, error) {
	return c.op(ctx, service, "pause", wire.ReasonRequest{Reason: reason}, opts)
}

// Resume lets the release controller's steps go on.
func (c *Client) Resume(ctx context.Context, service, reason string, opts ...Option) (wire.Result, error) {
	return c.op(ctx, service, "resume", wire.ReasonRequest{Reason: reason}, opts)
}

// FreshCohort moves the cohort window to buckets no earlier canary used.
func (c *Client) FreshCohort(ctx context.Context, service, reason string, opts ...Option) (wire.Result, error) {
	return c.op(ctx, service, "cohort/fresh", wire.ReasonRequest{Reason: reason}, opts)
}

// ResetCohorts forgets earlier canaries' windows.
func (c *Client) ResetCohorts(ctx context.Context, service, reason string, opts ...Option) (wire.Result, error) {
	return c.op(ctx, service, "cohort/reset", wire.ReasonRequest{Reason: reason}, opts)
}

func (c *Client) op(ctx context.Context, service, what string, body any, opts []Option) (wire.Result, error) {
	var out wire.Result
	err := c.do(ctx, "POST", svcPath(service, what), nil, body, &out, opts...)
	return out, err
}

// EventQuery selects a page of events. The zero value asks for the first
// page of every event, oldest first.
type EventQuery struct {
	Service, Build string
	Types          []string
	Since, Until   time.Time
	AfterID        int64
	BeforeID       int64
	Desc           bool // newest first
	Limit          int  // 0: the server's default (100)
}

func (q EventQuery) values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("service", q.Service)
	set("build", q.Build)
	for _, t := range q.Types {
		v.Add("type", t)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.Format(time.RFC3339Nano))
	}
	if q.AfterID > 0 {
		v.Set("after_id", strconv.FormatInt(q.AfterID, 10))
	}
	if q.BeforeID > 0 {
		v.Set("before_id", strconv.FormatInt(q.BeforeID, 10))
	}
	if q.Desc {
		v.Set("order", "desc")
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// Events returns one page of the event log.
func (c *Client) Events(ctx context.Context, q EventQuery) (wire.EventPage, error) {
	var out wire.EventPage
	err := c.do(ctx, "GET", "/api/v1/events", q.values(), nil, &out)
	return out, err
}

// OpenAPI returns the server's OpenAPI document.
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	var raw jsonRaw
	err := c.do(ctx, "GET", "/api/v1/openapi.json", nil, nil, &raw)
	return raw, err
}

type jsonRaw []byte

func (r *jsonRaw) UnmarshalJSON(b []byte) error { *r = append((*r)[:0], b...); return nil }
