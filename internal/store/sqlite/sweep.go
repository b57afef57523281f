package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// DeleteCalls deletes at most limit calls of kind created before before,
// oldest first (by the index of its kind, schema version 9), in one statement: one short
// write transaction, so the sweep does not hold the single writer.
func (s *Store) DeleteCalls(ctx context.Context, kind store.CallKind, before time.Time, limit int) (_ int64, err error) {
	cond, err := kind.Condition()
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete calls: %w", err)
	}
	if limit <= 0 {
		return 0, fmt.Errorf("sqlite: delete calls: limit %d is not positive", limit)
	}
	ctx, end := s.bound(ctx)
	defer end(&err)
	res, err := s.exec(ctx, `DELETE FROM calls WHERE id IN (
		SELECT id FROM calls WHERE created_at < ? AND `+cond+` ORDER BY created_at, id LIMIT ?)`,
		ms(before), limit)
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete %s calls: %w", kind, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete %s calls: %w", kind, mapErr(err))
	}
	return n, nil
}
