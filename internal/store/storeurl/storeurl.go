// Package storeurl opens a store from the URL in canaryd's config:
// sqlite://PATH (relative, or absolute with a third slash:
// sqlite:///var/lib/canaryd/canaryd.db) or postgres://… / postgresql://…
// (any connection URL pgx accepts, e.g. with ?sslmode=require or
// &pool_max_conns=10). Only cmd/canaryd and tests need it: everything else
// takes a store.Store.
package storeurl

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/store"
	"github.com/canaryd/canaryd/internal/store/postgres"
	"github.com/canaryd/canaryd/internal/store/sqlite"
)

// Options are passed on to the store. The zero value is ready to use.
type Options struct {
	Now    func() time.Time // nil: time.Now
	Logger *slog.Logger     // nil: discard
}

// Open opens the store url names and migrates its schema. The error never
// contains the URL's password.
func Open(ctx context.Context, url string, o Options) (store.Store, error) {
	switch {
	case strings.HasPrefix(url, "sqlite://"):
		path := strings.TrimPrefix(url, "sqlite://")
		s, err := sqlite.Open(ctx, path, sqlite.Options{Now: o.Now, Logger: o.Logger})
		if err != nil {
			return nil, err
		}
		return s, nil
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		s, err := postgres.Open(ctx, url, postgres.Options{Now: o.Now, Logger: o.Logger})
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", Redact(url), err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("store %q: %w: want sqlite://PATH or postgres://…", Redact(url), store.ErrInvalid)
}

// Redact returns url with its password (in the user info or a password=
// query parameter) replaced by "xxx", for error messages and logs.
func Redact(url string) string {
	if i := strings.Index(url, "password="); i >= 0 {
		j := strings.IndexAny(url[i:], "&#")
		if j < 0 {
			j = len(url) - i
		}
		url = url[:i] + "password=xxx" + url[i+j:]
	}
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return url
	}
	hostEnd := strings.IndexAny(rest, "/?#")
	if hostEnd < 0 {
		hostEnd = len(rest)
	}
	at := strings.LastIndex(rest[:hostEnd], "@")
	if at < 0 {
		return url
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return url
	}
	return scheme + "://" + user + ":xxx" + rest[at:]
}
