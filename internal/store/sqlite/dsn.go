package sqlite

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// defaultBusyTimeout is how long a connection waits for another writer
// (in this process or another) before giving up with SQLITE_BUSY.
const defaultBusyTimeout = 5 * time.Second

// defaultCacheKiB is each connection's page cache unless the DSN sets
// cache_size.
const defaultCacheKiB = 512

// driverDSN turns a koobridge database setting into a modernc.org/sqlite
// data source name with the connection settings the store relies on, and
// returns the busy timeout in effect.
//
// Accepted forms: "sqlite:path", "sqlite://path" ("sqlite:///abs/path" for
// an absolute path), "file:path?…" (an SQLite URI) and a bare path; each may
// carry driver query parameters. The caller may override _busy_timeout,
// _synchronous, _foreign_keys and the page cache (_pragma=cache_size(…),
// defaultCacheKiB per connection by default); _journal_mode is always WAL
// and _txlock always immediate, because the store's concurrency depends on
// both.
func driverDSN(dsn string) (string, time.Duration, error) {
	s := strings.TrimSpace(dsn)
	switch {
	case strings.HasPrefix(s, "sqlite://"):
		s = strings.TrimPrefix(s, "sqlite://")
	case strings.HasPrefix(s, "sqlite:"):
		s = strings.TrimPrefix(s, "sqlite:")
	}
	path, rawQuery, _ := strings.Cut(s, "?")
	name := strings.TrimPrefix(path, "file:")
	if name == "" {
		return "", 0, errors.New("sqlite: empty database path")
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", 0, fmt.Errorf("sqlite: parse parameters of %q: %w", dsn, err)
	}
	if name == ":memory:" || strings.EqualFold(q.Get("mode"), "memory") {
		// Every pooled connection would get its own empty database.
		return "", 0, errors.New("sqlite: in-memory databases are not supported; use a file (a temporary one in tests)")
	}

	setDefault := func(key, value string, aliases ...string) {
		for _, k := range append([]string{key}, aliases...) {
			if q.Has(k) {
				return
			}
		}
		q.Set(key, value)
	}
	setDefault("_busy_timeout", strconv.FormatInt(defaultBusyTimeout.Milliseconds(), 10), "_timeout")
	setDefault("_synchronous", "NORMAL", "_sync")
	setDefault("_foreign_keys", "1", "_fk")
	// A small page cache per connection: every commit of the writer resets
	// the others' caches in WAL mode, so a large one buys little, while 8
	// connections × SQLite's default 2 MiB were a quarter of the memory of
	// a server with a million instances (bench/RESULTS.md).
	hasCacheSize := false
	for _, p := range q["_pragma"] {
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(p)), "cache_size") {
			hasCacheSize = true
		}
	}
	if !hasCacheSize {
		q.Add("_pragma", fmt.Sprintf("cache_size(-%d)", defaultCacheKiB))
	}
	q.Del("_journal")
	q.Set("_journal_mode", "WAL")
	q.Set("_txlock", "immediate")

	busy := defaultBusyTimeout
	for _, k := range []string{"_busy_timeout", "_timeout"} {
		if v := q.Get(k); v != "" {
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ms < 0 {
				return "", 0, fmt.Errorf("sqlite: invalid %s %q", k, v)
			}
			busy = time.Duration(ms) * time.Millisecond
		}
	}
	return path + "?" + q.Encode(), busy, nil
}

// CheckDSN reports whether Open would accept dsn, without opening it: an
// empty path, an in-memory database and malformed parameters are refused.
func CheckDSN(dsn string) error {
	_, _, err := driverDSN(dsn)
	return err
}
