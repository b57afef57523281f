// Package migrations embeds koobridge's database schema as goose
// migrations, one folder per SQL dialect. SQLite holds the sqlite/ folder,
// Postgres the postgres/ folder. Both describe
// the same tables with the same unique constraints, because idempotency
// rests on those constraints (see package store).
//
// Migrations are numbered files (00001_init.sql, 00002_…) in goose's
// format; the stores run them on open, so a new binary upgrades the
// schema of an existing database.
package migrations

import "embed"

// SQLite holds the SQLite migrations under the directory "sqlite".
// Times are INTEGER Unix milliseconds in UTC, with 0 for the zero time;
// durations are INTEGER microseconds (since version 7; the millisecond
// columns they replaced are still written); booleans are INTEGER 0 or 1.
//
//go:embed sqlite/*.sql
var SQLite embed.FS
