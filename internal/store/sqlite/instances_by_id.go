package sqlite

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/koobridge/koobridge/internal/store"
)

// InstancesByID reads the instances with ids in one statement: the ids go
// as one JSON array, so one prepared statement serves any number of them.
func (s *Store) InstancesByID(ctx context.Context, ids []string) (_ []store.Instance, err error) {
	if len(ids) == 0 {
		return nil, nil
	}
	ctx, end := s.bound(ctx)
	defer end(&err)
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read instances: %w", err)
	}
	return queryAll(ctx, s.db, "read instances", instancesByIDQuery, []any{string(list)}, scanInstance)
}

// instancesByIDQuery looks each id up in the primary key.
const instancesByIDQuery = `SELECT ` + instanceColumns + ` FROM instances WHERE id IN (SELECT value FROM json_each(?))`
