package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/canaryd/canaryd/internal/store"
	"github.com/canaryd/canaryd/internal/store/storetest"
)

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store {
		s, err := Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"), Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	})
}
