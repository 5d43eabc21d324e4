package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/canaryd/canaryd/internal/event"
	"github.com/canaryd/canaryd/internal/store"
)

const eventCols = `id, time, service, type, severity, actor, build, reason, before, after, details`

// AppendEvent implements store.Tx.
func (t *Tx) AppendEvent(ctx context.Context, ev event.Event) (event.Event, error) {
	var errs []error
	if ev.Type == "" {
		errs = append(errs, errors.New("type is empty"))
	}
	if len(ev.Before) > 0 && !json.Valid(ev.Before) {
		errs = append(errs, errors.New("before: not valid JSON"))
	}
	if len(ev.After) > 0 && !json.Valid(ev.After) {
		errs = append(errs, errors.New("after: not valid JSON"))
	}
	if err := errors.Join(errs...); err != nil {
		return event.Event{}, invalid(fmt.Sprintf("append event %q of service %q", ev.Type, ev.Service), err)
	}
	var details any
	if len(ev.Details) > 0 {
		b, err := json.Marshal(ev.Details)
		if err != nil {
			return event.Event{}, fmt.Errorf("append event: details: %w", err)
		}
		details = string(b)
	}
	if t.lockEvents != nil && !t.locked {
		if err := t.lockEvents(ctx); err != nil {
			return event.Event{}, fmt.Errorf("append event: lock: %w", err)
		}
		t.locked = true
	}
	ev.Time = t.clock()
	found, err := t.one(ctx, `INSERT INTO events (time, service, type, severity, actor, build, reason, before, after, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
		[]any{ev.Time, ev.Service, string(ev.Type), string(ev.Severity), ev.Actor, ev.Build, ev.Reason, nullJSON(ev.Before), nullJSON(ev.After), details},
		&ev.ID)
	if err != nil {
		return event.Event{}, fmt.Errorf("append event %q: %w", ev.Type, err)
	}
	if !found {
		return event.Event{}, fmt.Errorf("append event %q: no id returned", ev.Type)
	}
	t.note(store.Change{Kind: store.ChangeEvent, Service: ev.Service, EventID: ev.ID})
	return ev, nil
}

// ListEvents implements store.Reader.
func (t *Tx) ListEvents(ctx context.Context, q store.EventQuery) ([]event.Event, error) {
	var a args
	var where []string
	if q.Service != "" {
		where = append(where, `service = `+a.add(q.Service))
	}
	if q.Build != "" {
		where = append(where, `build = `+a.add(q.Build))
	}
	if len(q.Types) > 0 {
		ph := make([]string, len(q.Types))
		for i, ty := range q.Types {
			ph[i] = a.add(string(ty))
		}
		where = append(where, `type IN (`+strings.Join(ph, ", ")+`)`)
	}
	if !q.Since.IsZero() {
		where = append(where, `time >= `+a.add(Stamp(q.Since)))
	}
	if !q.Until.IsZero() {
		where = append(where, `time < `+a.add(Stamp(q.Until)))
	}
	if q.AfterID > 0 {
		where = append(where, `id > `+a.add(q.AfterID))
	}
	if q.BeforeID > 0 {
		where = append(where, `id < `+a.add(q.BeforeID))
	}
	sql := `SELECT ` + eventCols + ` FROM events`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, ` AND `)
	}
	if q.Desc {
		sql += ` ORDER BY id DESC`
	} else {
		sql += ` ORDER BY id`
	}
	sql += ` LIMIT ` + a.add(limit(q.Limit))
	rows, err := t.c.Query(ctx, sql, a...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []event.Event
	for rows.Next() {
		var ev event.Event
		var typ, sev string
		var before, after, details *string
		if err := rows.Scan(&ev.ID, &ev.Time, &ev.Service, &typ, &sev, &ev.Actor, &ev.Build, &ev.Reason, &before, &after, &details); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		ev.Type, ev.Severity = event.Type(typ), event.Severity(sev)
		if before != nil {
			ev.Before = rawJSON(*before)
		}
		if after != nil {
			ev.After = rawJSON(*after)
		}
		if details != nil && *details != "" {
			if err := json.Unmarshal([]byte(*details), &ev.Details); err != nil {
				return nil, fmt.Errorf("list events: event %d: details: %w", ev.ID, err)
			}
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

// ---- releases ----

const releaseCols = `id, service, build, status, step, traffic, reason, started_at, updated_at, ended_at, state, revision`

func scanReleases(rows Rows) ([]store.Release, error) {
	defer rows.Close()
	var out []store.Release
	for rows.Next() {
		var r store.Release
		var status string
		var state *string
		if err := rows.Scan(&r.ID, &r.Service, &r.Build, &status, &r.Step, &r.Traffic, &r.Reason, &r.StartedAt, &r.UpdatedAt, &r.EndedAt, &state, &r.Revision); err != nil {
			return nil, err
		}
		r.Status = store.ReleaseStatus(status)
		if state != nil {
			r.State = rawJSON(*state)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// GetRelease implements store.Reader.
func (t *Tx) GetRelease(ctx context.Context, id string) (store.Release, error) {
	rows, err := t.c.Query(ctx, `SELECT `+releaseCols+` FROM releases WHERE id = $1`, id)
	if err != nil {
		return store.Release{}, fmt.Errorf("get release %q: %w", id, err)
	}
	rs, err := scanReleases(rows)
	if err != nil {
		return store.Release{}, fmt.Errorf("get release %q: %w", id, err)
	}
	if len(rs) == 0 {
		return store.Release{}, fmt.Errorf("release %q: %w", id, store.ErrNotFound)
	}
	return rs[0], nil
}

// ListReleases implements store.Reader.
func (t *Tx) ListReleases(ctx context.Context, f store.ReleaseFilter) ([]store.Release, error) {
	var a args
	var where []string
	if f.Service != "" {
		where = append(where, `service = `+a.add(f.Service))
	}
	if f.ActiveOnly {
		where = append(where, `status IN (`+a.add(string(store.ReleaseRunning))+`, `+a.add(string(store.ReleasePaused))+`)`)
	}
	q := `SELECT ` + releaseCols + ` FROM releases`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY started_at DESC, id DESC LIMIT ` + a.add(limit(f.Limit))
	rows, err := t.c.Query(ctx, q, a...)
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	rs, err := scanReleases(rows)
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	return rs, nil
}

// PutRelease implements store.Tx.
func (t *Tx) PutRelease(ctx context.Context, r store.Release) (store.Release, error) {
	if err := r.Validate(); err != nil {
		return store.Release{}, invalid("put release", err)
	}
	what := fmt.Sprintf("put release %q", r.ID)
	now := t.clock()
	r.EndedAt = Stamp(r.EndedAt)
	if r.Revision == 0 {
		if r.StartedAt.IsZero() {
			r.StartedAt = now
		}
		r.StartedAt = Stamp(r.StartedAt)
		n, err := t.c.Exec(ctx, `INSERT INTO releases (`+releaseCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1) ON CONFLICT DO NOTHING`,
			r.ID, r.Service, r.Build, string(r.Status), r.Step, r.Traffic, r.Reason, r.StartedAt, now, r.EndedAt, nullJSON(r.State))
		if err != nil {
			return store.Release{}, fmt.Errorf("%s: %w", what, err)
		}
		if n == 0 {
			return store.Release{}, fmt.Errorf("%s: already exists: %w", what, store.ErrConflict)
		}
	} else {
		found, err := t.one(ctx, `UPDATE releases SET service = $3, build = $4, status = $5, step = $6, traffic = $7, reason = $8, updated_at = $9, ended_at = $10, state = $11, revision = revision + 1
			WHERE id = $1 AND revision = $2 RETURNING started_at`,
			[]any{r.ID, r.Revision, r.Service, r.Build, string(r.Status), r.Step, r.Traffic, r.Reason, now, r.EndedAt, nullJSON(r.State)}, &r.StartedAt)
		if err != nil {
			return store.Release{}, fmt.Errorf("%s: %w", what, err)
		}
		if !found {
			return store.Release{}, t.revisionMiss(ctx, what, r.Revision, `SELECT revision FROM releases WHERE id = $1`, r.ID)
		}
	}
	r.Revision++
	r.UpdatedAt = now
	if len(r.State) == 0 {
		r.State = nil
	}
	t.note(store.Change{Kind: store.ChangeRelease, Service: r.Service, Key: r.ID})
	return r, nil
}

// ---- policies ----

func scanPolicies(rows Rows) ([]store.Policy, error) {
	defer rows.Close()
	var out []store.Policy
	for rows.Next() {
		var p store.Policy
		var spec string
		if err := rows.Scan(&p.Service, &spec, &p.UpdatedBy, &p.UpdatedAt, &p.Revision); err != nil {
			return nil, err
		}
		p.Spec = rawJSON(spec)
		out = append(out, p)
	}
	return out, rows.Err()
}

// GetPolicy implements store.Reader.
func (t *Tx) GetPolicy(ctx context.Context, service string) (store.Policy, error) {
	rows, err := t.c.Query(ctx, `SELECT service, spec, updated_by, updated_at, revision FROM policies WHERE service = $1`, service)
	if err != nil {
		return store.Policy{}, fmt.Errorf("get policy %q: %w", service, err)
	}
	ps, err := scanPolicies(rows)
	if err != nil {
		return store.Policy{}, fmt.Errorf("get policy %q: %w", service, err)
	}
	if len(ps) == 0 {
		return store.Policy{}, fmt.Errorf("policy %q: %w", service, store.ErrNotFound)
	}
	return ps[0], nil
}

// ListPolicies implements store.Reader.
func (t *Tx) ListPolicies(ctx context.Context) ([]store.Policy, error) {
	rows, err := t.c.Query(ctx, `SELECT service, spec, updated_by, updated_at, revision FROM policies ORDER BY service`)
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	ps, err := scanPolicies(rows)
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	return ps, nil
}

// PutPolicy implements store.Tx.
func (t *Tx) PutPolicy(ctx context.Context, p store.Policy) (store.Policy, error) {
	if err := p.Validate(); err != nil {
		return store.Policy{}, invalid("put policy", err)
	}
	what := fmt.Sprintf("put policy %q", p.Service)
	now := t.clock()
	if p.Revision == 0 {
		n, err := t.c.Exec(ctx, `INSERT INTO policies (service, spec, updated_by, updated_at, revision) VALUES ($1, $2, $3, $4, 1) ON CONFLICT DO NOTHING`,
			p.Service, string(p.Spec), p.UpdatedBy, now)
		if err != nil {
			return store.Policy{}, fmt.Errorf("%s: %w", what, err)
		}
		if n == 0 {
			return store.Policy{}, fmt.Errorf("%s: already exists: %w", what, store.ErrConflict)
		}
	} else {
		n, err := t.c.Exec(ctx, `UPDATE policies SET spec = $3, updated_by = $4, updated_at = $5, revision = revision + 1 WHERE service = $1 AND revision = $2`,
			p.Service, p.Revision, string(p.Spec), p.UpdatedBy, now)
		if err != nil {
			return store.Policy{}, fmt.Errorf("%s: %w", what, err)
		}
		if n == 0 {
			return store.Policy{}, t.revisionMiss(ctx, what, p.Revision, `SELECT revision FROM policies WHERE service = $1`, p.Service)
		}
	}
	p.Revision++
	p.UpdatedAt = now
	t.note(store.Change{Kind: store.ChangePolicy, Service: p.Service})
	return p, nil
}

// DeletePolicy implements store.Tx.
func (t *Tx) DeletePolicy(ctx context.Context, service string, revision int64) error {
	what := fmt.Sprintf("delete policy %q", service)
	if err := t.guardedDelete(ctx, what, revision, `SELECT revision FROM policies WHERE service = $1`, service, `DELETE FROM policies WHERE service = $1`); err != nil {
		return err
	}
	t.note(store.Change{Kind: store.ChangePolicy, Service: service})
	return nil
}

// guardedDelete runs the dels statements (each taking key as $1) if the
// record sel finds exists and has revision (or revision is 0).
func (t *Tx) guardedDelete(ctx context.Context, what string, revision int64, sel string, key any, dels ...string) error {
	var got int64
	found, err := t.one(ctx, sel, []any{key}, &got)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !found {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	if revision != 0 && revision != got {
		return fmt.Errorf("%s: revision %d is not current (stored %d): %w", what, revision, got, store.ErrConflict)
	}
	for _, del := range dels {
		if _, err := t.c.Exec(ctx, del, key); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}
