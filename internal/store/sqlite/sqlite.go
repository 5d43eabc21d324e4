// Package sqlite is the embedded store: one file, pure Go (modernc.org/sqlite),
// for a single canaryd process. It runs in WAL mode with one writer
// connection, so write transactions are serialised in the process and never
// fail on a lock, while View transactions read concurrently from their own
// connections. The change feed is in-process.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/store"
	"github.com/canaryd/canaryd/internal/store/internal/sqlstore"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Options tune a Store. The zero value is ready to use.
type Options struct {
	// Now is the clock for event times and Updated/Created stamps; nil
	// means time.Now. Tests set it to control event times.
	Now func() time.Time
	// Logger receives migration progress; nil discards.
	Logger *slog.Logger
	// BusyTimeout is how long a statement waits for a lock held by another
	// process using the same file; 0 means 5 s.
	BusyTimeout time.Duration
	// Readers is the number of connections for View; 0 means 4.
	Readers int
}

// Store is the SQLite store. It implements store.Store and is safe for
// concurrent use.
type Store struct {
	w, r *sql.DB
	now  func() time.Time
	feed *sqlstore.Feed
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it if needed) the database file at path and brings
// its schema up to date. It refuses a database whose schema is newer than
// this binary knows.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	return open(ctx, path, opts, 0)
}

// open is Open with the schema brought only up to version upTo (0: latest),
// so tests can build a database of an earlier version.
func open(ctx context.Context, path string, opts Options, upTo int) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, ":memory:") {
		return nil, fmt.Errorf("sqlite: path %q: want a file name without '?' or '#'", path)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.Readers <= 0 {
		opts.Readers = 4
	}
	base := "file:" + path + fmt.Sprintf("?_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)", opts.BusyTimeout.Milliseconds())
	w, err := sql.Open("sqlite", base+"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	// One writer: BEGIN IMMEDIATE on a single connection serialises every
	// write transaction of this process without SQLITE_BUSY.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	s := &Store{w: w, now: opts.Now, feed: sqlstore.NewFeed()}
	if err := s.migrate(ctx, opts.Logger, upTo); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", base+"&_pragma=query_only(1)&_txlock=deferred")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %q for reading: %w", path, err)
	}
	r.SetMaxOpenConns(opts.Readers)
	r.SetMaxIdleConns(opts.Readers)
	s.r = r
	return s, nil
}

func loadMigrations() ([]sqlstore.Migration, error) {
	ms, err := sqlstore.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return ms, nil
}

func (s *Store) migrate(ctx context.Context, log *slog.Logger, upTo int) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	if upTo <= 0 || upTo > len(ms) {
		upTo = len(ms)
	}
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("sqlite: create schema_migrations: %w", err)
	}
	cur, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if cur > len(ms) {
		return fmt.Errorf("sqlite: schema version %d is newer than this binary's %d: upgrade canaryd", cur, len(ms))
	}
	for _, m := range ms[cur:upTo] {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			var v int
			// Another process may have migrated while we waited for the lock.
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
				return err
			}
			if v >= m.Version {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, time.Now().UnixMicro())
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlite: migration %d_%s: %w", m.Version, m.Name, err)
		}
		log.Info("store schema migrated", "store", "sqlite", "version", m.Version, "name", m.Name)
	}
	return nil
}

// SchemaVersion returns the newest migration applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: read schema version: %w", err)
	}
	return v, nil
}

func (s *Store) tx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Update implements store.Store. Write transactions run one at a time.
func (s *Store) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			tx.Rollback()
		}
	}()
	t := sqlstore.NewTx(conn{tx}, s.now, nil)
	if err := fn(t); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	committed = true
	s.feed.Publish(t.Changes()...)
	return nil
}

// View implements store.Store.
func (s *Store) View(ctx context.Context, fn func(r store.Reader) error) error {
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin read: %w", err)
	}
	defer tx.Rollback()
	return fn(sqlstore.NewTx(conn{tx}, s.now, nil))
}

// Subscribe implements store.Store. Changes are delivered in-process only:
// another process writing the same file is not seen.
func (s *Store) Subscribe(ctx context.Context) <-chan store.Change { return s.feed.Subscribe(ctx) }

// Close implements store.Store.
func (s *Store) Close() error {
	s.feed.Close()
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}

// conn adapts a *sql.Tx to sqlstore.Conn: times are INTEGER microseconds
// since the epoch, NULL for the zero time.
type conn struct{ tx *sql.Tx }

func convertArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		if t, ok := a.(time.Time); ok {
			if t.IsZero() {
				out[i] = nil
			} else {
				out[i] = t.UnixMicro()
			}
			continue
		}
		out[i] = a
	}
	return out
}

func (c conn) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := c.tx.ExecContext(ctx, q, convertArgs(args)...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (c conn) Query(ctx context.Context, q string, args ...any) (sqlstore.Rows, error) {
	rows, err := c.tx.QueryContext(ctx, q, convertArgs(args)...)
	if err != nil {
		return nil, err
	}
	return rowsAdapter{rows}, nil
}

type rowsAdapter struct{ *sql.Rows }

func (r rowsAdapter) Close() { r.Rows.Close() }

func (r rowsAdapter) Scan(dest ...any) error {
	// Times are stored as microseconds since the epoch, UTC.
	return sqlstore.ScanTimes(r.Rows.Scan, dest, func(n *sql.NullInt64) time.Time {
		if !n.Valid {
			return time.Time{}
		}
		return time.UnixMicro(n.Int64).UTC()
	})
}
