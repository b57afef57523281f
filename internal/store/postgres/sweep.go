package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// DeleteCalls deletes at most limit calls of kind created before before,
// oldest first (by the index of its kind, schema version 9), in one statement: one short
// write transaction, so the sweep holds no lock for long.
func (s *Store) DeleteCalls(ctx context.Context, kind store.CallKind, before time.Time, limit int) (_ int64, err error) {
	cond, err := kind.Condition()
	if err != nil {
		return 0, fmt.Errorf("postgres: delete calls: %w", err)
	}
	if limit <= 0 {
		return 0, fmt.Errorf("postgres: delete calls: limit %d is not positive", limit)
	}
	ctx, end := s.bound(ctx)
	defer end(&err)
	tag, err := s.q.Exec(ctx, `DELETE FROM calls WHERE id IN (
		SELECT id FROM calls WHERE created_at < $1 AND `+cond+` ORDER BY created_at, id LIMIT $2)`,
		ts(before), limit)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete %s calls: %w", kind, mapErr(ctx, err))
	}
	return tag.RowsAffected(), nil
}
