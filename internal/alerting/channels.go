package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/canaryd/canaryd/internal/notify"
	"github.com/canaryd/canaryd/internal/store"
)

// Where a channel is declared.
const (
	SourceConfig = "config" // the config file; read-only for the API
	SourceStore  = "store"  // added at run time through the API
)

// ChannelInfo describes one channel for the API and the CLI. Its secrets
// print masked in every form (fmt, JSON, YAML, slog): Config's secret
// fields are notify.Secret.
type ChannelInfo struct {
	Name   string               `json:"name"`
	Kind   notify.Kind          `json:"kind"`
	Source string               `json:"source"`
	Config notify.ChannelConfig `json:"config"`
	// Revision is the store record's revision (SourceStore only).
	Revision int64 `json:"revision,omitempty"`
	// Error says why the channel is not active: a stored channel whose
	// secrets do not open with the configured key, or a name the config
	// file also declares. Empty when active.
	Error string `json:"error,omitempty"`
}

// Active reports whether alerts are delivered to the channel.
func (c ChannelInfo) Active() bool { return c.Error == "" && !c.Config.Disabled }

// reloadChannels rebuilds the channel set from the config and the store
// and hands it to the Dispatcher.
func (s *Service) reloadChannels(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	var recs []store.AlertChannel
	if err := s.st.View(ctx, func(r store.Reader) error {
		var err error
		recs, err = r.ListAlertChannels(ctx)
		return err
	}); err != nil {
		return fmt.Errorf("alerting: list stored channels: %w", err)
	}
	s.mu.Lock()
	cfg, sealer := s.cfg, s.sealer
	s.mu.Unlock()

	fopts := notify.FactoryOptions{HTTPClient: s.opts.HTTPClient, TLSConfig: s.opts.TLSConfig, Now: s.now}
	var (
		infos    []ChannelInfo
		routes   []notify.Channel
		disabled = map[string]bool{}
		inFile   = map[string]bool{}
		errs     []error
	)
	for _, c := range cfg.Channels {
		inFile[c.Name] = true
		ch, err := notify.NewChannel(c, fopts)
		if err != nil {
			errs = append(errs, fmt.Errorf("alerting: config %w", err))
			continue
		}
		infos = append(infos, ChannelInfo{Name: c.Name, Kind: c.Kind, Source: SourceConfig, Config: c})
		routes = append(routes, ch)
		disabled[c.Name] = c.Disabled
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, rec := range recs {
		info := ChannelInfo{Name: rec.ID, Kind: notify.Kind(rec.Kind), Source: SourceStore, Revision: rec.Revision}
		info.Config.Name, info.Config.Kind = rec.ID, notify.Kind(rec.Kind)
		switch {
		case inFile[rec.ID]:
			info.Error = "the config file declares a channel of the same name, which wins"
		case sealer == nil:
			info.Error = "alerts.secret_key is not set: the stored secrets cannot be opened"
		default:
			c, err := sealer.UnmarshalChannel(rec.Secret)
			if err != nil {
				info.Error = err.Error()
				break
			}
			info.Config = c
			ch, err := notify.NewChannel(c, fopts)
			if err != nil {
				info.Error = err.Error()
				break
			}
			routes = append(routes, ch)
			disabled[c.Name] = c.Disabled
		}
		if info.Error != "" {
			s.log.Error("alert channel from the store is not active", "channel", rec.ID, "err", info.Error)
		}
		infos = append(infos, info)
	}
	if err := s.disp.SetChannels(routes); err != nil {
		return fmt.Errorf("alerting: %w", err)
	}
	s.mu.Lock()
	s.channels, s.routes, s.disabled = infos, routes, disabled
	s.mu.Unlock()
	return nil
}

// ListChannels returns every channel, those of the config file first, then
// those added at run time, each by name. Secrets are masked in every
// rendering of the result.
func (s *Service) ListChannels(ctx context.Context) ([]ChannelInfo, error) {
	if err := s.reloadChannels(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.channels), nil
}

// AddChannel stores a new channel, its secrets sealed with the configured
// key, and activates it on every replica (through the change feed). Errors:
// store.ErrInvalid (cfg.Validate failed; the text names each field),
// ErrReadOnly (the file declares that name), ErrNoKey, store.ErrConflict
// (a stored channel has that name; remove it first).
func (s *Service) AddChannel(ctx context.Context, cfg notify.ChannelConfig) (ChannelInfo, error) {
	if err := cfg.Validate(); err != nil {
		return ChannelInfo{}, fmt.Errorf("alerting: add channel: %w: %w", store.ErrInvalid, err)
	}
	s.mu.Lock()
	file, sealer := s.cfg, s.sealer
	s.mu.Unlock()
	if slices.ContainsFunc(file.Channels, func(c notify.ChannelConfig) bool { return c.Name == cfg.Name }) {
		return ChannelInfo{}, fmt.Errorf("%w: %q: %w", ErrReadOnly, cfg.Name, store.ErrConflict)
	}
	if sealer == nil {
		return ChannelInfo{}, fmt.Errorf("add channel %q: %w", cfg.Name, ErrNoKey)
	}
	sealed, err := sealer.MarshalChannel(cfg)
	if err != nil {
		return ChannelInfo{}, fmt.Errorf("alerting: add channel %q: %w", cfg.Name, err)
	}
	filter, err := json.Marshal(cfg.Route)
	if err != nil {
		return ChannelInfo{}, fmt.Errorf("alerting: add channel %q: route: %w", cfg.Name, err)
	}
	var rec store.AlertChannel
	err = s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		rec, err = tx.PutAlertChannel(ctx, store.AlertChannel{
			ID: cfg.Name, Kind: string(cfg.Kind), Name: cfg.Name, Filter: filter, Secret: sealed,
		})
		return err
	})
	if err != nil {
		return ChannelInfo{}, fmt.Errorf("alerting: add channel %q: %w", cfg.Name, err)
	}
	if err := s.reloadChannels(ctx); err != nil {
		return ChannelInfo{}, err
	}
	return ChannelInfo{Name: cfg.Name, Kind: cfg.Kind, Source: SourceStore, Config: cfg, Revision: rec.Revision}, nil
}

// RemoveChannel deletes a channel added at run time. Alerts still queued
// for it go dead, visibly, when due. Errors: ErrReadOnly for a channel of
// the config file, store.ErrNotFound for an unknown name.
func (s *Service) RemoveChannel(ctx context.Context, name string) error {
	s.mu.Lock()
	file := s.cfg
	s.mu.Unlock()
	if slices.ContainsFunc(file.Channels, func(c notify.ChannelConfig) bool { return c.Name == name }) {
		return fmt.Errorf("%w: %q: %w", ErrReadOnly, name, store.ErrConflict)
	}
	if err := s.st.Update(ctx, func(tx store.Tx) error { return tx.DeleteAlertChannel(ctx, name, 0) }); err != nil {
		return fmt.Errorf("alerting: remove channel %q: %w", name, err)
	}
	return s.reloadChannels(ctx)
}

// Test sends a test message now to the named channel, or to every active
// channel when name is "", bypassing outbox, routing, throttle and rate
// limit, and reports each provider's answer (errors never carry secrets).
// An unknown name yields one failed result saying so.
func (s *Service) Test(ctx context.Context, name string) []notify.TestResult {
	names := []string{name}
	if name == "" {
		names = s.disp.Channels()
	}
	out := make([]notify.TestResult, 0, len(names))
	for _, n := range names {
		out = append(out, s.disp.Test(ctx, n))
	}
	return out
}
