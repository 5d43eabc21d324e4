// Package postgres is the shared store for many canaryd replicas, on
// PostgreSQL through pgx (pgxpool).
//
// Write transactions run at SERIALIZABLE isolation and are retried when
// PostgreSQL reports a serialization failure or a deadlock, so two replicas
// can never interleave a read-modify-write. Events are inserted under a
// transaction-scoped advisory lock, so their IDs grow in commit order and a
// reader following the log by ID never skips one. Changes are announced
// with NOTIFY inside the transaction (delivered only on commit) and every
// Store, on every replica, LISTENs on a dedicated connection.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/canaryd/canaryd/internal/store"
	"github.com/canaryd/canaryd/internal/store/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Channel is the LISTEN/NOTIFY channel every replica uses.
const Channel = "canaryd_changes"

// Advisory lock keys (arbitrary, fixed): one serialises migrations across
// replicas starting together, one orders event IDs by commit.
const (
	migrationLockKey int64 = 0x63616e6172790001
	eventLockKey     int64 = 0x63616e6172790002
)

// Options tune a Store. The zero value is ready to use.
type Options struct {
	// Now is the clock for event times and Updated/Created stamps; nil
	// means time.Now.
	Now func() time.Time
	// Logger receives migration progress and change-feed reconnects; nil
	// discards.
	Logger *slog.Logger
	// MaxAttempts bounds how often Update runs a transaction that keeps
	// losing serialization races; 0 means 20.
	MaxAttempts int
}

// Store is the PostgreSQL store. It implements store.Store and is safe for
// concurrent use.
type Store struct {
	pool        *pgxpool.Pool
	now         func() time.Time
	log         *slog.Logger
	maxAttempts int
	feed        *sqlstore.Feed
	stop        context.CancelFunc
	done        chan struct{}
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at dsn (a libpq connection string or URL),
// brings its schema up to date and starts listening for changes. It
// refuses a database whose schema is newer than this binary knows. Open
// returns once LISTEN is active, so a subscriber sees every change
// committed after Subscribe returns.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	return open(ctx, dsn, opts, 0)
}

// open is Open with the schema brought only up to version upTo (0: latest).
func open(ctx context.Context, dsn string, opts Options, upTo int) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 20
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse dsn: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	s := &Store{pool: pool, now: opts.Now, log: opts.Logger, maxAttempts: opts.MaxAttempts, feed: sqlstore.NewFeed(), done: make(chan struct{})}
	if err := s.migrate(ctx, upTo); err != nil {
		pool.Close()
		return nil, err
	}
	lctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	first := make(chan error, 1)
	go s.listen(lctx, cfg.ConnConfig, first)
	select {
	case err = <-first:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		stop()
		<-s.done
		pool.Close()
		return nil, fmt.Errorf("postgres: listen for changes: %w", err)
	}
	return s, nil
}

func loadMigrations() ([]sqlstore.Migration, error) {
	ms, err := sqlstore.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return ms, nil
}

// migrate applies one migration per transaction, each under an advisory
// lock, so replicas starting together apply every step exactly once.
func (s *Store) migrate(ctx context.Context, upTo int) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	if upTo <= 0 || upTo > len(ms) {
		upTo = len(ms)
	}
	for {
		done := false
		var applied sqlstore.Migration
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
				return err
			}
			var cur int
			if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
				return err
			}
			if cur > len(ms) {
				return fmt.Errorf("schema version %d is newer than this binary's %d: upgrade canaryd", cur, len(ms))
			}
			if cur >= upTo {
				done = true
				return nil
			}
			applied = ms[cur]
			if _, err := tx.Exec(ctx, applied.SQL); err != nil {
				return fmt.Errorf("migration %d_%s: %w", applied.Version, applied.Name, err)
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, applied.Version, applied.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: migrate: %w", err)
		}
		if done {
			return nil
		}
		s.log.Info("store schema migrated", "store", "postgres", "version", applied.Version, "name", applied.Name)
	}
}

// SchemaVersion returns the newest migration applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("postgres: read schema version: %w", err)
	}
	return v, nil
}

