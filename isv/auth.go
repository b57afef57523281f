package isv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol/sign"
)

// errNonceStore marks a failure to record a nonce (the database is
// unreachable) as opposed to a replay: KooGallery gets 000005 and retries
// instead of an authentication failure it would not retry.
var errNonceStore = errors.New("isv: nonce store unavailable")

// storeNonces adapts the store's persisted nonces to sign.NonceStore, so a
// replay is caught after a restart and across replicas.
type storeNonces struct{ st store.Store }

// Remember implements sign.NonceStore.
func (n storeNonces) Remember(ctx context.Context, nonce string, expires time.Time) error {
	// The nonce write must not be abandoned half way by a client hanging up.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := n.st.RememberNonce(ctx, nonce, expires)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrReplayedNonce):
		return sign.ErrReplayedNonce
	default:
		return fmt.Errorf("%w: %w", errNonceStore, err)
	}
}

// authFailure is a rejected call: the reason label for metrics and the
// message for the caller. The message names the failed check and never a
// key.
type authFailure struct {
	reason string
	msg    string
}

// classifyAuth maps a verifier error to the failure it reports. ok is
// false for errors that are not authentication failures (the nonce store
// is down), which the caller answers with 000005.
func classifyAuth(err error, missing []string, window time.Duration) (authFailure, bool) {
	const prefix = "authentication failed: "
	switch {
	case errors.Is(err, errNonceStore):
		return authFailure{}, false
	case errors.Is(err, sign.ErrMissing):
		what := "signature, timestamp or nonce"
		if len(missing) > 0 {
			what = strings.Join(missing, ", ")
		}
		return authFailure{"missing", prefix + "missing query parameter " + what}, true
	case errors.Is(err, sign.ErrMalformedTimestamp):
		return authFailure{"malformed_timestamp", prefix + "timestamp is not Unix milliseconds"}, true
	case errors.Is(err, sign.ErrMalformedNonce):
		return authFailure{"malformed_nonce", prefix + fmt.Sprintf("nonce longer than %d characters", sign.MaxNonceLen)}, true
	case errors.Is(err, sign.ErrStaleTimestamp):
		return authFailure{"stale_timestamp", prefix + fmt.Sprintf("stale timestamp (older than %v)", window)}, true
	case errors.Is(err, sign.ErrFutureTimestamp):
		return authFailure{"future_timestamp", prefix + fmt.Sprintf("timestamp in the future (more than %v ahead)", window)}, true
	case errors.Is(err, sign.ErrReplayedNonce):
		return authFailure{"replayed_nonce", prefix + "replayed nonce"}, true
	default:
		// ErrSignature, ErrNoKeys and anything unforeseen: fail closed.
		return authFailure{"signature", prefix + "signature mismatch"}, true
	}
}
