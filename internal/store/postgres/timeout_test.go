package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// TestSilentNetworkBounded: a database that stops answering without
// closing anything (packets dropped) makes a bare statement wait until TCP
// gives up, minutes later. The operation timeout (WithOpTimeout) turns it
// into store.ErrUnavailable, a caller's own shorter deadline stays the
// caller's, and the store works again once the network does.
func TestSilentNetworkBounded(t *testing.T) {
	const opTimeout = 2 * time.Second
	dsn, schema := newSchema(t)
	pdsn, proxy := proxiedDSN(t, dsn)
	s := openStore(t, pdsn, schema, WithMaxConns(2), WithMinConns(1), WithOpTimeout(opTimeout))
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping before the freeze: %v", err)
	}

	proxy.freeze(true)
	ops := map[string]func(ctx context.Context) error{
		"Ping": s.Ping,
		"InsertCall": func(ctx context.Context) error {
			_, err := s.InsertCall(ctx, store.Call{Activity: "frozen"})
			return err
		},
		"Instance": func(ctx context.Context) error {
			_, err := s.Instance(ctx, "frozen")
			return err
		},
		"OrderNotifications": func(ctx context.Context) error {
			_, err := s.OrderNotifications(ctx, store.OrderNotificationFilter{})
			return err
		},
		"ClaimJob": func(ctx context.Context) error {
			_, err := s.ClaimJob(ctx, "w", nil, time.Now(), time.Minute)
			return err
		},
		"Tx": func(ctx context.Context) error {
			return s.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
				_, err := tx.InsertInstance(ctx, store.Instance{ID: "frozen", OrderID: "F", OrderLineID: "F-1", Status: store.StatusProvisioning})
				return err
			})
		},
	}
	for name, op := range ops {
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- op(context.Background()) }()
		select {
		case err := <-done:
			if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "no answer from the database within 2s") {
				t.Errorf("%s on a silent network: %v, want store.ErrUnavailable saying there was no answer within 2s", name, err)
			}
			// The bound, not TCP or the acquire timeout, ended it; the
			// margin allows for a slow machine.
			if took := time.Since(start); took < opTimeout || took > opTimeout+10*time.Second {
				t.Errorf("%s on a silent network took %v, want about %v", name, took, opTimeout)
			}
		case <-time.After(90 * time.Second):
			t.Fatalf("%s on a silent network is still waiting after 90 s", name)
		}
	}

	// A caller whose own deadline comes first gets its own error: the
	// database was not found wanting, the caller gave up.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	_, err := s.InsertCall(ctx, store.Call{Activity: "impatient"})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("InsertCall with the caller's deadline first: %v, want context.DeadlineExceeded and not ErrUnavailable", err)
	}

	proxy.freeze(false)
	proxy.cut(false) // the frozen connections are broken now; new ones go through
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := s.Ping(t.Context())
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping after the network came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := s.Instance(t.Context(), "frozen"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the transaction cut short by the timeout left its row: %v", err)
	}
	calls, err := s.Calls(t.Context(), store.CallFilter{})
	if err != nil || len(calls) != 0 {
		t.Errorf("Calls after the freeze = %d calls, %v; want none (no insert got through)", len(calls), err)
	}
}

// TestOpTimeoutBoundsTx: a transaction whose function outlasts the
// operation timeout is rolled back and reported as store.ErrUnavailable,
// and fn's context carries the deadline.
func TestOpTimeoutBoundsTx(t *testing.T) {
	const opTimeout = 500 * time.Millisecond
	dsn, schema := newSchema(t)
	s := openStore(t, dsn, schema, WithOpTimeout(opTimeout))
	start := time.Now()
	var fnDeadline time.Time
	err := s.Tx(t.Context(), func(ctx context.Context, stx store.Tx) error {
		fnDeadline, _ = ctx.Deadline()
		if _, err := stx.InsertInstance(ctx, store.Instance{ID: "slow", OrderID: "S", OrderLineID: "S-1", Status: store.StatusActive}); err != nil {
			return err
		}
		// A statement of the transaction that takes longer than the bound.
		_, err := stx.(*tx).tx.Exec(ctx, `SELECT pg_sleep(30)`)
		return err
	})
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "no answer from the database within 500ms") {
		t.Errorf("Tx outlasting the operation timeout: %v, want store.ErrUnavailable saying there was no answer within 500ms", err)
	}
	if fnDeadline.IsZero() || fnDeadline.After(start.Add(opTimeout+50*time.Millisecond)) {
		t.Errorf("fn's context deadline %v, want at most %v after the start", fnDeadline.Sub(start), opTimeout)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("Tx took %v, want about %v", took, opTimeout)
	}
	if _, err := s.Instance(t.Context(), "slow"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the transaction cut short by the timeout left its row: %v", err)
	}
}