// retryable reports a transaction that failed only because of a concurrent
// one: serialization failure or deadlock.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// Update implements store.Store. fn may run more than once: see
// store.Store.Update.
func (s *Store) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.attempt(ctx, fn)
		if err == nil || !retryable(err) {
			return err
		}
		if attempt >= s.maxAttempts {
			return fmt.Errorf("postgres: gave up after %d attempts racing concurrent writers: %w: %w", attempt, store.ErrConflict, err)
		}
		// Jittered, growing pause so racing replicas fall out of step.
		pause := time.Duration(rand.Int64N(int64(time.Millisecond)*int64(min(attempt, 10)))) + time.Millisecond
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Store) attempt(ctx context.Context, fn func(tx store.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // no-op after Commit
	lockEvents := func(ctx context.Context) error {
		_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, eventLockKey)
		return err
	}
	t := sqlstore.NewTx(conn{tx}, s.now, lockEvents)
	if err := fn(t); err != nil {
		return err
	}
	for _, c := range t.Changes() {
		payload, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("postgres: encode change: %w", err)
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, string(payload)); err != nil {
			return fmt.Errorf("postgres: notify: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// View implements store.Store: a read-only REPEATABLE READ transaction,
// one snapshot for everything fn reads.
func (s *Store) View(ctx context.Context, fn func(r store.Reader) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("postgres: begin read: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	return fn(sqlstore.NewTx(conn{tx}, s.now, nil))
}

// Subscribe implements store.Store. Changes committed by any process on
// the same database are delivered. After the listening connection is lost
// and re-established, subscribers get a ChangeResync.
func (s *Store) Subscribe(ctx context.Context) <-chan store.Change { return s.feed.Subscribe(ctx) }

// listen keeps one connection LISTENing and republishes what arrives. The
// outcome of the first LISTEN goes to first; later failures reconnect with
// backoff.
func (s *Store) listen(ctx context.Context, cfg *pgx.ConnConfig, first chan<- error) {
	defer close(s.done)
	backoff := 100 * time.Millisecond
	for {
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			if _, err = c.Exec(ctx, "LISTEN "+Channel); err != nil {
				c.Close(context.Background())
			}
		}
		if first != nil {
			first <- err
			first = nil
			if err != nil {
				return
			}
		} else if err == nil {
			// Notifications sent while we were away are lost.
			s.feed.Publish(store.Change{Kind: store.ChangeResync})
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			err = s.receive(ctx, c)
			c.Close(context.Background())
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("store change feed: connection lost; reconnecting", "err", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (s *Store) receive(ctx context.Context, c *pgx.Conn) error {
	for {
		n, err := c.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var ch store.Change
		if err := json.Unmarshal([]byte(n.Payload), &ch); err != nil || ch.Kind == "" {
			s.log.Warn("store change feed: bad payload; asking subscribers to resync", "payload", n.Payload, "err", err)
			ch = store.Change{Kind: store.ChangeResync}
		}
		s.feed.Publish(ch)
	}
}

// Close implements store.Store.
func (s *Store) Close() error {
	s.stop()
	<-s.done
	s.feed.Close()
	s.pool.Close()
	return nil
}

// conn adapts a pgx.Tx to sqlstore.Conn: a zero time.Time is NULL, and
// times read back in UTC.
type conn struct{ tx pgx.Tx }

func convertArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		if t, ok := a.(time.Time); ok {
			if t.IsZero() {
				out[i] = nil
			} else {
				out[i] = t.UTC()
			}
			continue
		}
		out[i] = a
	}
	return out
}

// classify marks a unique or foreign-key violation as ErrConflict. The
// shared SQL checks before it writes, so this is only the backstop for a
// race the checks could not see; the transaction is aborted by then.
func classify(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "23503") {
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	}
	return err
}

func (c conn) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := c.tx.Exec(ctx, q, convertArgs(args)...)
	if err != nil {
		return 0, classify(err)
	}
	return tag.RowsAffected(), nil
}

func (c conn) Query(ctx context.Context, q string, args ...any) (sqlstore.Rows, error) {
	rows, err := c.tx.Query(ctx, q, convertArgs(args)...)
	if err != nil {
		return nil, classify(err)
	}
	return rowsAdapter{rows}, nil
}

type rowsAdapter struct{ pgx.Rows }

func (r rowsAdapter) Err() error { return classify(r.Rows.Err()) }

func (r rowsAdapter) Scan(dest ...any) error {
	return sqlstore.ScanTimes(r.Rows.Scan, dest, func(ts *pgtype.Timestamptz) time.Time {
		if !ts.Valid {
			return time.Time{}
		}
		return ts.Time.UTC()
	})
}
