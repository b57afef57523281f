package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// RememberNonce records nonce until expires in one atomic statement: it
// inserts the nonce, or takes over a recorded one that has expired, and
// affects no row when the nonce is recorded and unexpired — a replay.
// Concurrent uses of one nonce, from any replica, queue on the row and
// exactly one succeeds. "Now" is this process's wall clock (time.Now), the
// clock the signature window is checked against, not the database's. A
// nonce counts as expired once now >= its expiry.
func (s *Store) RememberNonce(ctx context.Context, nonce string, expires time.Time) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	tag, err := s.q.Exec(ctx, `INSERT INTO nonces (nonce, expires_at) VALUES ($1, $2)
		ON CONFLICT (nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at
		WHERE nonces.expires_at <= $3`,
		txt(nonce), ts(or(expires, time.Unix(0, 0))), ts(time.Now()))
	if err != nil {
		return fmt.Errorf("postgres: remember nonce: %w", mapErr(ctx, err))
	}
	if tag.RowsAffected() == 0 {
		return store.ErrReplayedNonce
	}
	return nil
}

// DeleteExpiredNonces removes the nonces whose expiry is at or before now
// and reports how many it removed.
func (s *Store) DeleteExpiredNonces(ctx context.Context, now time.Time) (_ int64, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	tag, err := s.q.Exec(ctx, `DELETE FROM nonces WHERE expires_at <= $1`, ts(now))
	if err != nil {
		return 0, fmt.Errorf("postgres: delete expired nonces: %w", mapErr(ctx, err))
	}
	return tag.RowsAffected(), nil
}
