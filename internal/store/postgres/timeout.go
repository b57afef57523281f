package postgres

import (
	"context"

	"github.com/koobridge/koobridge/internal/store"
)

// bound starts one operation of the store, bounded by the operation
// timeout (store.Bound). Operations inside a Tx are bounded by the Tx's
// deadline.
//
//	ctx, end := s.bound(ctx)
//	defer end(&err)
func (s *Store) bound(ctx context.Context) (context.Context, func(*error)) {
	return store.Bound(ctx, s.opTimeout)
}
