package testseller

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/koobridge/koobridge/protocol/sign"
)

// window is the largest accepted |now - timestamp| (saas-v2.md §2.2).
const window = 60 * time.Second

// sweepEvery is how many remembered nonces trigger a sweep of expired ones.
const sweepEvery = 1024

// nonceMemory remembers the nonces of accepted calls until they can no
// longer pass the timestamp window. Guarded by Seller.mu.
type nonceMemory struct {
	expires map[string]time.Time
	inserts int
}

// signatureForm computes one signature a call may carry under key.
type signatureForm func(key, nonce, timestamp string, body []byte) string

// The accepted signatures: V2's URL signature (saas-v2.md §2.2) and the
// Kit x-sign in either canonical form, the spec leaving open which one
// KooGallery sends (§2.3, UNCONFIRMED).
var (
	v2Forms  = []signatureForm{sign.V2Signature}
	kitForms = []signatureForm{sign.KitSignature, sign.KitSignatureHashed}
)

// lax lists the checks a faulty seller skips; the zero lax skips none.
type lax struct{ signature, window, nonce bool }

// verify checks a signed call made at now: signature, timestamp and nonce
// present, the timestamp within the window, the signature (any case) one
// of forms made with one of keys, and a nonce not seen before. The nonce
// is remembered only for calls that pass every other check, so a forged
// call cannot burn a real one. skip names checks a faulty seller leaves
// out.
func (s *Seller) verify(keys []string, forms []signatureForm, signature, timestamp, nonce string, body []byte, now time.Time, skip lax) error {
	if (signature == "" && !skip.signature) || timestamp == "" || nonce == "" {
		return errors.New("authentication failed: signature, timestamp and nonce are required")
	}
	if len(nonce) > sign.MaxNonceLen {
		return errors.New("authentication failed: nonce too long")
	}
	t, err := sign.ParseTimestamp(timestamp)
	if err != nil {
		return errors.New("authentication failed: malformed timestamp")
	}
	if d := now.Sub(t); (d > window || d < -window) && !skip.window {
		return fmt.Errorf("authentication failed: timestamp is %v away from now, more than %v", d.Round(time.Second), window)
	}
	matched := skip.signature
	got := []byte(strings.ToLower(signature))
	for _, key := range keys {
		for _, form := range forms {
			if subtle.ConstantTimeCompare(got, []byte(strings.ToLower(form(key, nonce, timestamp, body)))) == 1 {
				matched = true
			}
		}
	}
	if !matched {
		return errors.New("authentication failed: signature mismatch")
	}
	if skip.nonce {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nonces.remember(nonce, t.Add(window), now)
}

// checkAuthToken compares a received V1 authToken with the one computed
// (saas-v1-joint-login.md §A.2) in constant time. A '+' that arrived
// unescaped in a query decodes to a space; base64 has none, so it is put
// back.
func checkAuthToken(got, want string) error {
	if got == "" {
		return errors.New("authentication failed: authToken is required")
	}
	got = strings.ReplaceAll(got, " ", "+")
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errors.New("authentication failed: authToken mismatch")
	}
	return nil
}

// remember records nonce until expires (at least now + window) and fails
// if it is already recorded.
func (m *nonceMemory) remember(nonce string, expires, now time.Time) error {
	if until, ok := m.expires[nonce]; ok && now.Before(until) {
		return errors.New("authentication failed: replayed nonce")
	}
	if floor := now.Add(window); expires.Before(floor) {
		expires = floor
	}
	m.expires[nonce] = expires
	if m.inserts++; m.inserts >= sweepEvery {
		for n, until := range m.expires {
			if !now.Before(until) {
				delete(m.expires, n)
			}
		}
		m.inserts = 0
	}
	return nil
}
