package main

import (
	"context"
	"fmt"

	"github.com/koobridge/koobridge/store"
)

// openDatabase opens the database --db names: PostgreSQL for postgres://
// and postgresql:// URLs, with the pool settings of the --db-… flags
// (pool_* parameters in the URL win over them), SQLite otherwise. Every
// operation is bounded by store.DefaultOpTimeout, so a database that stops
// answering turns into 000005 answers, not hung calls.
func openDatabase(ctx context.Context, o serveOptions) (*store.DB, error) {
	db, err := store.Open(ctx, o.db,
		store.WithMaxConns(o.dbMaxConns),
		store.WithMinConns(o.dbMinConns),
		store.WithMaxConnLifetime(o.dbConnLifetime),
	)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", store.RedactDSN(o.db), err)
	}
	return db, nil
}

// checkDBPool validates the PostgreSQL pool settings.
func checkDBPool(o *serveOptions) error {
	switch {
	case o.dbMaxConns < 1 || o.dbMaxConns > 1000:
		return usageErrorf("--db-max-conns %d: want 1 to 1000", o.dbMaxConns)
	case o.dbMinConns < 0 || o.dbMinConns > o.dbMaxConns:
		return usageErrorf("--db-min-conns %d: want 0 to --db-max-conns (%d)", o.dbMinConns, o.dbMaxConns)
	case o.dbConnLifetime < minDBConnLifetime:
		return usageErrorf("--db-conn-lifetime %v: want at least %v", o.dbConnLifetime, minDBConnLifetime)
	}
	return nil
}
