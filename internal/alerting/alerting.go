// Package alerting makes alerts real end to end: it builds the alert
// channels from the config file and from the store, follows the store's
// event log and hands every new event to the channels whose route matches,
// through the durable outbox in the store, and runs notify's Dispatcher
// over that outbox. It also offers what the admin API needs to manage
// channels at run time (list, add, remove, test), and optionally watches
// each service's current canary against thresholds (Monitor).
//
// Delivery guarantees: following the event log and enqueueing happen in one
// store transaction together with the follower's cursor, so an event is
// enqueued exactly once — across restarts and across replicas sharing a
// PostgreSQL database. From the outbox on, delivery is at least once (see
// docs/alerts.md).
package alerting

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/notify"
	"github.com/canaryd/canaryd/internal/store"
)

// CursorName is the store cursor (store.Tx.PutCursor) holding the ID of
// the last event handed to the outbox.
const CursorName = "alerting/events"

// followBatch bounds the events enqueued per transaction.
const followBatch = 500

// Options configure New. Store is required; every other zero value means
// the default given.
type Options struct {
	// Store holds the event log, the outbox, the cursor and the channels
	// added at run time. The Service does not close it.
	Store store.Store
	// Config is the file's alerts section; nil means no channels from the
	// file and no secret key (so no channel can be added at run time).
	Config *config.Alerts
	// Logger gets delivery failures, dead alerts and channel problems; nil
	// discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// UIBase overrides Config.UIURL for links in messages.
	UIBase string
	// HTTPClient sends the HTTP providers' requests; nil means a default
	// client (each send is bounded by the channel's timeout).
	HTTPClient *http.Client
	// TLSConfig verifies SMTP servers; nil means system roots.
	TLSConfig *tls.Config
	// Dispatch tunes the Dispatcher (attempts, backoff, group wait, lease,
	// poll, batch, retention). Its Outbox, Logger, Now and UIBase are set
	// by New and ignored here.
	Dispatch notify.Options
	// Metrics feeds alert-only monitoring (Config.Monitor); nil turns the
	// monitor off even when configured.
	Metrics MetricsFunc
}

// Service runs alerting for one canaryd process. Create it with New, run it
// with Run; its other methods are safe for concurrent use, also while Run
// runs.
type Service struct {
	st     store.Store
	log    *slog.Logger
	now    func() time.Time
	outbox *Outbox
	disp   *notify.Dispatcher
	opts   Options
	wake   chan struct{}

	// reloadMu serialises reloadChannels, so a slower reload never
	// installs an older channel set over a newer one.
	reloadMu sync.Mutex

	mu       sync.Mutex // guards the fields below
	cfg      *config.Alerts
	sealer   *notify.Sealer // nil without a secret key
	uiBase   string
	channels []ChannelInfo    // config first, then store, by name
	routes   []notify.Channel // active channels, for routing events
	disabled map[string]bool
	monitor  *monitor
}

// Errors of the channel methods; the API maps them to statuses. Each is
// also wrapped with the store sentinel it corresponds to.
var (
	// ErrReadOnly: the channel is declared in the config file; edit the
	// file instead (wrapped with store.ErrConflict).
	ErrReadOnly = errors.New("alerting: channel is declared in the config file and is read-only")
	// ErrNoKey: no alerts.secret_key is configured, so secrets cannot be
	// stored encrypted and channels cannot be added at run time.
	ErrNoKey = errors.New("alerting: alerts.secret_key is not set: channels with secrets cannot be stored")
)

