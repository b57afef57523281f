package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/koobridge/koobridge/internal/store/migrations"
)

// migrate brings the schema to the latest embedded version. Goose holds a
// PostgreSQL advisory lock (a session lock on one connection) while it
// migrates, so of several replicas starting together one migrates and the
// others find nothing left to do. The lock id is derived from the database
// and the schema, so koobridge deployments in different schemas of one
// database do not wait for each other.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	var database, schema *string
	if err := pool.QueryRow(ctx, `SELECT current_database(), current_schema()`).Scan(&database, &schema); err != nil {
		return fmt.Errorf("postgres: migrate: %w", mapErr(ctx, err))
	}
	if schema == nil {
		return fmt.Errorf("postgres: migrate: no schema of the search_path exists in database %q; create it first", deref(database))
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "koobridge migrations\x00%s\x00%s", deref(database), *schema)
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(int64(h.Sum64()>>1)),
		lock.WithLockTimeout(1, 300), // poll every second for 5 minutes
		lock.WithUnlockTimeout(1, 30),
	)
	if err != nil {
		return fmt.Errorf("postgres: migration lock: %w", err)
	}
	fsys, err := fs.Sub(migrations.Postgres, "postgres")
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithDisableGlobalRegistry(true),
		goose.WithSessionLocker(locker),
	)
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("postgres: migrate schema %q: %w", *schema, mapErr(ctx, err))
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
