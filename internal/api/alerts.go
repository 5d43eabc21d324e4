package api

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/alerting"
	"github.com/canaryd/canaryd/internal/api/wire"
	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/notify"
	"github.com/canaryd/canaryd/internal/store"
)

// Alerts is what the alert routes need of the alerting service
// (*alerting.Service). Channels it returns carry their secrets as
// notify.Secret, which print masked; the handlers copy only masked forms
// into answers.
type Alerts interface {
	ListChannels(ctx context.Context) ([]alerting.ChannelInfo, error)
	AddChannel(ctx context.Context, cfg notify.ChannelConfig) (alerting.ChannelInfo, error)
	RemoveChannel(ctx context.Context, name string) error
	Test(ctx context.Context, name string) []notify.TestResult
	Dead(ctx context.Context, limit int) ([]notify.Delivery, error)
	Replay(ctx context.Context, id int64) error
}

var _ Alerts = (*alerting.Service)(nil)

// errNoAlerting answers alert routes when the server runs without an
// alerting service.
var errNoAlerting = &apiError{status: 503, msg: "this server runs no alerting service"}

// channelName is notify's rule for channel names.
var channelName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func checkChannel(field, v string) error {
	if !channelName.MatchString(v) {
		return badRequest(field, fmt.Sprintf("%q is not a channel name (1 to 63 of a-z, 0-9, '-', '_', starting with a letter or digit)", v))
	}
	return nil
}

func (a *api) listAlertChannels(c *call) (any, error) {
	if a.alerts == nil {
		return nil, errNoAlerting
	}
	chs, err := a.alerts.ListChannels(c.r.Context())
	if err != nil {
		return nil, err
	}
	out := wire.AlertChannelList{Channels: []wire.AlertChannel{}}
	for _, ch := range chs {
		out.Channels = append(out.Channels, alertChannelOf(ch))
	}
	return out, nil
}

func (a *api) addAlertChannel(c *call) (any, error) {
	if a.alerts == nil {
		return nil, errNoAlerting
	}
	var req wire.AddAlertChannelRequest
	if err := decode(c.body, &req, false); err != nil {
		return nil, err
	}
	cfg, err := channelConfigOf(req)
	if err != nil {
		return nil, err
	}
	ctx := c.r.Context()
	chs, err := a.alerts.ListChannels(ctx)
	if err != nil {
		return nil, err
	}
	// Said here rather than by the store's conflict, whose text suggests a
	// concurrent change.
	if i := slices.IndexFunc(chs, func(ch alerting.ChannelInfo) bool { return ch.Name == cfg.Name }); i >= 0 && chs[i].Source == alerting.SourceStore {
		return nil, &apiError{status: 409, field: "name",
			msg: fmt.Sprintf("a channel named %q exists already: remove it first (DELETE %s/alerts/channels/%s) or choose another name", cfg.Name, Prefix, cfg.Name)}
	}
	ch, err := a.alerts.AddChannel(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return alertChannelOf(ch), nil
}

func (a *api) removeAlertChannel(c *call) (any, error) {
	if a.alerts == nil {
		return nil, errNoAlerting
	}
	name := c.path("name")
	if err := checkChannel("name", name); err != nil {
		return nil, err
	}
	if err := a.alerts.RemoveChannel(c.r.Context(), name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, &apiError{status: 404, field: "name", msg: fmt.Sprintf("no channel %q was added at run time", name)}
		}
		return nil, err
	}
	return wire.Empty{OK: true}, nil
}

func (a *api) testAlerts(c *call) (any, error) {
	if a.alerts == nil {
		return nil, errNoAlerting
	}
	var req wire.AlertTestRequest
	if err := decode(c.body, &req, true); err != nil {
		return nil, err
	}
	if req.Channel != "" {
		if err := checkChannel("channel", req.Channel); err != nil {
			return nil, err
		}
	}
	out := wire.AlertTestReport{OK: true, Results: []wire.AlertTestResult{}}
	for _, r := range a.alerts.Test(c.r.Context(), req.Channel) {
		out.OK = out.OK && r.OK
		out.Results = append(out.Results, wire.AlertTestResult{Channel: r.Channel, OK: r.OK, Error: r.Error,
			Took: r.Took.Round(time.Millisecond).String()})
	}
	if len(out.Results) == 0 {
		out.OK = false
	}
	return out, nil
}

func (a *api) listDeadAlerts(c *call) (any, error) {
	if a.alerts == nil {
		return nil, errNoAlerting
	}
	limit := 0
	if v := c.r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxPageSize {
			return nil, badRequest("limit", fmt.Sprintf("%q is not a page size from 1 to %d", v, store.MaxPageSize))
		}
		limit = n
	}
	ds, err := a.alerts.Dead(c.r.Context(), limit)
	if err != nil {
		return nil, err
	}
	out := wire.DeadAlertList{Alerts: []wire.DeadAlert{}}
	for _, d := range ds {
		m := d.Message
		out.Alerts = append(out.Alerts, wire.DeadAlert{ID: d.ID, Channel: d.Channel, Service: m.Service, Type: string(m.Type),
			Severity: string(m.Severity), Title: m.Title, Count: d.Count, Attempts: d.Attempts,
			FirstSeen: d.FirstSeen, LastSeen: d.LastSeen, LastError: d.LastError, DeadAt: d.DoneAt})
	}
	return out, nil
}