// New checks opts, builds the channels declared in the config and those
// stored, and positions the event follower: on a database that has never
// run alerting, the cursor is set to the newest event, so history is not
// replayed as alerts; afterwards every event committed after New returns
// is alerted. Nothing is sent until Run.
func New(ctx context.Context, opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("alerting: store is nil")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cfg := opts.Config
	if cfg == nil {
		cfg = &config.Alerts{}
	}
	s := &Service{
		st: opts.Store, log: opts.Logger, now: opts.Now, outbox: NewOutbox(opts.Store),
		opts: opts, wake: make(chan struct{}, 1),
	}
	if err := s.setConfig(cfg); err != nil {
		return nil, err
	}
	dopts := opts.Dispatch
	dopts.Outbox, dopts.Logger, dopts.Now, dopts.UIBase = s.outbox, opts.Logger, opts.Now, s.uiBase
	if dopts.GroupWait == 0 {
		dopts.GroupWait = 2 * time.Second
	}
	if dopts.Poll <= 0 {
		dopts.Poll = time.Second
	}
	if dopts.Retention <= 0 {
		dopts.Retention = 24 * time.Hour
	}
	s.opts.Dispatch = dopts
	d, err := notify.NewDispatcher(dopts, nil)
	if err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	s.disp = d
	if err := s.reloadChannels(ctx); err != nil {
		return nil, err
	}
	if err := s.initCursor(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// setConfig takes a new alerts section: secret key, UI link, monitor.
// Channels are rebuilt by reloadChannels.
func (s *Service) setConfig(cfg *config.Alerts) error {
	var sealer *notify.Sealer
	if cfg.SecretKey != "" {
		key, err := notify.ParseKey(cfg.SecretKey.Reveal())
		if err != nil {
			return fmt.Errorf("alerting: alerts.secret_key: %w", err)
		}
		if sealer, err = notify.NewSealer(key); err != nil {
			return fmt.Errorf("alerting: alerts.secret_key: %w", err)
		}
	}
	ui := cfg.UIURL
	if s.opts.UIBase != "" {
		ui = s.opts.UIBase
	}
	var mon *monitor
	if cfg.Monitor != nil && s.opts.Metrics != nil {
		mon = newMonitor(*cfg.Monitor, s.opts.Metrics)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg, s.sealer, s.uiBase = cfg, sealer, ui
	if mon != nil && s.monitor != nil {
		mon.carryOver(s.monitor)
	}
	s.monitor = mon
	return nil
}

// Reload applies a new alerts section (config reload): channels declared
// in the file, the secret key, the UI link and the monitor's thresholds.
// On error the running configuration stays.
func (s *Service) Reload(ctx context.Context, cfg *config.Alerts) error {
	if cfg == nil {
		cfg = &config.Alerts{}
	}
	s.mu.Lock()
	old := s.cfg
	s.mu.Unlock()
	if err := s.setConfig(cfg); err != nil {
		return err
	}
	if err := s.reloadChannels(ctx); err != nil {
		_ = s.setConfig(old)
		_ = s.reloadChannels(ctx)
		return err
	}
	return nil
}

// Outbox returns the durable outbox, e.g. to list dead alerts.
func (s *Service) Outbox() *Outbox { return s.outbox }

// Dead returns up to limit dead alerts, newest first, for the API's
// listing: each with its channel, count, attempts and last error.
func (s *Service) Dead(ctx context.Context, limit int) ([]notify.Delivery, error) {
	return s.outbox.List(ctx, store.AlertQuery{States: []store.AlertState{store.AlertDead}, Limit: limit})
}

// Replay makes a dead alert pending again, due now, with its attempts
// reset: what an operator does once the channel is fixed. Errors:
// store.ErrNotFound for an unknown id, store.ErrConflict when the alert is
// not dead.
func (s *Service) Replay(ctx context.Context, id int64) error {
	err := s.st.Update(ctx, func(tx store.Tx) error {
		d, err := tx.GetAlert(ctx, id)
		if err != nil {
			return err
		}
		if d.State != store.AlertDead {
			return fmt.Errorf("alert %d is %s, not dead: %w", id, d.State, store.ErrConflict)
		}
		return tx.MarkAlertRetry(ctx, id, 0, s.now(), d.LastError)
	})
	if err != nil {
		return fmt.Errorf("alerting: replay: %w", err)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run follows the store's change feed, enqueues new events, delivers due
// alerts and (when configured) checks the canaries, until ctx ends; then
// it returns nil. An attempt cut short by ctx is put back as due. Store
// errors are logged and retried; they do not stop Run.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { s.follow(ctx) })
	wg.Go(func() { s.dispatch(ctx) })
	wg.Go(func() { s.watch(ctx) })
	wg.Wait()
	return nil
}

// follow enqueues events as they are committed and reloads channels when
// another process (or the API) changes them.
func (s *Service) follow(ctx context.Context) {
	changes := s.st.Subscribe(ctx)
	s.pumpLogged(ctx)
	if err := s.reloadChannels(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("alert channels reload", "err", err)
	}
	// A safety net for a change notification lost between processes.
	safety := time.NewTicker(10 * s.opts.Dispatch.Poll)
	defer safety.Stop()
	for {
		var pump, reload bool
		select {
		case <-ctx.Done():
			return
		case <-safety.C:
			pump = true
		case c, ok := <-changes:
			if !ok {
				return
			}
			pump, reload = classify(c)
			// Drain what else is queued, so a burst costs one pump.
		drain:
			for {
				select {
				case c, ok := <-changes:
					if !ok {
						break drain
					}
					p, r := classify(c)
					pump, reload = pump || p, reload || r
				default:
					break drain
				}
			}
		}
		if reload {
			if err := s.reloadChannels(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("alert channels reload", "err", err)
			}
		}
		if pump {
			s.pumpLogged(ctx)
		}
	}
}

func classify(c store.Change) (pump, reload bool) {
	switch c.Kind {
	case store.ChangeEvent:
		return true, false
	case store.ChangeAlertChannel:
		return false, true
	case store.ChangeResync:
		return true, true
	}
	return false, false
}

func (s *Service) pumpLogged(ctx context.Context) {
	if _, err := s.pump(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("alert event follower", "err", err)
	}
}

// initCursor stores the newest event ID as the cursor if none is stored.
func (s *Service) initCursor(ctx context.Context) error {
	err := s.st.Update(ctx, func(tx store.Tx) error {
		_, err := tx.GetCursor(ctx, CursorName)
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		evs, err := tx.ListEvents(ctx, store.EventQuery{Desc: true, Limit: 1})
		if err != nil {
			return err
		}
		var pos int64
		if len(evs) > 0 {
			pos = evs[0].ID
		}
		return tx.PutCursor(ctx, CursorName, pos)
	})
	if err != nil {
		return fmt.Errorf("alerting: position the event follower: %w", err)
	}
	return nil
}

// pump enqueues every event after the cursor for the channels whose route
// matches, moving the cursor in the same transaction, and returns how many
// events it handled. A restart in between loses nothing and repeats
// nothing; two replicas never both enqueue one event (SQLite has one
// writer; PostgreSQL's SERIALIZABLE makes the loser re-read the cursor).
func (s *Service) pump(ctx context.Context) (int, error) {
	total := 0
	for {
		s.mu.Lock()
		routes, disabled, ui := s.routes, s.disabled, s.uiBase
		s.mu.Unlock()
		gw := s.opts.Dispatch.GroupWait
		if gw < 0 {
			gw = 0
		}
		var got, queued int
		err := s.st.Update(ctx, func(tx store.Tx) error {
			got, queued = 0, 0
			pos, err := tx.GetCursor(ctx, CursorName)
			if err != nil {
				return err
			}
			evs, err := tx.ListEvents(ctx, store.EventQuery{AfterID: pos, Limit: followBatch})
			if err != nil || len(evs) == 0 {
				return err
			}
			now := s.now()
			for _, ev := range evs {
				n, err := enqueueEvent(ctx, tx, ev, routes, disabled, ui, now, gw)
				if err != nil {
					return err
				}
				queued += n
			}
			got = len(evs)
			return tx.PutCursor(ctx, CursorName, evs[len(evs)-1].ID)
		})
		if err != nil {
			return total, fmt.Errorf("alerting: enqueue events: %w", err)
		}
		total += got
		if queued > 0 {
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}
		if got < followBatch {
			return total, nil
		}
	}
}

// enqueueEvent routes ev like notify.Dispatcher.Publish does, but inside
// the caller's transaction.
func enqueueEvent(ctx context.Context, tx store.Tx, ev event.Event, routes []notify.Channel, disabled map[string]bool,
	uiBase string, now time.Time, groupWait time.Duration) (int, error) {
	key := notify.DedupeKey(ev)
	msg := notify.NewMessage(ev, uiBase)
	seen := ev.Time
	if seen.IsZero() {
		seen = now
	}
	n := 0
	for _, c := range routes {
		if disabled[c.Name] || !c.Route.Match(ev) {
			continue
		}
		if _, _, err := enqueueTx(ctx, tx, notify.Delivery{
			Channel: c.Name, Key: key, Message: msg, Count: 1,
			FirstSeen: seen, LastSeen: seen, NextAttempt: now.Add(groupWait),
		}, c.Throttle); err != nil {
			return n, fmt.Errorf("event %d for channel %q: %w", ev.ID, c.Name, err)
		}
		n++
	}
	return n, nil
}

// dispatch runs the Dispatcher's Tick: every Poll, and GroupWait after
// the follower queued something.
func (s *Service) dispatch(ctx context.Context) {
	poll := s.opts.Dispatch.Poll
	gw := max(s.opts.Dispatch.GroupWait, 0) + 10*time.Millisecond
	next := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	var lastPrune time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			if at := time.Now().Add(gw); at.Before(next) {
				next = at
				t.Reset(time.Until(next))
			}
			continue
		case <-t.C:
		}
		if _, err := s.disp.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("alert dispatch", "err", err)
		}
		if now := s.now(); now.Sub(lastPrune) >= time.Minute {
			lastPrune = now
			if _, err := s.outbox.Prune(ctx, now.Add(-s.opts.Dispatch.Retention)); err != nil && ctx.Err() == nil {
				s.log.Error("alert outbox prune", "err", err)
			}
		}
		next = time.Now().Add(poll)
		t.Reset(poll)
	}
}
