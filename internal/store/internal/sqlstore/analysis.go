package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/canaryd/canaryd/internal/store"
)

// ---- published analysis: bins, marks and first events of every replica ----

// ListAnalysisBins implements store.Reader.
func (t *Tx) ListAnalysisBins(ctx context.Context, service string, after, through int64) ([]store.AnalysisBin, error) {
	rows, err := t.c.Query(ctx, `SELECT replica, build, bin_end, requests, errors, latency FROM analysis_bins
		WHERE service = $1 AND bin_end > $2 AND bin_end <= $3 ORDER BY bin_end, replica, build`, service, after, through)
	if err != nil {
		return nil, fmt.Errorf("list analysis bins of %q: %w", service, err)
	}
	defer rows.Close()
	var out []store.AnalysisBin
	for rows.Next() {
		b := store.AnalysisBin{Service: service}
		var req, errs int64
		if err := rows.Scan(&b.Replica, &b.Build, &b.End, &req, &errs, &b.Latency); err != nil {
			return nil, fmt.Errorf("list analysis bins of %q: %w", service, err)
		}
		b.Requests, b.Errors = uint64(req), uint64(errs)
		out = append(out, b)
	}
	return out, rows.Err()
}

// ListAnalysisMarks implements store.Reader.
func (t *Tx) ListAnalysisMarks(ctx context.Context, service string) ([]store.AnalysisMark, error) {
	rows, err := t.c.Query(ctx, `SELECT replica, through, at, users, harmed FROM analysis_marks WHERE service = $1 ORDER BY replica`, service)
	if err != nil {
		return nil, fmt.Errorf("list analysis marks of %q: %w", service, err)
	}
	defer rows.Close()
	var out []store.AnalysisMark
	for rows.Next() {
		m := store.AnalysisMark{Service: service}
		if err := rows.Scan(&m.Replica, &m.Through, &m.At, &m.Users, &m.Harmed); err != nil {
			return nil, fmt.Errorf("list analysis marks of %q: %w", service, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// ListAnalysisEvents implements store.Reader.
func (t *Tx) ListAnalysisEvents(ctx context.Context, release string, afterID int64, n int) ([]store.AnalysisEvents, error) {
	rows, err := t.c.Query(ctx, `SELECT id, replica, events, created_at FROM analysis_events
		WHERE release_id = $1 AND id > $2 ORDER BY id LIMIT $3`, release, afterID, limit(n))
	if err != nil {
		return nil, fmt.Errorf("list analysis events of %q: %w", release, err)
	}
	defer rows.Close()
	var out []store.AnalysisEvents
	for rows.Next() {
		e := store.AnalysisEvents{Release: release}
		if err := rows.Scan(&e.ID, &e.Replica, &e.Events, &e.CreatedAt); err != nil {
			return nil, fmt.Errorf("list analysis events of %q: %w", release, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// PublishAnalysis implements store.Tx. It notes no change: publishing is
// not a change of routing state.
func (t *Tx) PublishAnalysis(ctx context.Context, bins []store.AnalysisBin, marks []store.AnalysisMark, events []store.AnalysisEvents) error {
	for _, b := range bins {
		if b.Replica == "" || b.Service == "" || b.Build == "" {
			return invalid("publish analysis", fmt.Errorf("bin of replica %q, service %q, build %q: all three are required", b.Replica, b.Service, b.Build))
		}
		lat := b.Latency
		if lat == nil {
			lat = []byte{}
		}
		if _, err := t.c.Exec(ctx, `INSERT INTO analysis_bins (service, bin_end, replica, build, requests, errors, latency)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (service, bin_end, replica, build) DO UPDATE SET requests = excluded.requests, errors = excluded.errors, latency = excluded.latency`,
			b.Service, b.End, b.Replica, b.Build, int64(b.Requests), int64(b.Errors), lat); err != nil {
			return fmt.Errorf("publish analysis bin of %q: %w", b.Service, err)
		}
	}
	for _, m := range marks {
		if m.Replica == "" || m.Service == "" {
			return invalid("publish analysis", fmt.Errorf("mark of replica %q, service %q: both are required", m.Replica, m.Service))
		}
		if _, err := t.c.Exec(ctx, `INSERT INTO analysis_marks (service, replica, through, at, users, harmed) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (service, replica) DO UPDATE SET through = excluded.through, at = excluded.at,
			users = COALESCE(excluded.users, analysis_marks.users), harmed = COALESCE(excluded.harmed, analysis_marks.harmed)`,
			m.Service, m.Replica, m.Through, Stamp(m.At), blobOrNull(m.Users), blobOrNull(m.Harmed)); err != nil {
			return fmt.Errorf("publish analysis mark of %q: %w", m.Service, err)
		}
	}
	for _, e := range events {
		if e.Release == "" || e.Replica == "" {
			return invalid("publish analysis", errors.New("a batch of events needs its release and replica"))
		}
		if _, err := t.c.Exec(ctx, `INSERT INTO analysis_events (release_id, replica, events, created_at) VALUES ($1, $2, $3, $4)`,
			e.Release, e.Replica, e.Events, t.clock()); err != nil {
			return fmt.Errorf("publish analysis events of %q: %w", e.Release, err)
		}
	}
	return nil
}

// PruneAnalysis implements store.Tx.
func (t *Tx) PruneAnalysis(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	for _, q := range []struct {
		sql string
		arg any
	}{
		{`DELETE FROM analysis_bins WHERE bin_end < $1`, before.Unix()},
		{`DELETE FROM analysis_marks WHERE at < $1`, Stamp(before)},
		{`DELETE FROM analysis_events WHERE created_at < $1 AND release_id NOT IN
			(SELECT id FROM releases WHERE status IN ('` + string(store.ReleaseRunning) + `', '` + string(store.ReleasePaused) + `'))`, Stamp(before)},
	} {
		k, err := t.c.Exec(ctx, q.sql, q.arg)
		if err != nil {
			return n, fmt.Errorf("prune analysis: %w", err)
		}
		n += k
	}
	return n, nil
}

// blobOrNull passes an empty blob as SQL NULL.
func blobOrNull(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
