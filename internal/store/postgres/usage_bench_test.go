package postgres

import (
	"testing"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/storetest"
)

// BenchmarkUsage runs the metering benchmarks (the ingestion transaction
// of 1000 records), each on a fresh schema.
func BenchmarkUsage(b *testing.B) {
	storetest.BenchUsage(b, func(b *testing.B) store.Store {
		dsn, schema := newSchema(b)
		return openStore(b, dsn, schema)
	})
}
