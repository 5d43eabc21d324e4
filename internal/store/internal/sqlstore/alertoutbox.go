package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/store"
)

// ---- alert outbox (notify.Outbox semantics) and cursors ----

const alertCols = `id, channel, dedupe_key, message, count, state, attempts, next_attempt, first_seen, last_seen, last_error, done_at`

func (t *Tx) queryAlerts(ctx context.Context, q string, a ...any) ([]store.AlertDelivery, error) {
	rows, err := t.c.Query(ctx, q, a...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.AlertDelivery
	for rows.Next() {
		var d store.AlertDelivery
		var msg, state string
		if err := rows.Scan(&d.ID, &d.Channel, &d.Key, &msg, &d.Count, &state, &d.Attempts,
			&d.NextAttempt, &d.FirstSeen, &d.LastSeen, &d.LastError, &d.DoneAt); err != nil {
			return nil, err
		}
		d.Message = []byte(msg)
		d.State = store.AlertState(state)
		out = append(out, d)
	}
	return out, rows.Err()
}

// GetAlert implements store.Reader.
func (t *Tx) GetAlert(ctx context.Context, id int64) (store.AlertDelivery, error) {
	ds, err := t.queryAlerts(ctx, `SELECT `+alertCols+` FROM alert_outbox WHERE id = $1`, id)
	if err != nil {
		return store.AlertDelivery{}, fmt.Errorf("get alert %d: %w", id, err)
	}
	if len(ds) == 0 {
		return store.AlertDelivery{}, fmt.Errorf("alert %d: %w", id, store.ErrNotFound)
	}
	return ds[0], nil
}

// ListAlerts implements store.Reader.
func (t *Tx) ListAlerts(ctx context.Context, q store.AlertQuery) ([]store.AlertDelivery, error) {
	var a args
	var where []string
	if q.Channel != "" {
		where = append(where, "channel = "+a.add(q.Channel))
	}
	if len(q.States) > 0 {
		ph := make([]string, len(q.States))
		for i, s := range q.States {
			ph[i] = a.add(string(s))
		}
		where = append(where, "state IN ("+strings.Join(ph, ", ")+")")
	}
	sql := `SELECT ` + alertCols + ` FROM alert_outbox`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	sql += ` ORDER BY id DESC LIMIT ` + a.add(limit(q.Limit))
	ds, err := t.queryAlerts(ctx, sql, a...)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return ds, nil
}

// EnqueueAlert implements store.Tx.
func (t *Tx) EnqueueAlert(ctx context.Context, d store.AlertDelivery, throttle time.Duration) (int64, bool, error) {
	if d.Channel == "" || d.Key == "" {
		return 0, false, invalid("enqueue alert", fmt.Errorf("channel %q and key %q must both be set", d.Channel, d.Key))
	}
	what := fmt.Sprintf("enqueue alert for channel %q key %q", d.Channel, d.Key)
	if d.Count < 1 {
		d.Count = 1
	}
	seen := Stamp(d.FirstSeen)
	var id int64
	var last time.Time
	found, err := t.one(ctx, `SELECT id, last_seen FROM alert_outbox WHERE channel = $1 AND dedupe_key = $2 AND state = $3 ORDER BY id LIMIT 1`,
		[]any{d.Channel, d.Key, string(store.AlertPending)}, &id, &last)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", what, err)
	}
	if found {
		if seen.After(last) {
			last = seen
		}
		if _, err := t.c.Exec(ctx, `UPDATE alert_outbox SET count = count + $2, last_seen = $3 WHERE id = $1`, id, d.Count, last); err != nil {
			return 0, false, fmt.Errorf("%s: %w", what, err)
		}
		return id, true, nil
	}
	next := Stamp(d.NextAttempt)
	if throttle > 0 {
		var sent time.Time
		if _, err := t.one(ctx, `SELECT MAX(done_at) FROM alert_outbox WHERE channel = $1 AND dedupe_key = $2 AND state = $3`,
			[]any{d.Channel, d.Key, string(store.AlertSent)}, &sent); err != nil {
			return 0, false, fmt.Errorf("%s: %w", what, err)
		}
		sending, err := t.exists(ctx, `SELECT 1 FROM alert_outbox WHERE channel = $1 AND dedupe_key = $2 AND state = $3`,
			d.Channel, d.Key, string(store.AlertSending))
		if err != nil {
			return 0, false, fmt.Errorf("%s: %w", what, err)
		}
		if sending && seen.After(sent) {
			sent = seen
		}
		if !sent.IsZero() {
			if at := Stamp(sent.Add(throttle)); at.After(next) {
				next = at
			}
		}
	}
	lastSeen := Stamp(d.LastSeen)
	if lastSeen.Before(seen) {
		lastSeen = seen
	}
	if _, err := t.one(ctx, `INSERT INTO alert_outbox (channel, dedupe_key, message, count, state, attempts, next_attempt, first_seen, last_seen, last_error)
		VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, '') RETURNING id`,
		[]any{d.Channel, d.Key, string(d.Message), d.Count, string(store.AlertPending), next, seen, lastSeen}, &id); err != nil {
		return 0, false, fmt.Errorf("%s: %w", what, err)
	}
	return id, false, nil
}

