package sqlite

import (
	"context"
	"fmt"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/koobridge/koobridge/internal/store"
)

const ssoKeyColumns = `generation, kid, algorithm, private_sealed, created_at`

func scanSSOKey(sc scanner) (store.SSOKey, error) {
	var (
		k       store.SSOKey
		created int64
	)
	if err := sc.Scan(&k.Generation, &k.ID, &k.Algorithm, &k.PrivateSealed, &created); err != nil {
		return store.SSOKey{}, err
	}
	k.CreatedAt = fromMS(created)
	return k, nil
}

const ssoRecordColumns = `kind, id, lookup, data, expires_at, created_at, updated_at, version`

func scanSSORecord(sc scanner) (store.SSORecord, error) {
	var (
		r                         store.SSORecord
		expires, created, updated int64
	)
	if err := sc.Scan(&r.Kind, &r.ID, &r.Lookup, &r.Data, &expires, &created, &updated, &r.Version); err != nil {
		return store.SSORecord{}, err
	}
	r.ExpiresAt = fromMS(expires)
	r.CreatedAt = fromMS(created)
	r.UpdatedAt = fromMS(updated)
	return r, nil
}

// SSOKeys lists the provider's signing keys, newest generation first.
func (s *Store) SSOKeys(ctx context.Context) (_ []store.SSOKey, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return queryAll(ctx, s.db, "list sso keys", `SELECT `+ssoKeyColumns+` FROM sso_keys ORDER BY generation DESC`,
		nil, scanSSOKey)
}

// InsertSSOKey inserts k unless a key of its generation or kid exists.
func (s *Store) InsertSSOKey(ctx context.Context, k store.SSOKey) (_ bool, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	res, err := s.exec(ctx, `INSERT INTO sso_keys (`+ssoKeyColumns+`) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		k.Generation, k.ID, k.Algorithm, k.PrivateSealed, ms(or(k.CreatedAt, time.Now())))
	if err != nil {
		return false, fmt.Errorf("sqlite: insert sso key: %w", err)
	}
	return inserted(res, "insert sso key")
}

// InsertSSORecord inserts r unless its (kind, id) or (kind, lookup) is
// taken.
func (s *Store) InsertSSORecord(ctx context.Context, r store.SSORecord) (_ bool, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	now := time.Now()
	res, err := s.exec(ctx, `INSERT INTO sso_records (`+ssoRecordColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, 0)
		ON CONFLICT DO NOTHING`,
		r.Kind, r.ID, r.Lookup, r.Data, ms(r.ExpiresAt), ms(or(r.CreatedAt, now)), ms(or(r.UpdatedAt, now)))
	if err != nil {
		return false, fmt.Errorf("sqlite: insert sso record: %w", err)
	}
	return inserted(res, "insert sso record")
}

// inserted reports whether an INSERT … ON CONFLICT DO NOTHING wrote its row.
func inserted(res interface{ RowsAffected() (int64, error) }, what string) (bool, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: %s: %w", what, mapErr(err))
	}
	return n == 1, nil
}

// SSORecord reads one record; store.ErrNotFound if absent.
func (s *Store) SSORecord(ctx context.Context, kind, id string) (_ store.SSORecord, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return one(ctx, s.db, "read sso record", `SELECT `+ssoRecordColumns+` FROM sso_records
		WHERE kind = ? AND id = ?`, scanSSORecord, kind, id)
}

// SSORecordByLookup reads the record of kind with lookup; store.ErrNotFound
// if absent.
func (s *Store) SSORecordByLookup(ctx context.Context, kind, lookup string) (_ store.SSORecord, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	if lookup == "" {
		return store.SSORecord{}, store.ErrNotFound
	}
	return one(ctx, s.db, "read sso record by lookup", `SELECT `+ssoRecordColumns+` FROM sso_records
		WHERE kind = ? AND lookup = ?`, scanSSORecord, kind, lookup)
}

// UpdateSSORecord writes a record's lookup, data and expiry when its
// version is r.Version.
func (s *Store) UpdateSSORecord(ctx context.Context, r store.SSORecord) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	res, err := s.exec(ctx, `UPDATE sso_records SET lookup = ?, data = ?, expires_at = ?, updated_at = ?,
		version = version + 1 WHERE kind = ? AND id = ? AND version = ?`,
		r.Lookup, r.Data, ms(r.ExpiresAt), ms(or(r.UpdatedAt, time.Now())), r.Kind, r.ID, r.Version)
	if err != nil {
		if sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT {
			return fmt.Errorf("sqlite: update sso record: lookup taken: %w", store.ErrConflict)
		}
		return fmt.Errorf("sqlite: update sso record: %w", err)
	}
	ok, err := inserted(res, "update sso record")
	if err != nil || ok {
		return err
	}
	if _, err := s.SSORecord(ctx, r.Kind, r.ID); err != nil {
		return err
	}
	return store.ErrConflict
}

// DeleteSSORecord deletes one record and reports whether it existed.
func (s *Store) DeleteSSORecord(ctx context.Context, kind, id string) (_ bool, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	res, err := s.exec(ctx, `DELETE FROM sso_records WHERE kind = ? AND id = ?`, kind, id)
	if err != nil {
		return false, fmt.Errorf("sqlite: delete sso record: %w", err)
	}
	return inserted(res, "delete sso record")
}

// DeleteExpiredSSORecords deletes the records that expired at or before
// now.
func (s *Store) DeleteExpiredSSORecords(ctx context.Context, now time.Time) (_ int64, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	res, err := s.exec(ctx, `DELETE FROM sso_records WHERE expires_at <= ?`, ms(now))
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired sso records: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired sso records: %w", mapErr(err))
	}
	return n, nil
}
