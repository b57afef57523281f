package postgres

import (
	"testing"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/storetest"
)

// BenchmarkStore runs the shared store benchmarks, each on a fresh schema.
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store {
		dsn, schema := newSchema(b)
		return openStore(b, dsn, schema)
	})
}
