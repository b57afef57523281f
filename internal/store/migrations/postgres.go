package migrations

import "embed"

// Postgres holds the PostgreSQL migrations under the directory "postgres".
// Times are timestamptz with NULL for the zero time; durations are bigint
// microseconds (since version 7; the millisecond columns they replaced are
// still written); booleans are boolean; payloads and stored responses are
// bytea; ids of the ledger, the job queue and order notifications are
// bigint identities.
//
//go:embed postgres/*.sql
var Postgres embed.FS
