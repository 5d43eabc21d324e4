// Package sqlstore holds what the SQLite and PostgreSQL stores share: the
// SQL of every Tx method (written once, in the dialect both accept), the
// change feed and the migration loader. Each store supplies a Conn that
// adapts its driver: placeholders are $1, $2, … in both; time.Time
// arguments and *time.Time scan targets are converted by the Conn to the
// column type of its schema (a zero time is NULL).
package sqlstore

import (
	"context"
	"time"
)

// Conn runs statements inside one transaction.
type Conn interface {
	// Exec runs a statement and returns the number of rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Query runs a statement that returns rows. The caller closes them
	// before running the next statement.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
}

// Rows is a result set being read.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Stamp truncates t to what both stores keep (microseconds) in UTC, so a
// value reads back equal to what was written.
func Stamp(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}