func (a *api) replayAlert(c *call) (any, error) {
	if a.alerts == nil {
		return nil, errNoAlerting
	}
	v := c.path("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return nil, badRequest("id", fmt.Sprintf("%q is not an alert id (a positive integer, see GET %s/alerts/dead)", v, Prefix))
	}
	if err := a.alerts.Replay(c.r.Context(), id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, &apiError{status: 404, field: "id", msg: fmt.Sprintf("no alert %d", id)}
		}
		if errors.Is(err, store.ErrConflict) {
			return nil, &apiError{status: 409, field: "id", msg: fmt.Sprintf("alert %d is not dead: only dead alerts can be replayed", id)}
		}
		return nil, err
	}
	return wire.Empty{OK: true}, nil
}

// ---- conversions ----

// channelConfigOf checks a request and turns it into the notify shape;
// notify's Validate (in AddChannel) checks the provider fields.
func channelConfigOf(req wire.AddAlertChannelRequest) (notify.ChannelConfig, error) {
	if req.Kind == "" {
		return notify.ChannelConfig{}, badRequest("kind", "is required: slack, telegram, email, webhook or discord")
	}
	if req.Name == "" {
		req.Name = req.Kind
	}
	if err := checkChannel("name", req.Name); err != nil {
		return notify.ChannelConfig{}, err
	}
	s := req.Settings
	for _, f := range []struct{ field, v string }{
		{"settings.url", s.URL}, {"settings.token", s.Token}, {"settings.password", s.Password}, {"settings.secret", s.Secret},
	} {
		// A listing shows secrets masked; sent back, the mask would be
		// stored as the secret.
		if strings.Contains(f.v, "****") {
			return notify.ChannelConfig{}, badRequest(f.field, "looks like a masked value copied from a listing: send the secret itself")
		}
	}
	cfg := notify.ChannelConfig{
		Name: req.Name, Kind: notify.Kind(req.Kind), Disabled: req.Disabled,
		URL: notify.Secret(s.URL), Token: notify.Secret(s.Token), ChatID: s.ChatID, Thread: s.Thread, Threads: s.Threads,
		BaseURL: s.BaseURL, SMTP: s.SMTP, Username: s.Username, Password: notify.Secret(s.Password), From: s.From, To: s.To,
		TLS: s.TLS, Secret: notify.Secret(s.Secret),
		RatePerMinute: req.RatePerMinute, Burst: req.Burst,
	}
	if r := req.Route; r != nil {
		cfg.Route = notify.Route{Services: r.Services, Types: r.Types, MinSeverity: event.Severity(r.MinSeverity)}
	}
	for _, d := range []struct {
		field, v string
		to       *time.Duration
	}{{"throttle", req.Throttle, &cfg.Throttle}, {"timeout", req.Timeout, &cfg.Timeout}} {
		if d.v == "" {
			continue
		}
		v, err := time.ParseDuration(d.v)
		if err != nil {
			return notify.ChannelConfig{}, badRequest(d.field, strconv.Quote(d.v)+` is not a duration (e.g. "10m")`)
		}
		*d.to = v
	}
	return cfg, nil
}

// alertChannelOf renders a channel; every secret goes through
// notify.Secret.String, which masks it.
func alertChannelOf(ch alerting.ChannelInfo) wire.AlertChannel {
	c := ch.Config
	out := wire.AlertChannel{Name: ch.Name, Kind: string(ch.Kind), Source: ch.Source, Active: ch.Active(), Disabled: c.Disabled,
		Error: ch.Error, Target: targetOf(c), Revision: ch.Revision,
		Settings: wire.AlertSettings{URL: c.URL.String(), Token: c.Token.String(), ChatID: c.ChatID, Thread: c.Thread, Threads: c.Threads,
			BaseURL: c.BaseURL, SMTP: c.SMTP, Username: c.Username, Password: c.Password.String(), From: c.From, To: c.To,
			TLS: c.TLS, Secret: c.Secret.String()},
		Route:         wire.AlertRoute{Services: c.Route.Services, Types: c.Route.Types, MinSeverity: string(c.Route.MinSeverity)},
		RatePerMinute: c.RatePerMinute, Burst: c.Burst,
	}
	if c.Throttle != 0 {
		out.Throttle = c.Throttle.String()
	}
	if c.Timeout != 0 {
		out.Timeout = c.Timeout.String()
	}
	return out
}

// targetOf says where a channel delivers, secret-free.
func targetOf(c notify.ChannelConfig) string {
	switch c.Kind {
	case notify.KindTelegram:
		t := "chat " + c.ChatID
		if c.Thread != 0 {
			t += " thread " + strconv.FormatInt(c.Thread, 10)
		}
		return t
	case notify.KindEmail:
		return strings.Join(c.To, ", ") + " via " + c.SMTP
	}
	return c.URL.String()
}
