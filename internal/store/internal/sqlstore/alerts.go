package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/canaryd/canaryd/internal/store"
)

// ---- alert channels ----

const channelCols = `id, kind, name, filter, secret, created_at, updated_at, revision`

func scanChannels(rows Rows) ([]store.AlertChannel, error) {
	defer rows.Close()
	var out []store.AlertChannel
	for rows.Next() {
		var c store.AlertChannel
		var filter *string
		if err := rows.Scan(&c.ID, &c.Kind, &c.Name, &filter, &c.Secret, &c.CreatedAt, &c.UpdatedAt, &c.Revision); err != nil {
			return nil, err
		}
		if filter != nil {
			c.Filter = rawJSON(*filter)
		}
		if len(c.Secret) == 0 {
			c.Secret = nil
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// GetAlertChannel implements store.Reader.
func (t *Tx) GetAlertChannel(ctx context.Context, id string) (store.AlertChannel, error) {
	rows, err := t.c.Query(ctx, `SELECT `+channelCols+` FROM alert_channels WHERE id = $1`, id)
	if err != nil {
		return store.AlertChannel{}, fmt.Errorf("get alert channel %q: %w", id, err)
	}
	cs, err := scanChannels(rows)
	if err != nil {
		return store.AlertChannel{}, fmt.Errorf("get alert channel %q: %w", id, err)
	}
	if len(cs) == 0 {
		return store.AlertChannel{}, fmt.Errorf("alert channel %q: %w", id, store.ErrNotFound)
	}
	return cs[0], nil
}

// ListAlertChannels implements store.Reader.
func (t *Tx) ListAlertChannels(ctx context.Context) ([]store.AlertChannel, error) {
	rows, err := t.c.Query(ctx, `SELECT `+channelCols+` FROM alert_channels ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list alert channels: %w", err)
	}
	cs, err := scanChannels(rows)
	if err != nil {
		return nil, fmt.Errorf("list alert channels: %w", err)
	}
	return cs, nil
}

// PutAlertChannel implements store.Tx.
func (t *Tx) PutAlertChannel(ctx context.Context, c store.AlertChannel) (store.AlertChannel, error) {
	if err := c.Validate(); err != nil {
		return store.AlertChannel{}, invalid("put alert channel", err)
	}
	what := fmt.Sprintf("put alert channel %q", c.ID)
	now := t.clock()
	var secret any
	if len(c.Secret) > 0 {
		secret = c.Secret
	}
	if c.Revision == 0 {
		n, err := t.c.Exec(ctx, `INSERT INTO alert_channels (`+channelCols+`) VALUES ($1, $2, $3, $4, $5, $6, $6, 1) ON CONFLICT DO NOTHING`,
			c.ID, c.Kind, c.Name, nullJSON(c.Filter), secret, now)
		if err != nil {
			return store.AlertChannel{}, fmt.Errorf("%s: %w", what, err)
		}
		if n == 0 {
			return store.AlertChannel{}, fmt.Errorf("%s: already exists: %w", what, store.ErrConflict)
		}
		c.CreatedAt = now
	} else {
		found, err := t.one(ctx, `UPDATE alert_channels SET kind = $3, name = $4, filter = $5, secret = $6, updated_at = $7, revision = revision + 1
			WHERE id = $1 AND revision = $2 RETURNING created_at`,
			[]any{c.ID, c.Revision, c.Kind, c.Name, nullJSON(c.Filter), secret, now}, &c.CreatedAt)
		if err != nil {
			return store.AlertChannel{}, fmt.Errorf("%s: %w", what, err)
		}
		if !found {
			return store.AlertChannel{}, t.revisionMiss(ctx, what, c.Revision, `SELECT revision FROM alert_channels WHERE id = $1`, c.ID)
		}
	}
	c.Revision++
	c.UpdatedAt = now
	if len(c.Filter) == 0 {
		c.Filter = nil
	}
	if len(c.Secret) == 0 {
		c.Secret = nil
	}
	t.note(store.Change{Kind: store.ChangeAlertChannel, Key: c.ID})
	return c, nil
}

// DeleteAlertChannel implements store.Tx.
func (t *Tx) DeleteAlertChannel(ctx context.Context, id string, revision int64) error {
	what := fmt.Sprintf("delete alert channel %q", id)
	if err := t.guardedDelete(ctx, what, revision, `SELECT revision FROM alert_channels WHERE id = $1`, id,
		`DELETE FROM alert_channels WHERE id = $1`); err != nil {
		return err
	}
	t.note(store.Change{Kind: store.ChangeAlertChannel, Key: id})
	return nil
}

// ---- idempotency ----

// GetIdempotency implements store.Reader.
func (t *Tx) GetIdempotency(ctx context.Context, key string, now time.Time) (store.Idempotency, error) {
	rec := store.Idempotency{Key: key}
	found, err := t.one(ctx, `SELECT request_hash, status, body, created_at, expires_at FROM idempotency WHERE key = $1 AND expires_at > $2`,
		[]any{key, Stamp(now)}, &rec.RequestHash, &rec.Status, &rec.Body, &rec.CreatedAt, &rec.ExpiresAt)
	if err != nil {
		return store.Idempotency{}, fmt.Errorf("get idempotency key %q: %w", key, err)
	}
	if !found {
		return store.Idempotency{}, fmt.Errorf("idempotency key %q: %w", key, store.ErrNotFound)
	}
	if len(rec.Body) == 0 {
		rec.Body = nil
	}
	return rec, nil
}

// PutIdempotency implements store.Tx.
func (t *Tx) PutIdempotency(ctx context.Context, rec store.Idempotency, now time.Time) error {
	now = Stamp(now)
	exp := Stamp(rec.ExpiresAt)
	switch {
	case rec.Key == "":
		return invalid("put idempotency key", errors.New("key is empty"))
	case !exp.After(now):
		return invalid(fmt.Sprintf("put idempotency key %q", rec.Key), fmt.Errorf("expires_at %s: not after now %s", exp, now))
	}
	what := fmt.Sprintf("put idempotency key %q", rec.Key)
	body := rec.Body
	if body == nil {
		body = []byte{}
	}
	var old time.Time
	found, err := t.one(ctx, `SELECT expires_at FROM idempotency WHERE key = $1`, []any{rec.Key}, &old)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if found && old.After(now) {
		return fmt.Errorf("%s: already stored until %s: %w", what, old, store.ErrConflict)
	}
	var n int64
	if found {
		n, err = t.c.Exec(ctx, `UPDATE idempotency SET request_hash = $2, status = $3, body = $4, created_at = $5, expires_at = $6 WHERE key = $1 AND expires_at <= $5`,
			rec.Key, rec.RequestHash, rec.Status, body, now, exp)
	} else {
		n, err = t.c.Exec(ctx, `INSERT INTO idempotency (key, request_hash, status, body, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
			rec.Key, rec.RequestHash, rec.Status, body, now, exp)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: stored concurrently: %w", what, store.ErrConflict)
	}
	return nil
}

// PurgeIdempotency implements store.Tx.
func (t *Tx) PurgeIdempotency(ctx context.Context, now time.Time) (int64, error) {
	n, err := t.c.Exec(ctx, `DELETE FROM idempotency WHERE expires_at <= $1`, Stamp(now))
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", err)
	}
	return n, nil
}

// ---- leases ----

// GetLease implements store.Reader.
func (t *Tx) GetLease(ctx context.Context, name string) (store.Lease, error) {
	l := store.Lease{Name: name}
	found, err := t.one(ctx, `SELECT holder, epoch, acquired_at, expires_at FROM leases WHERE name = $1`,
		[]any{name}, &l.Holder, &l.Epoch, &l.AcquiredAt, &l.ExpiresAt)
	if err != nil {
		return store.Lease{}, fmt.Errorf("get lease %q: %w", name, err)
	}
	if !found {
		return store.Lease{}, fmt.Errorf("lease %q: %w", name, store.ErrNotFound)
	}
	return l, nil
}

func leaseArgs(op, name, holder string, ttl time.Duration) error {
	var errs []error
	if name == "" {
		errs = append(errs, errors.New("name is empty"))
	}
	if holder == "" {
		errs = append(errs, errors.New("holder is empty"))
	}
	if ttl <= 0 {
		errs = append(errs, fmt.Errorf("ttl %v: not positive", ttl))
	}
	if err := errors.Join(errs...); err != nil {
		return invalid(fmt.Sprintf("%s lease %q", op, name), err)
	}
	return nil
}

// AcquireLease implements store.Tx.
func (t *Tx) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (store.Lease, error) {
	if err := leaseArgs("acquire", name, holder, ttl); err != nil {
		return store.Lease{}, err
	}
	what := fmt.Sprintf("acquire lease %q for %q", name, holder)
	now = Stamp(now)
	exp := Stamp(now.Add(ttl))
	cur, err := t.GetLease(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		n, err := t.c.Exec(ctx, `INSERT INTO leases (name, holder, epoch, acquired_at, expires_at) VALUES ($1, $2, 1, $3, $4) ON CONFLICT DO NOTHING`,
			name, holder, now, exp)
		if err != nil {
			return store.Lease{}, fmt.Errorf("%s: %w", what, err)
		}
		if n == 0 {
			return store.Lease{}, fmt.Errorf("%s: taken concurrently: %w", what, store.ErrConflict)
		}
		t.note(store.Change{Kind: store.ChangeLease, Key: name})
		return store.Lease{Name: name, Holder: holder, Epoch: 1, AcquiredAt: now, ExpiresAt: exp}, nil
	case err != nil:
		return store.Lease{}, fmt.Errorf("%s: %w", what, err)
	case cur.Holder == holder:
		if _, err := t.c.Exec(ctx, `UPDATE leases SET expires_at = $2 WHERE name = $1`, name, exp); err != nil {
			return store.Lease{}, fmt.Errorf("%s: %w", what, err)
		}
		cur.ExpiresAt = exp
		return cur, nil
	case cur.Holder != "" && now.Before(cur.ExpiresAt):
		return cur, fmt.Errorf("%s: held by %q until %s: %w", what, cur.Holder, cur.ExpiresAt.Format(time.RFC3339Nano), store.ErrConflict)
	}
	next := store.Lease{Name: name, Holder: holder, Epoch: cur.Epoch + 1, AcquiredAt: now, ExpiresAt: exp}
	n, err := t.c.Exec(ctx, `UPDATE leases SET holder = $2, epoch = $3, acquired_at = $4, expires_at = $5 WHERE name = $1 AND epoch = $6`,
		name, holder, next.Epoch, now, exp, cur.Epoch)
	if err != nil {
		return store.Lease{}, fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return store.Lease{}, fmt.Errorf("%s: taken concurrently: %w", what, store.ErrConflict)
	}
	t.note(store.Change{Kind: store.ChangeLease, Key: name})
	return next, nil
}

// RenewLease implements store.Tx.
func (t *Tx) RenewLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (store.Lease, error) {
	if err := leaseArgs("renew", name, holder, ttl); err != nil {
		return store.Lease{}, err
	}
	what := fmt.Sprintf("renew lease %q for %q", name, holder)
	cur, err := t.GetLease(ctx, name)
	if err != nil {
		return store.Lease{}, fmt.Errorf("%s: %w", what, err)
	}
	if cur.Holder != holder {
		return cur, fmt.Errorf("%s: held by %q (epoch %d): %w", what, cur.Holder, cur.Epoch, store.ErrConflict)
	}
	cur.ExpiresAt = Stamp(Stamp(now).Add(ttl))
	if _, err := t.c.Exec(ctx, `UPDATE leases SET expires_at = $2 WHERE name = $1 AND epoch = $3`, name, cur.ExpiresAt, cur.Epoch); err != nil {
		return store.Lease{}, fmt.Errorf("%s: %w", what, err)
	}
	return cur, nil
}

// ReleaseLease implements store.Tx.
func (t *Tx) ReleaseLease(ctx context.Context, name, holder string) error {
	what := fmt.Sprintf("release lease %q for %q", name, holder)
	cur, err := t.GetLease(ctx, name)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch cur.Holder {
	case "":
		return nil
	case holder:
	default:
		return fmt.Errorf("%s: held by %q: %w", what, cur.Holder, store.ErrConflict)
	}
	if _, err := t.c.Exec(ctx, `UPDATE leases SET holder = '' WHERE name = $1 AND epoch = $2`, name, cur.Epoch); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	t.note(store.Change{Kind: store.ChangeLease, Key: name})
	return nil
}
