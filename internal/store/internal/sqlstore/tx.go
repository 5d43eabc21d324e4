package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/canaryd/canaryd/internal/store"
)

// Tx implements store.Tx over a Conn. One Tx serves one transaction; it is
// not safe for concurrent use (nor is a database transaction).
type Tx struct {
	c   Conn
	now func() time.Time
	// lockEvents, if not nil, is called once before the first event of the
	// transaction is inserted. PostgreSQL takes a transaction-scoped lock
	// there so that event IDs are assigned in commit order.
	lockEvents func(ctx context.Context) error
	locked     bool

	changes []store.Change
	seen    map[store.Change]bool
}

// NewTx returns a Tx that runs its statements on c. now is the store's
// clock; lockEvents may be nil.
func NewTx(c Conn, now func() time.Time, lockEvents func(ctx context.Context) error) *Tx {
	return &Tx{c: c, now: now, lockEvents: lockEvents}
}

// Changes returns the distinct changes written so far, in order.
func (t *Tx) Changes() []store.Change { return t.changes }

func (t *Tx) note(c store.Change) {
	if t.seen == nil {
		t.seen = make(map[store.Change]bool)
	}
	if !t.seen[c] {
		t.seen[c] = true
		t.changes = append(t.changes, c)
	}
}

func (t *Tx) clock() time.Time { return Stamp(t.now()) }

func invalid(op string, err error) error {
	return fmt.Errorf("%s: %w: %w", op, store.ErrInvalid, err)
}

// one runs a query expected to return at most one row and scans it. It
// closes the rows before checking their error, since pgx reports some
// statement errors only then.
func (t *Tx) one(ctx context.Context, q string, args []any, dest ...any) (bool, error) {
	rows, err := t.c.Query(ctx, q, args...)
	if err != nil {
		return false, err
	}
	found := rows.Next()
	if found {
		err = rows.Scan(dest...)
	}
	rows.Close()
	if err == nil {
		err = rows.Err()
	}
	return found && err == nil, err
}

// exists reports whether q returns a row.
func (t *Tx) exists(ctx context.Context, q string, args ...any) (bool, error) {
	var x int
	return t.one(ctx, q, args, &x)
}

// revisionMiss explains why a guarded write changed no row: the record is
// missing (ErrNotFound) or has another revision (ErrConflict).
func (t *Tx) revisionMiss(ctx context.Context, what string, want int64, q string, args ...any) error {
	var got int64
	found, err := t.one(ctx, q, args, &got)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !found {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("%s: revision %d is not current (stored %d): %w", what, want, got, store.ErrConflict)
}

func limit(n int) int {
	if n <= 0 {
		return store.DefaultPageSize
	}
	return min(n, store.MaxPageSize)
}

func nullJSON(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

func rawJSON(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

// args builds a positional argument list and hands out $n placeholders.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// ---- services ----

const serviceCols = `name, canary, traffic, window_offset, used_windows, paused, updated_at, revision`

func scanServices(rows Rows) ([]store.Service, error) {
	defer rows.Close()
	var out []store.Service
	for rows.Next() {
		var s store.Service
		var windows string
		if err := rows.Scan(&s.Name, &s.Canary, &s.Traffic, &s.WindowOffset, &windows, &s.Paused, &s.UpdatedAt, &s.Revision); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(windows), &s.UsedWindows); err != nil {
			return nil, fmt.Errorf("service %q: used_windows: %w", s.Name, err)
		}
		if len(s.UsedWindows) == 0 {
			s.UsedWindows = nil
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// GetService implements store.Reader.
func (t *Tx) GetService(ctx context.Context, name string) (store.Service, error) {
	rows, err := t.c.Query(ctx, `SELECT `+serviceCols+` FROM services WHERE name = $1`, name)
	if err != nil {
		return store.Service{}, fmt.Errorf("get service %q: %w", name, err)
	}
	ss, err := scanServices(rows)
	if err != nil {
		return store.Service{}, fmt.Errorf("get service %q: %w", name, err)
	}
	if len(ss) == 0 {
		return store.Service{}, fmt.Errorf("service %q: %w", name, store.ErrNotFound)
	}
	return ss[0], nil
}

// ListServices implements store.Reader.
func (t *Tx) ListServices(ctx context.Context) ([]store.Service, error) {
	rows, err := t.c.Query(ctx, `SELECT `+serviceCols+` FROM services ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	ss, err := scanServices(rows)
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	return ss, nil
}

// PutService implements store.Tx.
func (t *Tx) PutService(ctx context.Context, s store.Service) (store.Service, error) {
	if err := s.Validate(); err != nil {
		return store.Service{}, invalid("put service", err)
	}
	windows := s.UsedWindows
	if windows == nil {
		windows = []store.Window{}
	}
	wj, err := json.Marshal(windows)
	if err != nil {
		return store.Service{}, fmt.Errorf("put service %q: used_windows: %w", s.Name, err)
	}
	now := t.clock()
	what := fmt.Sprintf("put service %q", s.Name)
	if s.Revision == 0 {
		n, err := t.c.Exec(ctx, `INSERT INTO services (`+serviceCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, 1) ON CONFLICT DO NOTHING`,
			s.Name, s.Canary, s.Traffic, s.WindowOffset, string(wj), s.Paused, now)
		if err != nil {
			return store.Service{}, fmt.Errorf("%s: %w", what, err)
		}
		if n == 0 {
			return store.Service{}, fmt.Errorf("%s: already exists: %w", what, store.ErrConflict)
		}
	} else {
		n, err := t.c.Exec(ctx, `UPDATE services SET canary = $3, traffic = $4, window_offset = $5, used_windows = $6, paused = $7, updated_at = $8, revision = revision + 1
			WHERE name = $1 AND revision = $2`,
			s.Name, s.Revision, s.Canary, s.Traffic, s.WindowOffset, string(wj), s.Paused, now)
		if err != nil {
			return store.Service{}, fmt.Errorf("%s: %w", what, err)
		}
		if n == 0 {
			return store.Service{}, t.revisionMiss(ctx, what, s.Revision, `SELECT revision FROM services WHERE name = $1`, s.Name)
		}
	}
	s.Revision++
	s.UpdatedAt = now
	if len(s.UsedWindows) == 0 {
		s.UsedWindows = nil
	}
	t.note(store.Change{Kind: store.ChangeService, Service: s.Name})
	return s, nil
}

// DeleteService implements store.Tx.
func (t *Tx) DeleteService(ctx context.Context, name string, revision int64) error {
	what := fmt.Sprintf("delete service %q", name)
	if err := t.guardedDelete(ctx, what, revision, `SELECT revision FROM services WHERE name = $1`, name,
		`DELETE FROM endpoints WHERE service = $1`,
		`DELETE FROM builds WHERE service = $1`,
		`DELETE FROM policies WHERE service = $1`,
		`DELETE FROM services WHERE name = $1`); err != nil {
		return err
	}
	t.note(store.Change{Kind: store.ChangeService, Service: name})
	return nil
}

var _ store.Tx = (*Tx)(nil)
