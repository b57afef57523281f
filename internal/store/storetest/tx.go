package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

var txTests = []test{
	{"RollbackOnError", testTxRollback},
	{"RollbackOnPanic", testTxPanic},
	{"CommitAll", testTxCommit},
	{"Isolation", testTxIsolation},
}

var errBoom = errors.New("boom")

// newInstanceTx does what a newInstance call does in one transaction:
// instance, operation and provisioning job.
func newInstanceTx(ctx context.Context, tx store.Tx, in store.Instance) error {
	if _, err := tx.InsertInstance(ctx, in); err != nil {
		return err
	}
	if _, err := tx.InsertOperation(ctx, store.Operation{Key: "newInstance:" + in.OrderID + ":" + in.OrderLineID,
		Activity: "newInstance", InstanceID: in.ID, State: store.OperationRunning}); err != nil {
		return err
	}
	_, _, err := tx.EnqueueJob(ctx, store.Job{Kind: "provision", UniqueKey: "provision:" + in.ID,
		Payload: []byte(`{}`), MaxAttempts: 3, RunAt: at(0)})
	return err
}

// checkNothing fails unless the store holds no trace of in.
func checkNothing(t *testing.T, s store.Store, in store.Instance) {
	t.Helper()
	_, err := s.Instance(t.Context(), in.ID)
	wantErr(t, "Instance after rollback", err, store.ErrNotFound)
	_, err = s.InstanceByOrderLine(t.Context(), in.OrderID, in.OrderLineID)
	wantErr(t, "InstanceByOrderLine after rollback", err, store.ErrNotFound)
	_, err = s.Operation(t.Context(), "newInstance:"+in.OrderID+":"+in.OrderLineID)
	wantErr(t, "Operation after rollback", err, store.ErrNotFound)
	jobs, err := s.Jobs(t.Context(), store.JobFilter{})
	noErr(t, "Jobs", err)
	if len(jobs) != 0 {
		t.Errorf("%d jobs after rollback, want 0", len(jobs))
	}
	_, err = s.ClaimJob(t.Context(), "w", nil, at(time.Hour), time.Minute)
	wantErr(t, "ClaimJob after rollback", err, store.ErrNotFound)
}

func testTxRollback(t *testing.T, s store.Store) {
	in := fullInstance("tx-1", "CSTX", "CSTX-000001")
	err := s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		if err := newInstanceTx(ctx, tx, in); err != nil {
			return err
		}
		return errBoom
	})
	wantErr(t, "Tx", err, errBoom)
	checkNothing(t, s, in)

	// The order line is still free: the next attempt inserts.
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return newInstanceTx(ctx, tx, in) })
	_, err = s.Instance(t.Context(), in.ID)
	noErr(t, "Instance after commit", err)
}

func testTxPanic(t *testing.T, s store.Store) {
	in := fullInstance("tx-p", "CSTP", "CSTP-000001")
	func() {
		defer func() {
			if r := recover(); r != errBoom {
				t.Errorf("recovered %v, want the panic value re-raised", r)
			}
		}()
		_ = s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
			if err := newInstanceTx(ctx, tx, in); err != nil {
				return err
			}
			panic(errBoom)
		})
	}()
	checkNothing(t, s, in)
	// The store is still usable.
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return newInstanceTx(ctx, tx, in) })
}

func testTxCommit(t *testing.T, s store.Store) {
	in := fullInstance("tx-c", "CSTC", "CSTC-000001")
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return newInstanceTx(ctx, tx, in) })
	got, err := s.Instance(t.Context(), in.ID)
	noErr(t, "Instance", err)
	checkInstance(t, "committed instance", got, in)
	op, err := s.Operation(t.Context(), "newInstance:CSTC:CSTC-000001")
	noErr(t, "Operation", err)
	if op.InstanceID != in.ID {
		t.Errorf("operation instance %q, want %q", op.InstanceID, in.ID)
	}
	j, err := s.ClaimJob(t.Context(), "w", []string{"provision"}, at(0), time.Minute)
	noErr(t, "ClaimJob", err)
	if j.UniqueKey != "provision:"+in.ID {
		t.Errorf("claimed job key %q", j.UniqueKey)
	}
}

// testTxIsolation checks that other readers do not see a transaction's
// writes before it commits.
func testTxIsolation(t *testing.T, s store.Store) {
	in := fullInstance("tx-i", "CSTI", "CSTI-000001")
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := newInstanceTx(ctx, tx, in); err != nil {
			return err
		}
		if _, err := s.Instance(ctx, in.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("uncommitted instance visible outside the transaction (err %v)", err)
		}
		return nil
	})
	_, err := s.Instance(t.Context(), in.ID)
	noErr(t, "Instance after commit", err)
}
