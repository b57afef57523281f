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

// verify checks the V2 URL signature of a call made at now: all three
// parameters present, the timestamp within the window, the signature
// (any case) over the raw body made with one of keys, and a nonce not
// seen before. The nonce is remembered only for calls that pass every
// other check, so a forged call cannot burn a real one.
func (s *Seller) verify(keys []string, signature, timestamp, nonce string, body []byte, now time.Time) error {
	if signature == "" || timestamp == "" || nonce == "" {
		return errors.New("authentication failed: signature, timestamp and nonce are required")
	}
	if len(nonce) > sign.MaxNonceLen {
		return errors.New("authentication failed: nonce too long")
	}
	t, err := sign.ParseTimestamp(timestamp)
	if err != nil {
		return errors.New("authentication failed: malformed timestamp")
	}
	if d := now.Sub(t); d > window || d < -window {
		return fmt.Errorf("authentication failed: timestamp is %v away from now, more than %v", d.Round(time.Second), window)
	}
	matched := false
	for _, key := range keys {
		want := sign.V2Signature(key, nonce, timestamp, body) // upper-case hex
		if subtle.ConstantTimeCompare([]byte(strings.ToUpper(signature)), []byte(want)) == 1 {
			matched = true
		}
	}
	if !matched {
		return errors.New("authentication failed: signature mismatch")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nonces.remember(nonce, t.Add(window), now)
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
