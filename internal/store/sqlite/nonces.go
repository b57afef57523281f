package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// RememberNonce records nonce until expires in one atomic statement: it
// inserts the nonce, or takes over a recorded one that has expired, and
// affects no row when the nonce is recorded and unexpired — a replay.
// "Now" is the wall clock (time.Now), the same clock the signature window
// is checked against. A nonce counts as expired once now >= its expiry.
func (s *Store) RememberNonce(ctx context.Context, nonce string, expires time.Time) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	res, err := s.exec(ctx, `INSERT INTO nonces (nonce, expires_at) VALUES (?, ?)
		ON CONFLICT (nonce) DO UPDATE SET expires_at = excluded.expires_at
		WHERE nonces.expires_at <= ?`,
		nonce, ms(expires), ms(time.Now()))
	if err != nil {
		return fmt.Errorf("sqlite: remember nonce: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: remember nonce: %w", mapErr(err))
	}
	if n == 0 {
		return store.ErrReplayedNonce
	}
	return nil
}

// DeleteExpiredNonces removes the nonces whose expiry is at or before now
// and reports how many it removed.
func (s *Store) DeleteExpiredNonces(ctx context.Context, now time.Time) (_ int64, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	res, err := s.exec(ctx, `DELETE FROM nonces WHERE expires_at <= ?`, ms(now))
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired nonces: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired nonces: %w", mapErr(err))
	}
	return n, nil
}
