package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/koobridge/koobridge/internal/store"
)

const ssoKeyColumns = `generation, kid, algorithm, private_sealed, created_at`

func scanSSOKey(row pgx.Row) (store.SSOKey, error) {
	var (
		k       store.SSOKey
		created *time.Time
	)
	if err := row.Scan(&k.Generation, &k.ID, &k.Algorithm, &k.PrivateSealed, &created); err != nil {
		return store.SSOKey{}, err
	}
	k.CreatedAt = fromTS(created)
	return k, nil
}

const ssoRecordColumns = `kind, id, lookup, data, expires_at, created_at, updated_at, version`

func scanSSORecord(row pgx.Row) (store.SSORecord, error) {
	var (
		r                         store.SSORecord
		expires, created, updated *time.Time
	)
	if err := row.Scan(&r.Kind, &r.ID, &r.Lookup, &r.Data, &expires, &created, &updated, &r.Version); err != nil {
		return store.SSORecord{}, err
	}
	r.ExpiresAt = fromTS(expires)
	r.CreatedAt = fromTS(created)
	r.UpdatedAt = fromTS(updated)
	return r, nil
}

// SSOKeys lists the provider's signing keys, newest generation first.
func (s *Store) SSOKeys(ctx context.Context) (_ []store.SSOKey, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return queryAll(ctx, s.q, "list sso keys", `SELECT `+ssoKeyColumns+` FROM sso_keys ORDER BY generation DESC`,
		nil, scanSSOKey)
}

// InsertSSOKey inserts k unless a key of its generation or kid exists.
func (s *Store) InsertSSOKey(ctx context.Context, k store.SSOKey) (_ bool, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	tag, err := s.q.Exec(ctx, `INSERT INTO sso_keys (`+ssoKeyColumns+`) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
		k.Generation, txt(k.ID), txt(k.Algorithm), txt(k.PrivateSealed), ts(or(k.CreatedAt, time.Now())))
	if err != nil {
		return false, fmt.Errorf("postgres: insert sso key: %w", mapErr(ctx, err))
	}
	return tag.RowsAffected() == 1, nil
}

// InsertSSORecord inserts r unless its (kind, id) or (kind, lookup) is
// taken.
func (s *Store) InsertSSORecord(ctx context.Context, r store.SSORecord) (_ bool, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	now := time.Now()
	tag, err := s.q.Exec(ctx, `INSERT INTO sso_records (`+ssoRecordColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, 0)
		ON CONFLICT DO NOTHING`,
		txt(r.Kind), txt(r.ID), txt(r.Lookup), txt(r.Data), ts(or(r.ExpiresAt, time.Unix(0, 0))),
		ts(or(r.CreatedAt, now)), ts(or(r.UpdatedAt, now)))
	if err != nil {
		return false, fmt.Errorf("postgres: insert sso record: %w", mapErr(ctx, err))
	}
	return tag.RowsAffected() == 1, nil
}

// SSORecord reads one record; store.ErrNotFound if absent.
func (s *Store) SSORecord(ctx context.Context, kind, id string) (_ store.SSORecord, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return one(ctx, s.q, "read sso record", `SELECT `+ssoRecordColumns+` FROM sso_records
		WHERE kind = $1 AND id = $2`, scanSSORecord, txt(kind), txt(id))
}

// SSORecordByLookup reads the record of kind with lookup; store.ErrNotFound
// if absent.
func (s *Store) SSORecordByLookup(ctx context.Context, kind, lookup string) (_ store.SSORecord, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	if lookup == "" {
		return store.SSORecord{}, store.ErrNotFound
	}
	return one(ctx, s.q, "read sso record by lookup", `SELECT `+ssoRecordColumns+` FROM sso_records
		WHERE kind = $1 AND lookup = $2`, scanSSORecord, txt(kind), txt(lookup))
}

// UpdateSSORecord writes a record's lookup, data and expiry when its
// version is r.Version.
func (s *Store) UpdateSSORecord(ctx context.Context, r store.SSORecord) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	tag, err := s.q.Exec(ctx, `UPDATE sso_records SET lookup = $1, data = $2, expires_at = $3, updated_at = $4,
		version = version + 1 WHERE kind = $5 AND id = $6 AND version = $7`,
		txt(r.Lookup), txt(r.Data), ts(or(r.ExpiresAt, time.Unix(0, 0))), ts(or(r.UpdatedAt, time.Now())),
		txt(r.Kind), txt(r.ID), r.Version)
	if err != nil {
		if sqlState(err) == "23505" {
			return fmt.Errorf("postgres: update sso record: lookup taken: %w", store.ErrConflict)
		}
		return fmt.Errorf("postgres: update sso record: %w", mapErr(ctx, err))
	}
	if tag.RowsAffected() == 1 {
		return nil
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
	tag, err := s.q.Exec(ctx, `DELETE FROM sso_records WHERE kind = $1 AND id = $2`, txt(kind), txt(id))
	if err != nil {
		return false, fmt.Errorf("postgres: delete sso record: %w", mapErr(ctx, err))
	}
	return tag.RowsAffected() == 1, nil
}

// DeleteExpiredSSORecords deletes the records that expired at or before
// now.
func (s *Store) DeleteExpiredSSORecords(ctx context.Context, now time.Time) (_ int64, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	tag, err := s.q.Exec(ctx, `DELETE FROM sso_records WHERE expires_at <= $1`, ts(now))
	if err != nil {
		return 0, fmt.Errorf("postgres: delete expired sso records: %w", mapErr(ctx, err))
	}
	return tag.RowsAffected(), nil
}
