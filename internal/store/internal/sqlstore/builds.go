package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/store"
)

const buildCols = `service, id, version, labels, changelog, state, registered_by, registered_at, updated_at, revision`

func (t *Tx) queryBuilds(ctx context.Context, q string, a ...any) ([]store.Build, error) {
	rows, err := t.c.Query(ctx, q, a...)
	if err != nil {
		return nil, err
	}
	var out []store.Build
	func() {
		defer rows.Close()
		for rows.Next() {
			var b store.Build
			var labels string
			if err = rows.Scan(&b.Service, &b.ID, &b.Version, &labels, &b.Changelog, &b.State, &b.RegisteredBy, &b.RegisteredAt, &b.UpdatedAt, &b.Revision); err != nil {
				return
			}
			if err = json.Unmarshal([]byte(labels), &b.Labels); err != nil {
				err = fmt.Errorf("build %s/%s: labels: %w", b.Service, b.ID, err)
				return
			}
			if len(b.Labels) == 0 {
				b.Labels = nil
			}
			out = append(out, b)
		}
		err = rows.Err()
	}()
	if err != nil || len(out) == 0 {
		return out, err
	}
	// Endpoints come in a second query, after the first one's rows are
	// closed (pgx cannot run two statements on one connection at once).
	eq := `SELECT service, build, addr, last_heartbeat, ttl_ms FROM endpoints`
	var ea args
	if len(out) == 1 {
		eq += ` WHERE service = ` + ea.add(out[0].Service) + ` AND build = ` + ea.add(out[0].ID)
	} else if svc := out[0].Service; allSameService(out) {
		eq += ` WHERE service = ` + ea.add(svc)
	}
	eq += ` ORDER BY service, build, addr`
	rows, err = t.c.Query(ctx, eq, ea...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type key struct{ service, build string }
	index := make(map[key]int, len(out))
	for i, b := range out {
		index[key{b.Service, b.ID}] = i
	}
	for rows.Next() {
		var k key
		var e store.Endpoint
		var ttlMS int64
		if err := rows.Scan(&k.service, &k.build, &e.Addr, &e.LastHeartbeat, &ttlMS); err != nil {
			return nil, err
		}
		e.TTL = time.Duration(ttlMS) * time.Millisecond
		if i, ok := index[k]; ok {
			out[i].Endpoints = append(out[i].Endpoints, e)
		}
	}
	return out, rows.Err()
}

func allSameService(bs []store.Build) bool {
	for _, b := range bs[1:] {
		if b.Service != bs[0].Service {
			return false
		}
	}
	return true
}

// GetBuild implements store.Reader.
func (t *Tx) GetBuild(ctx context.Context, service, id string) (store.Build, error) {
	bs, err := t.queryBuilds(ctx, `SELECT `+buildCols+` FROM builds WHERE service = $1 AND id = $2`, service, id)
	if err != nil {
		return store.Build{}, fmt.Errorf("get build %s/%s: %w", service, id, err)
	}
	if len(bs) == 0 {
		return store.Build{}, fmt.Errorf("build %s/%s: %w", service, id, store.ErrNotFound)
	}
	return bs[0], nil
}

// ListBuilds implements store.Reader.
func (t *Tx) ListBuilds(ctx context.Context, f store.BuildFilter) ([]store.Build, error) {
	q := `SELECT ` + buildCols + ` FROM builds`
	var a args
	var where []string
	if f.Service != "" {
		where = append(where, `service = `+a.add(f.Service))
	}
	if len(f.States) > 0 {
		ph := make([]string, len(f.States))
		for i, s := range f.States {
			ph[i] = a.add(string(s))
		}
		where = append(where, `state IN (`+strings.Join(ph, ", ")+`)`)
	}
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY service, registered_at, id`
	bs, err := t.queryBuilds(ctx, q, a...)
	if err != nil {
		return nil, fmt.Errorf("list builds: %w", err)
	}
	return bs, nil
}

// PutBuild implements store.Tx.
func (t *Tx) PutBuild(ctx context.Context, b store.Build) (store.Build, error) {
	if err := b.Validate(); err != nil {
		return store.Build{}, invalid("put build", err)
	}
	what := fmt.Sprintf("put build %s/%s", b.Service, b.ID)
	ok, err := t.exists(ctx, `SELECT 1 FROM services WHERE name = $1`, b.Service)
	if err != nil {
		return store.Build{}, fmt.Errorf("%s: %w", what, err)
	}
	if !ok {
		return store.Build{}, fmt.Errorf("%s: service %q: %w", what, b.Service, store.ErrNotFound)
	}
	// The unique indexes are the last line of defence; checking first
	// returns a clean ErrConflict and keeps a PostgreSQL transaction usable.
	if b.State == store.StateStable || b.State == store.StateCanary {
		var other string
		found, err := t.one(ctx, `SELECT id FROM builds WHERE service = $1 AND state = $2 AND id <> $3`,
			[]any{b.Service, string(b.State), b.ID}, &other)
		if err != nil {
			return store.Build{}, fmt.Errorf("%s: %w", what, err)
		}
		if found {
			return store.Build{}, fmt.Errorf("%s: service %q already has %s build %q: %w", what, b.Service, b.State, other, store.ErrConflict)
		}
	}
	labels := b.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	lj, err := json.Marshal(labels)
	if err != nil {
		return store.Build{}, fmt.Errorf("%s: labels: %w", what, err)
	}
	now := t.clock()
	if b.Revision == 0 {
		if b.RegisteredAt.IsZero() {
			b.RegisteredAt = now
		}
		n, err := t.c.Exec(ctx, `INSERT INTO builds (`+buildCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1) ON CONFLICT DO NOTHING`,
			b.Service, b.ID, b.Version, string(lj), b.Changelog, string(b.State), b.RegisteredBy, Stamp(b.RegisteredAt), now)
		if err != nil {
			return store.Build{}, fmt.Errorf("%s: %w", what, err)
		}
		if n == 0 {
			return store.Build{}, fmt.Errorf("%s: already exists: %w", what, store.ErrConflict)
		}
		for _, e := range b.Endpoints {
			if err := t.putEndpoint(ctx, b.Service, b.ID, e, now); err != nil {
				return store.Build{}, fmt.Errorf("%s: %w", what, err)
			}
		}
	} else {
		n, err := t.c.Exec(ctx, `UPDATE builds SET version = $4, labels = $5, changelog = $6, state = $7, updated_at = $8, revision = revision + 1
			WHERE service = $1 AND id = $2 AND revision = $3`,
			b.Service, b.ID, b.Revision, b.Version, string(lj), b.Changelog, string(b.State), now)
		if err != nil {
			return store.Build{}, fmt.Errorf("%s: %w", what, err)
		}
		if n == 0 {
			return store.Build{}, t.revisionMiss(ctx, what, b.Revision, `SELECT revision FROM builds WHERE service = $1 AND id = $2`, b.Service, b.ID)
		}
	}
	t.note(store.Change{Kind: store.ChangeBuild, Service: b.Service, Key: b.ID})
	return t.GetBuild(ctx, b.Service, b.ID)
}

