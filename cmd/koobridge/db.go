package main

import (
	"context"
	"fmt"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/postgres"
	"github.com/koobridge/koobridge/internal/store/sqlite"
)

// openDatabase opens the store --db names: PostgreSQL for postgres:// and
// postgresql:// URLs, with the pool settings of the --db-… flags (pool_*
// parameters in the URL win over them), SQLite otherwise. Every operation is
// bounded by store.DefaultOpTimeout, so a database that stops answering
// turns into 000005 answers, not hung calls.
func openDatabase(ctx context.Context, o serveOptions) (store.Store, error) {
	if postgres.IsDSN(o.db) {
		st, err := postgres.Open(ctx, o.db,
			postgres.WithMaxConns(o.dbMaxConns),
			postgres.WithMinConns(o.dbMinConns),
			postgres.WithMaxConnLifetime(o.dbConnLifetime),
		)
		if err != nil {
			return nil, fmt.Errorf("open database %s: %w", postgres.RedactDSN(o.db), err)
		}
		return store.WithTimeout(st, store.DefaultOpTimeout), nil
	}
	st, err := sqlite.Open(ctx, o.db)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", o.db, err)
	}
	return store.WithTimeout(st, store.DefaultOpTimeout), nil
}

// redactDSN shows the database setting without a password, for the log.
func redactDSN(dsn string) string {
	if postgres.IsDSN(dsn) {
		return postgres.RedactDSN(dsn)
	}
	return dsn
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
