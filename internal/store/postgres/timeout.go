package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/koobridge/koobridge/internal/store"
)

// bound starts one operation of the store: it returns ctx with a deadline
// at most the operation timeout away, and end, which the operation defers
// with its error. end releases the deadline and, when that deadline and
// not the caller's ended the operation, wraps the error with
// store.ErrUnavailable, so the call is answered 000005 and KooGallery
// retries. Operations inside a Tx are bounded by the Tx's deadline.
//
//	ctx, end := s.bound(ctx)
//	defer end(&err)
func (s *Store) bound(ctx context.Context) (context.Context, func(*error)) {
	bounded, cancel := context.WithTimeout(ctx, s.opTimeout)
	return bounded, func(err *error) {
		if *err != nil && ctx.Err() == nil && bounded.Err() != nil && !errors.Is(*err, store.ErrUnavailable) {
			*err = fmt.Errorf("%w: no answer from the database within %v: %w", store.ErrUnavailable, s.opTimeout, *err)
		}
		cancel()
	}
}
