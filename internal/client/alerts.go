package client

import (
	"context"
	"net/url"
	"strconv"

	"github.com/canaryd/canaryd/internal/api/wire"
)

// AlertChannels lists the alert channels: the config file's first, then
// those added at run time. Secrets come back masked.
func (c *Client) AlertChannels(ctx context.Context) ([]wire.AlertChannel, error) {
	var out wire.AlertChannelList
	err := c.do(ctx, "GET", "/api/v1/alerts/channels", nil, nil, &out)
	return out.Channels, err
}

// AddAlertChannel adds a channel at run time. The request carries its
// secrets in clear; the answer has them masked. ErrConflict: the name is
// taken (a file channel is read-only), or the server has no
// alerts.secret_key (the message says which).
func (c *Client) AddAlertChannel(ctx context.Context, req wire.AddAlertChannelRequest, opts ...Option) (wire.AlertChannel, error) {
	var out wire.AlertChannel
	err := c.do(ctx, "POST", "/api/v1/alerts/channels", nil, req, &out, opts...)
	return out, err
}

// RemoveAlertChannel removes a channel added at run time. ErrNotFound: no
// such channel; ErrConflict: the channel is declared in the config file.
func (c *Client) RemoveAlertChannel(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/api/v1/alerts/channels/"+url.PathEscape(name), nil, nil, nil)
}

// TestAlerts sends a test message to channel, or to every active channel
// when channel is "", and returns each provider's answer. A channel that
// failed is a result with OK false, not an error.
func (c *Client) TestAlerts(ctx context.Context, channel string) (wire.AlertTestReport, error) {
	var out wire.AlertTestReport
	err := c.do(ctx, "POST", "/api/v1/alerts/test", nil, wire.AlertTestRequest{Channel: channel}, &out)
	return out, err
}

// DeadAlerts lists alerts that could not be delivered, newest first.
// limit ≤ 0 means the server's default.
func (c *Client) DeadAlerts(ctx context.Context, limit int) ([]wire.DeadAlert, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out wire.DeadAlertList
	err := c.do(ctx, "GET", "/api/v1/alerts/dead", q, nil, &out)
	return out.Alerts, err
}

// ReplayAlert makes a dead alert pending again. ErrNotFound: no such
// alert; ErrConflict: it is not dead.
func (c *Client) ReplayAlert(ctx context.Context, id int64) error {
	return c.do(ctx, "POST", "/api/v1/alerts/dead/"+strconv.FormatInt(id, 10)+"/replay", nil, nil, nil)
}
