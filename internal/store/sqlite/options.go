package sqlite

import (
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// Option changes a setting of the store.
type Option func(*options)

type options struct {
	opTimeout time.Duration
}

func newOptions(opts []Option) options {
	o := options{opTimeout: store.DefaultOpTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithOpTimeout bounds every operation of the store — one read, one write,
// a whole Tx with its function — by d (default store.DefaultOpTimeout):
// when d runs out before the caller's own deadline, the operation fails
// with an error wrapping store.ErrUnavailable. Non-positive values are
// ignored.
//
// A writer that waits for SQLite's write lock waits at most the busy
// timeout (the DSN's _busy_timeout, 5 s by default) or d, whichever ends
// first.
func WithOpTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.opTimeout = d
		}
	}
}
