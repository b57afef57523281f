// Package dbtest opens fresh, empty stores of every dialect for the tests
// of the packages built on the store, so that each runs its tests on
// SQLite and PostgreSQL alike. PostgreSQL comes from pgtest (a schema of
// its own in the database of KOOBRIDGE_TEST_POSTGRES, skipped when that is
// "off"). Production code never imports it.
package dbtest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/postgres"
	"github.com/koobridge/koobridge/internal/store/postgres/pgtest"
	"github.com/koobridge/koobridge/internal/store/sqlite"
)

// Dialect opens a fresh store of one database; the store is closed when
// the test ends.
type Dialect struct {
	Name string
	Open func(t *testing.T) store.Store
}

// Dialects are SQLite (a file in the test's temporary directory) and
// PostgreSQL (a schema of its own).
var Dialects = []Dialect{
	{"sqlite", func(t *testing.T) store.Store {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kb.db"))
		return opened(t, st, err)
	}},
	{"postgres", func(t *testing.T) store.Store {
		st, err := postgres.Open(context.Background(), pgtest.Schema(t, pgtest.DSN(t)))
		return opened(t, st, err)
	}},
}

// opened fails t on an open error and closes the store when t ends.
func opened(t *testing.T, st store.Store, err error) store.Store {
	t.Helper()
	if err != nil {
		t.Fatalf("dbtest: open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