func (t *Tx) putEndpoint(ctx context.Context, service, build string, e store.Endpoint, now time.Time) error {
	if err := store.ValidateEndpoint(e); err != nil {
		return invalid("endpoint", err)
	}
	hb := Stamp(e.LastHeartbeat)
	if hb.IsZero() {
		hb = now
	}
	_, err := t.c.Exec(ctx, `INSERT INTO endpoints (service, build, addr, last_heartbeat, ttl_ms) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (service, build, addr) DO UPDATE SET last_heartbeat = excluded.last_heartbeat, ttl_ms = excluded.ttl_ms`,
		service, build, e.Addr, hb, e.TTL.Milliseconds())
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", e.Addr, err)
	}
	return nil
}

// PutEndpoint implements store.Tx.
func (t *Tx) PutEndpoint(ctx context.Context, service, build string, e store.Endpoint) error {
	what := fmt.Sprintf("put endpoint %s/%s %q", service, build, e.Addr)
	ok, err := t.exists(ctx, `SELECT 1 FROM builds WHERE service = $1 AND id = $2`, service, build)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !ok {
		return fmt.Errorf("%s: build: %w", what, store.ErrNotFound)
	}
	if err := t.putEndpoint(ctx, service, build, e, t.clock()); err != nil {
		return fmt.Errorf("put endpoint %s/%s: %w", service, build, err)
	}
	t.note(store.Change{Kind: store.ChangeEndpoint, Service: service, Key: build})
	return nil
}

// TouchEndpoint implements store.Tx.
func (t *Tx) TouchEndpoint(ctx context.Context, service, build, addr string, at time.Time) (bool, error) {
	what := fmt.Sprintf("heartbeat %s/%s %q", service, build, addr)
	var last time.Time
	var ttlMS int64
	found, err := t.one(ctx, `SELECT last_heartbeat, ttl_ms FROM endpoints WHERE service = $1 AND build = $2 AND addr = $3`,
		[]any{service, build, addr}, &last, &ttlMS)
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	if !found {
		return false, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	at = Stamp(at)
	if !at.After(last) {
		return false, nil // late or repeated heartbeat: nothing to move
	}
	prev := store.Endpoint{Addr: addr, LastHeartbeat: last, TTL: time.Duration(ttlMS) * time.Millisecond}
	revived := !prev.Alive(at)
	if _, err := t.c.Exec(ctx, `UPDATE endpoints SET last_heartbeat = $4 WHERE service = $1 AND build = $2 AND addr = $3`,
		service, build, addr, at); err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	if revived {
		t.note(store.Change{Kind: store.ChangeEndpoint, Service: service, Key: build})
	}
	return revived, nil
}

// DeleteEndpoint implements store.Tx.
func (t *Tx) DeleteEndpoint(ctx context.Context, service, build, addr string) error {
	what := fmt.Sprintf("delete endpoint %s/%s %q", service, build, addr)
	n, err := t.c.Exec(ctx, `DELETE FROM endpoints WHERE service = $1 AND build = $2 AND addr = $3`, service, build, addr)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	t.note(store.Change{Kind: store.ChangeEndpoint, Service: service, Key: build})
	return nil
}
