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

// ScanTimes scans a row with scan, for a driver that cannot fill a
// *time.Time itself: each *time.Time in dest is scanned into a fresh *T and
// then set with toTime (which returns the zero time for NULL). Other
// destinations are passed through.
func ScanTimes[T any](scan func(dest ...any) error, dest []any, toTime func(*T) time.Time) error {
	var times []*time.Time
	var tmps []*T
	d := dest
	for i, x := range dest {
		if tp, ok := x.(*time.Time); ok {
			if times == nil {
				d = append([]any(nil), dest...)
			}
			tmp := new(T)
			d[i] = tmp
			times = append(times, tp)
			tmps = append(tmps, tmp)
		}
	}
	if err := scan(d...); err != nil {
		return err
	}
	for i, tp := range times {
		*tp = toTime(tmps[i])
	}
	return nil
}
