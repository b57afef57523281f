package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/storetest"
)

// BenchmarkUsage runs the metering benchmarks: the ingestion transaction
// of 1000 records.
func BenchmarkUsage(b *testing.B) {
	storetest.BenchUsage(b, func(b *testing.B) store.Store { return openFile(b, filepath.Join(b.TempDir(), "bench.db")) })
}
