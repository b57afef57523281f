package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/koobridge/koobridge/internal/store/migrations"
)

// migrationLockTTL bounds how long a crashed process's migration lock
// blocks others; the longest migration of this schema so far (version 10's
// indexes) takes seconds on a large database.
const migrationLockTTL = time.Minute

// migrate brings the schema to the latest embedded version. Goose has no
// lock for SQLite, so two processes opening a fresh file at once would both
// apply 00001; a lock row serialises them and the second finds nothing to do.
func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations.SQLite, "sqlite")
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys,
		goose.WithDisableGlobalRegistry(true),
		goose.WithLocker(&migrationLock{}),
	)
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", mapErr(err))
	}
	return nil
}

// migrationLock is a goose lock.Locker: a row in its own table, taken with
// one atomic statement, that expires if its holder dies.
type migrationLock struct {
	holder string
}

// Lock waits until it holds the migration lock or ctx is done.
func (l *migrationLock) Lock(ctx context.Context, db *sql.DB) error {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("sqlite: migration lock: %w", err)
	}
	l.holder = hex.EncodeToString(b[:])
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS koobridge_migration_lock (
		id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
		holder TEXT NOT NULL,
		expires_at INTEGER NOT NULL) STRICT`); err != nil {
		return fmt.Errorf("sqlite: migration lock table: %w", mapErr(err))
	}
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		now := time.Now()
		res, err := db.ExecContext(ctx, `INSERT INTO koobridge_migration_lock (id, holder, expires_at)
			VALUES (1, ?, ?)
			ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE koobridge_migration_lock.expires_at <= ?`,
			l.holder, now.Add(migrationLockTTL).UnixMilli(), now.UnixMilli())
		if err != nil {
			return fmt.Errorf("sqlite: migration lock: %w", mapErr(err))
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("sqlite: wait for migration lock: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// Unlock releases the lock if this process still holds it.
func (l *migrationLock) Unlock(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `DELETE FROM koobridge_migration_lock WHERE id = 1 AND holder = ?`, l.holder); err != nil {
		return fmt.Errorf("sqlite: migration unlock: %w", mapErr(err))
	}
	return nil
}
