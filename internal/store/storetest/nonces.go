package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// RememberNonce compares expiry with the wall clock, so these tests use
// times relative to time.Now, far enough either side of it.

var nonceTests = []test{
	{"Replay", testNonceReplay},
	{"Expiry", testNonceExpiry},
	{"DeleteExpired", testNonceDeleteExpired},
	{"ConcurrentSameNonce", testNonceConcurrent},
}

func testNonceReplay(t *testing.T, s store.Store) {
	exp := time.Now().Add(time.Hour)
	noErr(t, "first RememberNonce", s.RememberNonce(t.Context(), "n1", exp))
	wantErr(t, "second RememberNonce", s.RememberNonce(t.Context(), "n1", exp), store.ErrReplayedNonce)
	wantErr(t, "RememberNonce with a later expiry", s.RememberNonce(t.Context(), "n1", exp.Add(time.Hour)), store.ErrReplayedNonce)
	noErr(t, "RememberNonce of another nonce", s.RememberNonce(t.Context(), "n2", exp))
}

func testNonceExpiry(t *testing.T, s store.Store) {
	// Recorded with an expiry already past: the next use is not a replay,
	// and it records the nonce afresh.
	noErr(t, "RememberNonce (expired)", s.RememberNonce(t.Context(), "old", time.Now().Add(-time.Minute)))
	noErr(t, "RememberNonce after expiry", s.RememberNonce(t.Context(), "old", time.Now().Add(time.Hour)))
	wantErr(t, "RememberNonce once re-recorded", s.RememberNonce(t.Context(), "old", time.Now().Add(time.Hour)), store.ErrReplayedNonce)
}

func testNonceDeleteExpired(t *testing.T, s store.Store) {
	now := time.Now()
	for i, d := range []time.Duration{-time.Hour, -time.Minute, -time.Second} {
		noErr(t, "RememberNonce", s.RememberNonce(t.Context(), fmt.Sprintf("expired-%d", i), now.Add(d)))
	}
	for i := range 2 {
		noErr(t, "RememberNonce", s.RememberNonce(t.Context(), fmt.Sprintf("live-%d", i), now.Add(time.Hour)))
	}
	n, err := s.DeleteExpiredNonces(t.Context(), now)
	noErr(t, "DeleteExpiredNonces", err)
	if n != 3 {
		t.Errorf("DeleteExpiredNonces removed %d, want 3", n)
	}
	n, err = s.DeleteExpiredNonces(t.Context(), now)
	noErr(t, "DeleteExpiredNonces again", err)
	if n != 0 {
		t.Errorf("second DeleteExpiredNonces removed %d, want 0", n)
	}
	for i := range 2 {
		wantErr(t, "live nonce after cleanup", s.RememberNonce(t.Context(), fmt.Sprintf("live-%d", i), now.Add(time.Hour)), store.ErrReplayedNonce)
	}
	// With a later "now" the live ones go too.
	n, err = s.DeleteExpiredNonces(t.Context(), now.Add(2*time.Hour))
	noErr(t, "DeleteExpiredNonces later", err)
	if n != 2 {
		t.Errorf("DeleteExpiredNonces later removed %d, want 2", n)
	}
}

func testNonceConcurrent(t *testing.T, s store.Store) {
	const n = 50
	errs := make([]error, n)
	exp := time.Now().Add(time.Hour)
	Race(n, func(i int) {
		errs[i] = s.RememberNonce(context.Background(), "hot-nonce", exp)
	})
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrReplayedNonce):
		default:
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent uses of one nonce succeeded, want exactly 1", ok, n)
	}
}
