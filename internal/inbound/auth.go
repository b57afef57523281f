package inbound

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol/sign"
)

// Names of the authentication values of each scheme.
const (
	headerKitSign      = "x-sign"
	headerKitTimestamp = "x-timestamp"
	headerKitNonce     = "x-nonce"
)

// authenticate checks c by f's scheme with the keys of f's type and
// returns the index of the key that matched.
func (s *Server) authenticate(ctx context.Context, f *Family, c *Call) (int, error) {
	v := s.verifiers[f.Keys]
	switch f.Scheme {
	case URLSignature:
		return v.VerifyV2(ctx, c.Query.Get("signature"), c.Query.Get("timestamp"), c.Query.Get("nonce"), c.Body)
	case KitHeaders:
		sig, err := oneHeader(c, headerKitSign)
		if err != nil {
			return -1, err
		}
		ts, err := oneHeader(c, headerKitTimestamp)
		if err != nil {
			return -1, err
		}
		nonce, err := oneHeader(c, headerKitNonce)
		if err != nil {
			return -1, err
		}
		return v.VerifyKit(ctx, sig, ts, nonce, c.Body)
	case V1Token:
		if c.Method == "GET" {
			return v.VerifyAuthTokenQuery(c.Query)
		}
		token, err := oneHeader(c, sign.AuthTokenParam)
		if err != nil {
			return -1, err
		}
		return v.VerifyAuthTokenJSON(token, c.Body)
	}
	return -1, fmt.Errorf("inbound: family %s: unknown scheme: %w", f.Name, sign.ErrSignature)
}

// errRepeatedHeader marks an authentication header given more than once:
// which one to check would be up to us, so the call is refused.
var errRepeatedHeader = errors.New("inbound: authentication header repeated")

// oneHeader returns the single value of header name ("" when absent).
func oneHeader(c *Call, name string) (string, error) {
	vs := c.Header.Values(name)
	if len(vs) > 1 {
		return "", fmt.Errorf("%w: %s given %d times", errRepeatedHeader, name, len(vs))
	}
	if len(vs) == 0 {
		return "", nil
	}
	return vs[0], nil
}

// missing names the authentication values of scheme that c lacks, as
// "query parameter signature, nonce" or "header x-sign"; "" when none is.
func missing(scheme Scheme, c *Call) string {
	var where string
	var names []string
	absent := func(get func(string) string, candidates ...string) {
		for _, n := range candidates {
			if get(n) == "" {
				names = append(names, n)
			}
		}
	}
	switch {
	case scheme == URLSignature:
		where = "query parameter"
		absent(c.Query.Get, "signature", "timestamp", "nonce")
	case scheme == KitHeaders:
		where = "header"
		absent(c.Header.Get, headerKitSign, headerKitTimestamp, headerKitNonce)
	case scheme == V1Token && c.Method == "GET":
		where = "query parameter"
		absent(c.Query.Get, sign.AuthTokenParam, sign.TimeStampParam)
	case scheme == V1Token:
		where = "header"
		absent(c.Header.Get, sign.AuthTokenParam)
	}
	if len(names) == 0 {
		return ""
	}
	return where + " " + strings.Join(names, ", ")
}

// errNonceStore marks a failure to record a nonce (the database is
// unreachable) as opposed to a replay: KooGallery gets 000005 and retries
// instead of an authentication failure it would not retry.
var errNonceStore = errors.New("inbound: nonce store unavailable")

// storeNonces adapts the store's persisted nonces to sign.NonceStore, so a
// replay is caught after a restart and across replicas.
type storeNonces struct{ st store.Nonces }

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
func classifyAuth(err error, missing string, window time.Duration) (authFailure, bool) {
	const prefix = "authentication failed: "
	switch {
	case errors.Is(err, errNonceStore):
		return authFailure{}, false
	case errors.Is(err, errRepeatedHeader):
		return authFailure{"repeated", prefix + strings.TrimPrefix(err.Error(), errRepeatedHeader.Error()+": ")}, true
	case errors.Is(err, sign.ErrMissing):
		what := "authentication value"
		if missing != "" {
			what = missing
		}
		return authFailure{"missing", prefix + "missing " + what}, true
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
	case errors.Is(err, sign.ErrMalformedParams):
		return authFailure{"malformed_params", prefix + "parameters cannot be put in canonical form"}, true
	default:
		// ErrSignature, ErrNoKeys and anything unforeseen: fail closed.
		return authFailure{"signature", prefix + "signature mismatch"}, true
	}
}