// ClaimAlerts implements store.Tx.
func (t *Tx) ClaimAlerts(ctx context.Context, now, leaseUntil time.Time, n int) ([]store.AlertDelivery, error) {
	due, err := t.queryAlerts(ctx, `SELECT `+alertCols+` FROM alert_outbox WHERE state IN ($1, $2) AND next_attempt <= $3 ORDER BY next_attempt, id LIMIT $4`,
		string(store.AlertPending), string(store.AlertSending), Stamp(now), limit(n))
	if err != nil {
		return nil, fmt.Errorf("claim alerts: %w", err)
	}
	if len(due) == 0 {
		return nil, nil
	}
	lease := Stamp(leaseUntil)
	var a args
	a.add(string(store.AlertSending))
	a.add(lease)
	ph := make([]string, len(due))
	for i := range due {
		ph[i] = a.add(due[i].ID)
		due[i].State = store.AlertSending
		due[i].NextAttempt = lease
	}
	if _, err := t.c.Exec(ctx, `UPDATE alert_outbox SET state = $1, next_attempt = $2 WHERE id IN (`+strings.Join(ph, ", ")+`)`, a...); err != nil {
		return nil, fmt.Errorf("claim alerts: %w", err)
	}
	return due, nil
}

// markAlert runs one UPDATE by id and turns "no row" into ErrNotFound.
func (t *Tx) markAlert(ctx context.Context, what, q string, a ...any) error {
	n, err := t.c.Exec(ctx, q, a...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

// MarkAlertSent implements store.Tx.
func (t *Tx) MarkAlertSent(ctx context.Context, id int64, at time.Time) error {
	return t.markAlert(ctx, fmt.Sprintf("mark alert %d sent", id),
		`UPDATE alert_outbox SET state = $2, done_at = $3, last_error = '' WHERE id = $1`, id, string(store.AlertSent), Stamp(at))
}

// MarkAlertRetry implements store.Tx.
func (t *Tx) MarkAlertRetry(ctx context.Context, id int64, attempts int, next time.Time, errText string) error {
	return t.markAlert(ctx, fmt.Sprintf("retry alert %d", id),
		`UPDATE alert_outbox SET state = $2, attempts = $3, next_attempt = $4, last_error = $5, done_at = NULL WHERE id = $1`,
		id, string(store.AlertPending), attempts, Stamp(next), errText)
}

// MarkAlertDead implements store.Tx.
func (t *Tx) MarkAlertDead(ctx context.Context, id int64, attempts int, at time.Time, errText string) error {
	return t.markAlert(ctx, fmt.Sprintf("mark alert %d dead", id),
		`UPDATE alert_outbox SET state = $2, attempts = $3, done_at = $4, last_error = $5 WHERE id = $1`,
		id, string(store.AlertDead), attempts, Stamp(at), errText)
}

// PruneAlerts implements store.Tx.
func (t *Tx) PruneAlerts(ctx context.Context, before time.Time) (int64, error) {
	n, err := t.c.Exec(ctx, `DELETE FROM alert_outbox WHERE state = $1 AND done_at < $2`, string(store.AlertSent), Stamp(before))
	if err != nil {
		return 0, fmt.Errorf("prune alerts: %w", err)
	}
	return n, nil
}

// GetCursor implements store.Reader.
func (t *Tx) GetCursor(ctx context.Context, name string) (int64, error) {
	var pos int64
	found, err := t.one(ctx, `SELECT position FROM cursors WHERE name = $1`, []any{name}, &pos)
	if err != nil {
		return 0, fmt.Errorf("get cursor %q: %w", name, err)
	}
	if !found {
		return 0, fmt.Errorf("cursor %q: %w", name, store.ErrNotFound)
	}
	return pos, nil
}

// PutCursor implements store.Tx.
func (t *Tx) PutCursor(ctx context.Context, name string, position int64) error {
	if name == "" {
		return invalid("put cursor", errors.New("name is empty"))
	}
	if _, err := t.c.Exec(ctx, `INSERT INTO cursors (name, position, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
		name, position, t.clock()); err != nil {
		return fmt.Errorf("put cursor %q: %w", name, err)
	}
	return nil
}
