package sign

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// NonceStore remembers the nonces of accepted requests so that a replayed
// request is refused.
type NonceStore interface {
	// Remember records nonce as used until expires. It returns an error
	// wrapping ErrReplayedNonce if the nonce is already recorded and not yet
	// expired. Implementations must be safe for concurrent use and must make
	// "check and record" atomic (two concurrent calls with one nonce: exactly
	// one succeeds).
	Remember(ctx context.Context, nonce string, expires time.Time) error
}

// sweepEvery is the fewest inserts between two sweeps of expired nonces.
const sweepEvery = 1024

// MemoryNonces is an in-process NonceStore for a single server. Expired
// nonces are swept as new ones arrive, so memory stays proportional to the
// request rate times the nonce lifetime. Several replicas need a shared
// store instead.
type MemoryNonces struct {
	now func() time.Time

	mu        sync.Mutex
	expires   map[string]time.Time
	inserts   int // since the last sweep
	lastSweep int // map size after the last sweep
}

// NewMemoryNonces returns an empty MemoryNonces that reads time.Now.
func NewMemoryNonces() *MemoryNonces {
	return NewMemoryNoncesWithClock(time.Now)
}

// NewMemoryNoncesWithClock returns an empty MemoryNonces that reads the
// time from now, for tests that move the clock. now must be safe for
// concurrent use.
func NewMemoryNoncesWithClock(now func() time.Time) *MemoryNonces {
	return &MemoryNonces{now: now, expires: make(map[string]time.Time)}
}

// Remember implements NonceStore.
func (m *MemoryNonces) Remember(ctx context.Context, nonce string, expires time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sign: remember nonce: %w", err)
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if until, ok := m.expires[nonce]; ok && now.Before(until) {
		return fmt.Errorf("sign: nonce %q already used, remembered for another %v: %w",
			truncate(nonce), until.Sub(now).Round(time.Millisecond), ErrReplayedNonce)
	}
	m.expires[nonce] = expires
	m.inserts++
	// Sweeping once the inserts since the last sweep reach the size left by
	// it (and at least sweepEvery) keeps the map within about twice the live
	// nonces, and amortises the O(n) sweep to O(1) per insert.
	if m.inserts >= max(sweepEvery, m.lastSweep) {
		m.sweep(now)
	}
	return nil
}

// sweep deletes expired nonces. m.mu must be held.
func (m *MemoryNonces) sweep(now time.Time) {
	for nonce, until := range m.expires {
		if !now.Before(until) {
			delete(m.expires, nonce)
		}
	}
	m.inserts = 0
	m.lastSweep = len(m.expires)
}

// Len returns the number of nonces held, expired ones not yet swept
// included.
func (m *MemoryNonces) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.expires)
}

// truncate shortens a nonce for error messages.
func truncate(s string) string {
	const limit = 16
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}
