package postgres

import (
	"context"

	"github.com/koobridge/koobridge/internal/store"
)

// InstancesByID reads the instances with ids in one statement.
func (s *Store) InstancesByID(ctx context.Context, ids []string) (_ []store.Instance, err error) {
	if len(ids) == 0 {
		return nil, nil
	}
	ctx, end := s.bound(ctx)
	defer end(&err)
	return queryAll(ctx, s.q, "read instances", `SELECT `+instanceColumns+` FROM instances WHERE id = ANY($1::text[])`,
		[]any{txts(ids)}, scanInstance)
}
