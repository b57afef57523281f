package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Bound starts one operation of a dialect: it returns ctx with a deadline
// at most d away, and end, which the operation defers with its error. end
// releases the deadline and, when that deadline and not the caller's
// ended the operation, wraps the error with ErrUnavailable, so the call is
// answered 000005 and KooGallery retries.
//
//	ctx, end := store.Bound(ctx, s.opTimeout)
//	defer end(&err)
func Bound(ctx context.Context, d time.Duration) (context.Context, func(*error)) {
	bounded, cancel := context.WithTimeout(ctx, d)
	return bounded, func(err *error) {
		if *err != nil && ctx.Err() == nil && bounded.Err() != nil && !errors.Is(*err, ErrUnavailable) {
			*err = fmt.Errorf("%w: no answer from the database within %v: %w", ErrUnavailable, d, *err)
		}
		cancel()
	}
}
