package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/notify/alert"
)

// Channel is the Dispatcher's view of one configured channel; NewChannel
// builds it from a ChannelConfig.
type Channel struct {
	Name     string
	Notifier Notifier
	Route    Route
	// Throttle: see ChannelConfig.Throttle (0 here means none).
	Throttle time.Duration
	// RatePerMinute ≤ 0 means no rate limit; Burst < 1 counts as 1.
	RatePerMinute float64
	Burst         int
	// Timeout bounds one Send; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Options configure a Dispatcher. Only Outbox is required; every other zero
// value means the default given.
type Options struct {
	// Outbox holds the deliveries.
	Outbox Outbox
	// Logger gets one line per failed attempt (Warn) and per dead delivery
	// (Error); nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests inject a fake one and
	// drive the Dispatcher with Tick.
	Now func() time.Time
	// Rand returns jitter in [0, 1); nil means math/rand/v2.
	Rand func() float64
	// UIBase is the UI's external URL for links in messages.
	UIBase string
	// MaxAttempts bounds the tries of one delivery before it is dead
	// (default 8).
	MaxAttempts int
	// BackoffBase and BackoffMax shape the retry delay: attempt n waits
	// BackoffBase·2^(n−1), capped at BackoffMax, then jittered down by up
	// to half (defaults 5s and 15m).
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// GroupWait delays a new alert so that a burst of identical events
	// merges into it and goes out as one alert with a count, instead of a
	// first alert alone and the rest a throttle window later (default 2s;
	// negative means send at once).
	GroupWait time.Duration
	// Lease is how long a claimed delivery stays reserved for this
	// process; after a crash it is claimed again once the lease ends
	// (default 2m; keep it above every channel's Timeout).
	Lease time.Duration
	// Poll is how often Run looks for due deliveries when not woken by
	// Publish (default 1s).
	Poll time.Duration
	// Batch bounds deliveries claimed per Tick (default 100).
	Batch int
	// Retention is how long sent deliveries are kept when the Outbox can
	// prune (default 24h).
	Retention time.Duration
}

// Pruner is implemented by outboxes that can forget old sent deliveries;
// Run calls it about once a minute.
type Pruner interface {
	Prune(ctx context.Context, before time.Time) (int, error)
}

// Dispatcher routes events to channels and delivers them through the
// Outbox: at least once, retried with exponential backoff and jitter, dead
// after MaxAttempts (or at once on a permanent error), rate-limited per
// channel, honouring a provider's Retry-After. Safe for concurrent use.
type Dispatcher struct {
	opts  Options
	log   *slog.Logger
	chans atomic.Pointer[map[string]*channelState]
	wake  chan struct{}

	mu      sync.Mutex // guards buckets and SetChannels
	buckets map[string]*bucket
}

type channelState struct {
	Channel
	bucket *bucket
}

// NewDispatcher checks opts and channels and returns a Dispatcher that does
// nothing until Run (or Tick) is called.
func NewDispatcher(opts Options, channels []Channel) (*Dispatcher, error) {
	if opts.Outbox == nil {
		return nil, errors.New("notify: dispatcher: outbox is nil")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	def := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	switch {
	case opts.GroupWait == 0:
		opts.GroupWait = 2 * time.Second
	case opts.GroupWait < 0:
		opts.GroupWait = 0
	}
	def(&opts.BackoffBase, 5*time.Second)
	def(&opts.BackoffMax, 15*time.Minute)
	def(&opts.Lease, 2*time.Minute)
	def(&opts.Poll, time.Second)
	def(&opts.Retention, 24*time.Hour)
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	if opts.Batch <= 0 {
		opts.Batch = 100
	}
	d := &Dispatcher{opts: opts, log: opts.Logger, wake: make(chan struct{}, 1), buckets: map[string]*bucket{}}
	if err := d.SetChannels(channels); err != nil {
		return nil, err
	}
	return d, nil
}

// SetChannels replaces the channel set (config reload, `alerts add`).
// Deliveries already queued for a removed channel go dead with a clear
// error when due. A channel keeps its rate-limit state across calls.
func (d *Dispatcher) SetChannels(channels []Channel) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := make(map[string]*channelState, len(channels))
	var errs []error
	for i, c := range channels {
		switch {
		case c.Name == "":
			errs = append(errs, fmt.Errorf("notify: channels[%d]: name is empty", i))
			continue
		case c.Notifier == nil:
			errs = append(errs, fmt.Errorf("notify: channel %q: notifier is nil", c.Name))
			continue
		case m[c.Name] != nil:
			errs = append(errs, fmt.Errorf("notify: channel %q: duplicate name", c.Name))
			continue
		}
		if c.Timeout <= 0 {
			c.Timeout = DefaultTimeout
		}
		if c.Timeout >= d.opts.Lease {
			errs = append(errs, fmt.Errorf("notify: channel %q: timeout %s must be shorter than the dispatcher lease %s", c.Name, c.Timeout, d.opts.Lease))
			continue
		}
		b := d.buckets[c.Name]
		if b == nil || b.perMinute != c.RatePerMinute || b.burst != float64(max(c.Burst, 1)) {
			b = newBucket(c.RatePerMinute, c.Burst)
			d.buckets[c.Name] = b
		}
		m[c.Name] = &channelState{Channel: c, bucket: b}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	d.chans.Store(&m)
	return nil
}

// Channels returns the configured channel names, sorted: what
// `canaryctl alerts test` with no argument iterates over.
func (d *Dispatcher) Channels() []string {
	m := *d.chans.Load()
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Publish routes ev to every channel whose Route matches and enqueues one
// delivery per channel, merged with a pending identical one if any. It
// returns the number of channels the event was queued for. It does not
// send: Run does, promptly, since Publish wakes it.
func (d *Dispatcher) Publish(ctx context.Context, ev event.Event) (int, error) {
	now := d.opts.Now()
	key := DedupeKey(ev)
	msg := NewMessage(ev, d.opts.UIBase)
	var errs []error
	n := 0
	for _, c := range *d.chans.Load() {
		if !c.Route.Match(ev) {
			continue
		}
		_, _, err := d.opts.Outbox.Enqueue(ctx, Delivery{
			Channel: c.Name, Key: key, Message: msg, Count: 1,
			FirstSeen: now, LastSeen: now, NextAttempt: now.Add(d.opts.GroupWait),
		}, c.Throttle)
		if err != nil {
			errs = append(errs, fmt.Errorf("notify: enqueue event %d for channel %q: %w", ev.ID, c.Name, err))
			continue
		}
		n++
	}
	if n > 0 {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
	return n, errors.Join(errs...)
}

// Stats counts what one Tick did.
type Stats struct {
	Sent, Retried, Dead, Deferred int
}

// Tick claims the deliveries due now and attempts each once: channels in
// parallel, one channel's deliveries in order. It returns when all are
// settled in the Outbox. Run calls it in a loop; tests call it directly
// with a fake clock.
func (d *Dispatcher) Tick(ctx context.Context) (Stats, error) {
	now := d.opts.Now()
	batch, err := d.opts.Outbox.Claim(ctx, now, now.Add(d.opts.Lease), d.opts.Batch)
	if err != nil {
		return Stats{}, fmt.Errorf("notify: claim due deliveries: %w", err)
	}
	chans := *d.chans.Load()
	byChan := map[string][]Delivery{}
	var order []string
	for _, del := range batch {
		if _, ok := byChan[del.Channel]; !ok {
			order = append(order, del.Channel)
		}
		byChan[del.Channel] = append(byChan[del.Channel], del)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total Stats
		errs  []error
	)
	for _, name := range order {
		wg.Go(func() {
			var s Stats
			var es []error
			for _, del := range byChan[name] {
				if err := d.deliver(ctx, chans[name], del, &s); err != nil {
					es = append(es, err)
				}
			}
			mu.Lock()
			total.Sent += s.Sent
			total.Retried += s.Retried
			total.Dead += s.Dead
			total.Deferred += s.Deferred
			errs = append(errs, es...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return total, errors.Join(errs...)
}

// deliver attempts one claimed delivery and records the outcome. It returns
// only Outbox errors; provider errors are recorded, not returned.
func (d *Dispatcher) deliver(ctx context.Context, c *channelState, del Delivery, s *Stats) error {
	ob := d.opts.Outbox
	// Outcomes are recorded even when ctx ends meanwhile: a send that
	// succeeded but is not marked would be sent again after the lease.
	mctx := context.WithoutCancel(ctx)
	now := d.opts.Now()
	if c == nil {
		s.Dead++
		d.log.Error("alert dead: channel not configured", "channel", del.Channel, "delivery", del.ID, "service", del.Message.Service)
		return ob.MarkDead(mctx, del.ID, del.Attempts, now, fmt.Sprintf("channel %q is not configured", del.Channel))
	}
	if wait := c.bucket.take(now); wait > 0 {
		s.Deferred++
		return ob.MarkRetry(mctx, del.ID, del.Attempts, now.Add(wait), del.LastError)
	}
	msg := del.Message
	msg.ID = strconv.FormatInt(del.ID, 10)
	msg.Count = max(del.Count, 1)
	if msg.Count > 1 {
		msg.FirstSeen, msg.LastSeen = del.FirstSeen, del.LastSeen
	}
	sctx, cancel := context.WithTimeout(ctx, c.Timeout)
	err := c.Notifier.Send(sctx, msg)
	cancel()
	now = d.opts.Now()
	if err == nil {
		s.Sent++
		return ob.MarkSent(mctx, del.ID, now)
	}
	if ctx.Err() != nil {
		// Shutting down: the attempt was cut short by us, not failed by
		// the provider. Put it back as it was, due at once.
		return ob.MarkRetry(mctx, del.ID, del.Attempts, now, del.LastError)
	}
	attempts := del.Attempts + 1
	ae := alert.AsError(err)
	text := err.Error()
	if ae != nil && ae.Permanent || attempts >= d.opts.MaxAttempts {
		s.Dead++
		why := "permanent error"
		if ae == nil || !ae.Permanent {
			why = "max attempts reached"
		}
		d.log.Error("alert dead: "+why, "channel", c.Name, "delivery", del.ID, "service", msg.Service,
			"type", string(msg.Type), "attempts", attempts, "err", text)
		return ob.MarkDead(mctx, del.ID, attempts, now, text)
	}
	next := now.Add(d.backoff(attempts))
	if ae != nil && ae.RetryAfter > 0 {
		next = now.Add(ae.RetryAfter)
	}
	// The channel is failing (down, overloaded, 429): hold all its
	// deliveries until this one is retried. It probes for the rest, which
	// wait without spending attempts, and a Tick never sits through one
	// timeout per queued delivery.
	c.bucket.pause(next)
	s.Retried++
	d.log.Warn("alert attempt failed", "channel", c.Name, "delivery", del.ID, "service", msg.Service,
		"attempt", attempts, "next", next, "err", text)
	return ob.MarkRetry(mctx, del.ID, attempts, next, text)
}

// backoff is BackoffBase·2^(n−1) capped at BackoffMax, minus up to half
// of it at random, so replicas and channels that failed together do not
// retry in lockstep.
func (d *Dispatcher) backoff(n int) time.Duration {
	b := d.opts.BackoffBase
	for i := 1; i < n && b < d.opts.BackoffMax; i++ {
		b *= 2
	}
	b = min(b, d.opts.BackoffMax)
	return b - time.Duration(d.opts.Rand()*float64(b)/2)
}

// Run delivers until ctx ends, then returns nil. Outbox errors are logged
// and retried at the next poll; they do not stop Run.
func (d *Dispatcher) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	var lastPrune time.Time
	for {
		wait := d.opts.Poll
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-d.wake:
			// What Publish queued is due after GroupWait: look again then.
			wait = min(wait, d.opts.GroupWait+10*time.Millisecond)
		}
		if _, err := d.Tick(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("alert dispatch", "err", err)
		}
		if p, ok := d.opts.Outbox.(Pruner); ok {
			if now := d.opts.Now(); now.Sub(lastPrune) >= time.Minute {
				lastPrune = now
				if _, err := p.Prune(ctx, now.Add(-d.opts.Retention)); err != nil && ctx.Err() == nil {
					d.log.Error("alert outbox prune", "err", err)
				}
			}
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
	}
}

// TestResult is the outcome of Test for one channel.
type TestResult struct {
	Channel string        `json:"channel"`
	OK      bool          `json:"ok"`
	Error   string        `json:"error,omitempty"`
	Took    time.Duration `json:"took"`
}

// Test sends a test message to one channel now, bypassing the outbox,
// routing, throttle and rate limit, and reports the provider's answer: what
// `canaryctl alerts test` shows. The error text never contains secrets.
func (d *Dispatcher) Test(ctx context.Context, channel string) TestResult {
	res := TestResult{Channel: channel}
	c := (*d.chans.Load())[channel]
	if c == nil {
		res.Error = fmt.Sprintf("channel %q is not configured", channel)
		return res
	}
	start := d.opts.Now()
	msg := NewMessage(event.Event{
		Time: start, Type: event.Test, Severity: event.Info, Actor: "canaryctl",
		Reason: "test message for channel " + channel + ": if you can read this, alerts reach you",
	}, d.opts.UIBase)
	msg.ID = "test-" + strconv.FormatInt(start.UnixNano(), 36)
	sctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	err := c.Notifier.Send(sctx, msg)
	res.Took = d.opts.Now().Sub(start)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.OK = true
	return res
}
