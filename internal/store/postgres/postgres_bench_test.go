package postgres

import (
	"testing"

	"github.com/canaryd/canaryd/internal/store"
	"github.com/canaryd/canaryd/internal/store/storetest"
)

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store {
		s, err := Open(b.Context(), pg.Database(b), Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	})
}
