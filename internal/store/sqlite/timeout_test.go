package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// TestOpTimeoutLockedByAnotherProcess: another process holds SQLite's
// write lock for longer than the operation timeout, which is shorter than
// the busy timeout. Every write ends when the operation timeout does, with
// store.ErrUnavailable saying so; reads go on (WAL); a caller's own shorter
// deadline stays the caller's.
func TestOpTimeoutLockedByAnotherProcess(t *testing.T) {
	const opTimeout = 300 * time.Millisecond
	path := filepath.Join(t.TempDir(), "optimeout.db")
	s, err := Open(t.Context(), path+"?_busy_timeout=20000", WithOpTimeout(opTimeout))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	if _, err := s.InsertCall(ctx, store.Call{Activity: "before"}); err != nil {
		t.Fatal(err)
	}

	holdWriteLock(t, path)
	writes := map[string]func(context.Context) error{
		"InsertCall": func(ctx context.Context) error {
			_, err := s.InsertCall(ctx, store.Call{Activity: "blocked"})
			return err
		},
		"RememberNonce": func(ctx context.Context) error {
			return s.RememberNonce(ctx, "blocked", time.Now().Add(time.Hour))
		},
		"ClaimJob": func(ctx context.Context) error {
			_, err := s.ClaimJob(ctx, "w", nil, time.Now(), time.Minute)
			return err
		},
		"Tx": func(ctx context.Context) error {
			return s.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
				_, err := tx.InsertOrderNotification(ctx, store.OrderNotification{OrderID: "O", OrderLineID: "O-1"})
				return err
			})
		},
	}
	for name, write := range writes {
		start := time.Now()
		err := write(context.Background())
		took := time.Since(start)
		if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "no answer from the database within 300ms") {
			t.Errorf("%s while another process holds the write lock: %v, want store.ErrUnavailable saying there was no answer within 300ms", name, err)
		}
		// Ended by the operation timeout, not the 20 s busy timeout.
		if took < opTimeout || took > 10*time.Second {
			t.Errorf("%s took %v, want about %v", name, took, opTimeout)
		}
	}
	if calls, err := s.Calls(ctx, store.CallFilter{}); err != nil || len(calls) != 1 {
		t.Errorf("Calls while locked = %d calls, %v; want 1, nil", len(calls), err)
	}

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err = writes["InsertCall"](short)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("InsertCall with the caller's deadline first: %v, want context.DeadlineExceeded and not ErrUnavailable", err)
	}
}

// TestOpTimeoutBoundsTx: a transaction of this process that outlasts the
// operation timeout is ended and rolled back, fn's context carries the
// deadline, and a writer queued behind it is bounded too.
func TestOpTimeoutBoundsTx(t *testing.T) {
	const opTimeout = 300 * time.Millisecond
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "txtimeout.db"), WithOpTimeout(opTimeout))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	holding := make(chan struct{})
	txDone := make(chan error, 1)
	var fnDeadline time.Time
	start := time.Now()
	go func() {
		txDone <- s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			fnDeadline, _ = ctx.Deadline()
			if _, err := tx.InsertInstance(ctx, store.Instance{ID: "slow", OrderID: "S", OrderLineID: "S-1", Status: store.StatusActive}); err != nil {
				return err
			}
			close(holding)
			select { // work that outlasts the bound…
			case <-ctx.Done():
			case <-time.After(30 * time.Second): // fails the test instead of hanging it
				return errors.New("the operation timeout never ended fn's context")
			}
			// …and goes on a while, holding the write slot, so the writer
			// queued behind it runs out of time first.
			time.Sleep(opTimeout)
			_, err := tx.InsertOperation(ctx, store.Operation{Key: "late", Activity: "a"})
			return err
		})
	}()
	<-holding
	// Queued behind the transaction for this process's write slot.
	_, queuedErr := s.InsertCall(context.Background(), store.Call{Activity: "queued"})
	err = <-txDone
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "within 300ms") {
		t.Errorf("Tx outlasting the operation timeout: %v, want store.ErrUnavailable saying there was no answer within 300ms", err)
	}
	if fnDeadline.IsZero() || fnDeadline.After(start.Add(opTimeout+50*time.Millisecond)) {
		t.Errorf("fn's context deadline %v after the start, want at most %v", fnDeadline.Sub(start), opTimeout)
	}
	if !errors.Is(queuedErr, store.ErrUnavailable) {
		t.Errorf("InsertCall queued behind a transaction longer than the timeout: %v, want store.ErrUnavailable", queuedErr)
	}
	if _, err := s.Instance(t.Context(), "slow"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the transaction cut short by the timeout left its row: %v", err)
	}
	// The store works on.
	if _, err := s.InsertCall(t.Context(), store.Call{Activity: "after"}); err != nil {
		t.Errorf("InsertCall after the timeout: %v", err)
	}
}
