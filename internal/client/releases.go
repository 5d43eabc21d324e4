package client

import (
	"context"
	"net/url"
	"strconv"

	"github.com/canaryd/canaryd/internal/api/wire"
)

// Releases lists release records, newest first: every service's, or one
// service's when service is not "". limit ≤ 0 means the server's default.
func (c *Client) Releases(ctx context.Context, service string, limit int) ([]wire.Release, error) {
	q := url.Values{}
	if service != "" {
		q.Set("service", service)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out wire.ReleaseList
	err := c.do(ctx, "GET", "/api/v1/releases", q, nil, &out)
	return out.Releases, err
}

// Compare returns the live comparison of a service's active release, per
// metric. With no release under way Active is false.
func (c *Client) Compare(ctx context.Context, service string) (wire.Comparison, error) {
	var out wire.Comparison
	err := c.do(ctx, "GET", svcPath(service, "compare"), nil, nil, &out)
	return out, err
}

// Controller says which replica holds the release controller's lease and
// how far each replica has published the active releases' traffic.
func (c *Client) Controller(ctx context.Context) (wire.Controller, error) {
	var out wire.Controller
	err := c.do(ctx, "GET", "/api/v1/controller", nil, nil, &out)
	return out, err
}

// Abort rolls the canary back and closes its release as aborted. The
// reason is required.
func (c *Client) Abort(ctx context.Context, service, reason string, opts ...Option) (wire.Result, error) {
	return c.op(ctx, service, "abort", wire.ReasonRequest{Reason: reason}, opts)
}

// ForcePromote promotes the canary even while the release controller is
// still analysing it, skipping the remaining analysis. The reason is
// required and recorded.
func (c *Client) ForcePromote(ctx context.Context, service, reason string, opts ...Option) (wire.Result, error) {
	return c.op(ctx, service, "promote", wire.PromoteRequest{Reason: reason, Force: true}, opts)
}

// Approve approves the manual gate the service's release is held at.
func (c *Client) Approve(ctx context.Context, service, reason string, opts ...Option) (wire.Result, error) {
	return c.op(ctx, service, "approve", wire.ReasonRequest{Reason: reason}, opts)
}
