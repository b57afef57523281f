package sign

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Errors returned by the verifiers, wrapped with the reason. Match them
// with errors.Is. Every one of them means "authentication failed" (result
// code 000001) to KooGallery.
var (
	// ErrMissing means a signature, timestamp, nonce or token is absent.
	ErrMissing = errors.New("sign: missing authentication value")
	// ErrSignature means no accepted key produces the signature.
	ErrSignature = errors.New("sign: signature mismatch")
	// ErrStaleTimestamp means the timestamp is older than the window.
	ErrStaleTimestamp = errors.New("sign: stale timestamp")
	// ErrFutureTimestamp means the timestamp is further ahead than the window.
	ErrFutureTimestamp = errors.New("sign: timestamp in the future")
	// ErrMalformedTimestamp means the timestamp is not 13 (ms) or 10 (s) digits.
	ErrMalformedTimestamp = errors.New("sign: malformed timestamp")
	// ErrReplayedNonce means the nonce was already used within its lifetime.
	ErrReplayedNonce = errors.New("sign: replayed nonce")
	// ErrMalformedNonce means the nonce is longer than MaxNonceLen.
	ErrMalformedNonce = errors.New("sign: malformed nonce")
	// ErrNoKeys means the verifier has no keys; it comes wrapped together
	// with ErrSignature so a misconfigured server still fails closed.
	ErrNoKeys = errors.New("sign: no keys configured")
	// ErrMalformedParams means V1 parameters cannot be put in canonical form
	// (a repeated name, a body that is not one JSON object).
	ErrMalformedParams = errors.New("sign: malformed parameters")
	// ErrMalformedBodySign means a Body-Sign header cannot be parsed.
	ErrMalformedBodySign = errors.New("sign: malformed Body-Sign")
)

// DefaultWindow is the largest accepted difference between the request
// timestamp and the local clock, in either direction (saas-v2.md §2.2).
const DefaultWindow = 60 * time.Second

// MaxNonceLen is the longest nonce accepted. Documented nonces are 16 to 64
// characters; the limit keeps a nonce store's rows small.
const MaxNonceLen = 128

// Verifier checks the signatures of KooGallery -> seller requests and fails
// closed: any doubt is an error. The zero value rejects every call (it has
// no keys). A Verifier must not be changed while in use; it is then safe
// for concurrent use if Nonces is.
type Verifier struct {
	// Keys are the accepted keys; several during a rotation. The verify
	// methods return the index of the key that matched. Empty: every call
	// fails with ErrNoKeys and ErrSignature.
	Keys []string

	// Window is the allowed |now - timestamp|, in both directions. Zero or
	// negative means DefaultWindow.
	Window time.Duration

	// Nonces records the nonce of every accepted request. nil turns the
	// replay guard off, which is only for tools and tests.
	Nonces NonceStore

	// Now returns the current time; nil means time.Now. Nonces reads its
	// own clock to expire nonces, so tests that move this one should give
	// the store the same clock (NewMemoryNoncesWithClock).
	Now func() time.Time

	// SortedBodyFallback, when the signature over the raw body fails,
	// retries once over the body re-serialised as JSON with sorted keys and
	// no whitespace (saas-v2.md §2.2: whether KooGallery ever needs this is
	// UNCONFIRMED). It is off by default because KooGallery signs the bytes
	// it sends, the re-serialisation is not unique (number and escape
	// spelling), and it doubles the work an unauthenticated caller can
	// cause. Turn it on only if the console debugging tool shows mismatches.
	SortedBodyFallback bool
}

// VerifyV2 checks a basic-interface (also license and order-notify) call:
// the signature, timestamp and nonce query parameters against the raw
// request body (saas-v2.md §2.2). It returns the index of the matching key.
//
// Checks run in this order: presence, nonce length, timestamp syntax,
// timestamp window, signature under every key, and only then the nonce is
// recorded, so a forged call cannot burn a legitimate nonce. The nonce is
// remembered until timestamp + window, and at least until now + window.
func (v *Verifier) VerifyV2(ctx context.Context, signature, timestamp, nonce string, body []byte) (keyIndex int, err error) {
	return v.verify(ctx, "v2", signature, timestamp, nonce, body, matchV2)
}

// VerifyKit checks a joint-operation Kit call: the x-sign, x-timestamp and
// x-nonce headers against the raw body (saas-v2.md §2.3). Which canonical
// form KooGallery uses is UNCONFIRMED, so both form A (KitSignature) and
// form B (KitSignatureHashed) are accepted. Otherwise it behaves like
// VerifyV2.
func (v *Verifier) VerifyKit(ctx context.Context, signature, timestamp, nonce string, body []byte) (keyIndex int, err error) {
	return v.verify(ctx, "kit", signature, timestamp, nonce, body, matchKit)
}

// VerifyAuthTokenQuery checks a V1 GET call under every key and returns the
// index of the matching key. See the function VerifyAuthTokenQuery: V1 has
// no nonce, and timeStamp age is not checked.
func (v *Verifier) VerifyAuthTokenQuery(q url.Values) (keyIndex int, err error) {
	return verifyAuthTokenQuery(v.Keys, q)
}

