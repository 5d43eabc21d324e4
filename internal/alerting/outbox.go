package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/canaryd/canaryd/internal/notify"
	"github.com/canaryd/canaryd/internal/store"
)

// Outbox is the durable notify.Outbox: the alert_outbox table of a
// store.Store (SQLite or PostgreSQL). Every method is one store transaction,
// so deliveries, merges, throttling and leases survive a restart and are
// shared by every replica using the same database. Safe for concurrent use.
//
// Messages are kept as JSON of notify.Message; fields are only ever added
// to Message, so a delivery written by an older binary still decodes.
type Outbox struct {
	st store.Store
}

var (
	_ notify.Outbox = (*Outbox)(nil)
	_ notify.Pruner = (*Outbox)(nil)
)

// NewOutbox returns the Outbox over st. It does not own st: closing st is
// the caller's business.
func NewOutbox(st store.Store) *Outbox { return &Outbox{st: st} }

// Enqueue implements notify.Outbox.
func (o *Outbox) Enqueue(ctx context.Context, d notify.Delivery, throttle time.Duration) (int64, bool, error) {
	var (
		id     int64
		merged bool
	)
	err := o.st.Update(ctx, func(tx store.Tx) error {
		var err error
		id, merged, err = enqueueTx(ctx, tx, d, throttle)
		return err
	})
	if err != nil {
		return 0, false, err
	}
	return id, merged, nil
}

// enqueueTx is Enqueue inside a transaction the caller owns, so that the
// event follower can move its cursor and enqueue in one commit.
func enqueueTx(ctx context.Context, tx store.Tx, d notify.Delivery, throttle time.Duration) (int64, bool, error) {
	msg, err := json.Marshal(d.Message)
	if err != nil {
		return 0, false, fmt.Errorf("alerting: encode message for channel %q: %w", d.Channel, err)
	}
	return tx.EnqueueAlert(ctx, store.AlertDelivery{
		Channel: d.Channel, Key: d.Key, Message: msg, Count: d.Count,
		NextAttempt: d.NextAttempt, FirstSeen: d.FirstSeen, LastSeen: d.LastSeen,
	}, throttle)
}

// claimRetries bounds how often Claim starts over when PostgreSQL reports
// that a concurrent claim won the race even after the store's own retries.
const claimRetries = 5

// Claim implements notify.Outbox.
func (o *Outbox) Claim(ctx context.Context, now, leaseUntil time.Time, limit int) ([]notify.Delivery, error) {
	var rows []store.AlertDelivery
	var err error
	for range claimRetries {
		err = o.st.Update(ctx, func(tx store.Tx) error {
			var err error
			rows, err = tx.ClaimAlerts(ctx, now, leaseUntil, limit)
			return err
		})
		if !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	out := make([]notify.Delivery, 0, len(rows))
	for _, r := range rows {
		d, err := toDelivery(r)
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}

func toDelivery(r store.AlertDelivery) (notify.Delivery, error) {
	d := notify.Delivery{
		ID: r.ID, Channel: r.Channel, Key: r.Key, Count: r.Count, State: notify.State(r.State),
		Attempts: r.Attempts, NextAttempt: r.NextAttempt, FirstSeen: r.FirstSeen, LastSeen: r.LastSeen,
		LastError: r.LastError, DoneAt: r.DoneAt,
	}
	if err := json.Unmarshal(r.Message, &d.Message); err != nil {
		return d, fmt.Errorf("alerting: decode message of delivery %d: %w", r.ID, err)
	}
	return d, nil
}

// mark runs one Mark* method and maps store.ErrNotFound to
// notify.ErrUnknownDelivery, as the Outbox contract asks.
func (o *Outbox) mark(ctx context.Context, fn func(tx store.Tx) error) error {
	err := o.st.Update(ctx, fn)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %w", notify.ErrUnknownDelivery, err)
	}
	return err
}

// MarkSent implements notify.Outbox.
func (o *Outbox) MarkSent(ctx context.Context, id int64, at time.Time) error {
	return o.mark(ctx, func(tx store.Tx) error { return tx.MarkAlertSent(ctx, id, at) })
}

// MarkRetry implements notify.Outbox.
func (o *Outbox) MarkRetry(ctx context.Context, id int64, attempts int, next time.Time, errText string) error {
	return o.mark(ctx, func(tx store.Tx) error { return tx.MarkAlertRetry(ctx, id, attempts, next, errText) })
}

// MarkDead implements notify.Outbox.
func (o *Outbox) MarkDead(ctx context.Context, id int64, attempts int, at time.Time, errText string) error {
	return o.mark(ctx, func(tx store.Tx) error { return tx.MarkAlertDead(ctx, id, attempts, at, errText) })
}

// Prune implements notify.Pruner: sent deliveries done before before are
// deleted; dead ones stay until an operator deals with them.
func (o *Outbox) Prune(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := o.st.Update(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.PruneAlerts(ctx, before)
		return err
	})
	return int(n), err
}

// List returns deliveries matching q, newest first: dead letters for the
// API and the CLI. LastError never holds a secret (providers scrub them).
func (o *Outbox) List(ctx context.Context, q store.AlertQuery) ([]notify.Delivery, error) {
	var rows []store.AlertDelivery
	err := o.st.View(ctx, func(r store.Reader) error {
		var err error
		rows, err = r.ListAlerts(ctx, q)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]notify.Delivery, 0, len(rows))
	for _, r := range rows {
		d, err := toDelivery(r)
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}
