// Package open opens the store a config names: sqlite://PATH (the embedded
// default) or postgres://... (shared by many replicas). It is the one place
// that knows the concrete store types, so the rest depends on store.Store.
package open

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/canaryd/canaryd/internal/store"
	"github.com/canaryd/canaryd/internal/store/sqlite"
)

// Store opens the store at url.
func Store(ctx context.Context, url string, log *slog.Logger) (store.Store, error) {
	switch {
	case strings.HasPrefix(url, "sqlite://"):
		path := strings.TrimPrefix(url, "sqlite://")
		s, err := sqlite.Open(ctx, path, sqlite.Options{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", url, err)
		}
		return s, nil
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return nil, fmt.Errorf("store: PostgreSQL support is not built yet; use sqlite://PATH")
	}
	return nil, fmt.Errorf("store %q: want sqlite://PATH or postgres://...", url)
}