// VerifyAuthTokenJSON checks a V1 Kit POST call (token from the authToken
// header) under every key and returns the index of the matching key.
func (v *Verifier) VerifyAuthTokenJSON(token string, body []byte) (keyIndex int, err error) {
	return verifyAuthTokenJSON(v.Keys, token, body)
}

// matchFunc reports whether signature is valid for one key.
type matchFunc func(key, signature, timestamp, nonce string, body []byte) bool

func matchV2(key, signature, timestamp, nonce string, body []byte) bool {
	return equalFoldConstantTime(signature, v2Signature(key, nonce, timestamp, body))
}

func matchKit(key, signature, timestamp, nonce string, body []byte) bool {
	// Evaluate both forms before combining so timing does not tell which
	// one matched.
	a := equalFoldConstantTime(signature, KitSignature(key, nonce, timestamp, body))
	b := equalFoldConstantTime(signature, KitSignatureHashed(key, nonce, timestamp, body))
	return a || b
}

func (v *Verifier) verify(ctx context.Context, what, signature, timestamp, nonce string, body []byte, match matchFunc) (int, error) {
	if len(v.Keys) == 0 {
		return -1, fmt.Errorf("sign: verify %s: %w (%w)", what, ErrNoKeys, ErrSignature)
	}
	var missing []string
	if signature == "" {
		missing = append(missing, "signature")
	}
	if timestamp == "" {
		missing = append(missing, "timestamp")
	}
	if nonce == "" {
		missing = append(missing, "nonce")
	}
	if len(missing) > 0 {
		return -1, fmt.Errorf("sign: verify %s: no %s: %w", what, strings.Join(missing, ", "), ErrMissing)
	}
	if len(nonce) > MaxNonceLen {
		return -1, fmt.Errorf("sign: verify %s: nonce is %d bytes, more than %d: %w", what, len(nonce), MaxNonceLen, ErrMalformedNonce)
	}
	t, err := ParseTimestamp(timestamp)
	if err != nil {
		return -1, fmt.Errorf("sign: verify %s: %w", what, err)
	}
	now, window := v.now(), v.window()
	switch age := now.Sub(t); {
	case age > window:
		return -1, fmt.Errorf("sign: verify %s: timestamp is %v old, window is %v: %w", what, age, window, ErrStaleTimestamp)
	case -age > window:
		return -1, fmt.Errorf("sign: verify %s: timestamp is %v ahead, window is %v: %w", what, -age, window, ErrFutureTimestamp)
	}
	idx := v.matchKeys(match, signature, timestamp, nonce, body)
	if idx < 0 && v.SortedBodyFallback {
		if sorted, ok := sortedJSON(body); ok && !bytes.Equal(sorted, body) {
			idx = v.matchKeys(match, signature, timestamp, nonce, sorted)
		}
	}
	if idx < 0 {
		return -1, fmt.Errorf("sign: verify %s: signature matches none of %d keys: %w", what, len(v.Keys), ErrSignature)
	}
	if v.Nonces != nil {
		expires := t.Add(window)
		if floor := now.Add(window); expires.Before(floor) {
			expires = floor
		}
		if err := v.Nonces.Remember(ctx, nonce, expires); err != nil {
			return -1, fmt.Errorf("sign: verify %s: %w", what, err)
		}
	}
	return idx, nil
}

// matchKeys tries every key, without stopping at the first match so the
// time taken does not reveal which key matched, and returns the index of
// the first matching key or -1.
func (v *Verifier) matchKeys(match matchFunc, signature, timestamp, nonce string, body []byte) int {
	found := -1
	for i, key := range v.Keys {
		if match(key, signature, timestamp, nonce, body) && found < 0 {
			found = i
		}
	}
	return found
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) window() time.Duration {
	if v.Window > 0 {
		return v.Window
	}
	return DefaultWindow
}

// ParseTimestamp parses a V2 request timestamp: 13 decimal digits are Unix
// milliseconds, the documented form. 10 digits are accepted as Unix
// seconds, because some copies of the spec say seconds (license-openapi.md
// §A.6). Anything else, signs included, is ErrMalformedTimestamp.
func ParseTimestamp(s string) (time.Time, error) {
	if len(s) != 13 && len(s) != 10 {
		return time.Time{}, fmt.Errorf("timestamp %q has %d characters, want 13 (ms) or 10 (s): %w", truncate(s), len(s), ErrMalformedTimestamp)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return time.Time{}, fmt.Errorf("timestamp %q is not decimal digits: %w", s, ErrMalformedTimestamp)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil { // cannot happen with at most 13 digits
		return time.Time{}, fmt.Errorf("timestamp %q: %w: %w", s, ErrMalformedTimestamp, err)
	}
	if len(s) == 10 {
		return time.Unix(n, 0), nil
	}
	return time.UnixMilli(n), nil
}

// sortedJSON re-serialises a JSON body with object keys sorted and no
// insignificant whitespace, keeping numbers as written. ok is false if body
// is not JSON.
func sortedJSON(body []byte) (sorted []byte, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var value any
	if err := dec.Decode(&value); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF { // nothing may follow the value
		return nil, false
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // Java serialisers do not escape <, > and &
	if err := enc.Encode(value); err != nil {
		return nil, false
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), true
}
