package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/storetest"
)

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return openFile(b, filepath.Join(b.TempDir(), "bench.db")) })
}
