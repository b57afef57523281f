package storetest

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/koobridge/koobridge/internal/store"
)

var operationTests = []test{
	{"InsertOnceFinishRead", testOperationLifecycle},
	{"NotFound", testOperationNotFound},
	{"ConcurrentInsertSameKey", testOperationConcurrentInsert},
}

func testOperationLifecycle(t *testing.T, s store.Store) {
	const key = "refreshInstance:CS001:CS001-000001:RENEWAL"
	op := store.Operation{
		Key: key, Activity: "refreshInstance", InstanceID: "inst-1",
		State: store.OperationRunning, CreatedAt: at(0), UpdatedAt: at(0),
	}
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.InsertOperation(ctx, op)
		if err != nil || !ok {
			return fmt.Errorf("first InsertOperation = %v, %v; want true, nil", ok, err)
		}
		return nil
	})
	// A repeat does not insert, and does not change the record.
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		again := op
		again.InstanceID = "other"
		ok, err := tx.InsertOperation(ctx, again)
		if err != nil || ok {
			return fmt.Errorf("repeated InsertOperation = %v, %v; want false, nil", ok, err)
		}
		got, err := tx.Operation(ctx, key)
		if err != nil {
			return err
		}
		if got.InstanceID != "inst-1" || got.State != store.OperationRunning {
			t.Errorf("after repeat: instance %q state %q, want inst-1 running", got.InstanceID, got.State)
		}
		return nil
	})

	got, err := s.Operation(t.Context(), key)
	noErr(t, "Operation", err)
	if got.Key != key || got.Activity != op.Activity || got.InstanceID != op.InstanceID ||
		got.State != store.OperationRunning || got.ResultCode != "" || len(got.Response) != 0 ||
		!got.CreatedAt.Equal(op.CreatedAt) {
		t.Errorf("Operation = %+v, want %+v", got, op)
	}

	// The answer is kept byte for byte: \u escapes, key order, spacing.
	response := []byte(`{"resultCode":"000000","resultMsg":"\u6210\u529f", "instanceId":"inst-1"}`)
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.FinishOperation(ctx, key, "000000", response)
	})
	got, err = s.Operation(t.Context(), key)
	noErr(t, "Operation", err)
	if got.State != store.OperationDone || got.ResultCode != "000000" || !bytes.Equal(got.Response, response) {
		t.Errorf("finished Operation: state %q code %q response %q; want done 000000 %q",
			got.State, got.ResultCode, got.Response, response)
	}
	if got.InstanceID != "inst-1" || got.Activity != op.Activity {
		t.Errorf("FinishOperation changed instance or activity: %+v", got)
	}
}

func testOperationNotFound(t *testing.T, s store.Store) {
	_, err := s.Operation(t.Context(), "nope")
	wantErr(t, "Operation", err, store.ErrNotFound)
	err = s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.Operation(ctx, "nope"); err != nil {
			return err
		}
		return nil
	})
	wantErr(t, "tx.Operation", err, store.ErrNotFound)
	err = s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		return tx.FinishOperation(ctx, "nope", "000000", []byte(`{}`))
	})
	wantErr(t, "FinishOperation", err, store.ErrNotFound)
}

func testOperationConcurrentInsert(t *testing.T, s store.Store) {
	const n = 50
	var (
		inserted = make([]bool, n)
		errs     = make([]error, n)
	)
	Race(n, func(i int) {
		errs[i] = s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			ok, err := tx.InsertOperation(ctx, store.Operation{
				Key: "releaseInstance:X", Activity: "releaseInstance",
				InstanceID: fmt.Sprint(i), State: store.OperationRunning,
			})
			inserted[i] = ok
			return err
		})
	})
	count := 0
	for i := range n {
		noErr(t, fmt.Sprintf("goroutine %d", i), errs[i])
		if inserted[i] {
			count++
		}
	}
	if count != 1 {
		t.Errorf("%d goroutines inserted the operation, want exactly 1", count)
	}
}
