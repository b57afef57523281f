package storetest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

var operationTests = []test{
	{"InsertOnceFinishRead", testOperationLifecycle},
	{"NotFound", testOperationNotFound},
	{"ConcurrentInsertSameKey", testOperationConcurrentInsert},
	{"Fingerprint", testOperationFingerprint},
	{"Reopen", testOperationReopen},
	{"ReopenNotFound", testOperationReopenNotFound},
}

func testOperationLifecycle(t *testing.T, s store.Store) {
	const key = "refreshInstance:CS001:CS001-000001:RENEWAL"
	op := store.Operation{
		Key: key, Activity: "refreshInstance", InstanceID: "inst-1", Fingerprint: "sha256:renewal-3-months",
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
	if got.Key != key || got.Activity != op.Activity || got.InstanceID != op.InstanceID || got.Fingerprint != op.Fingerprint ||
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
	if got.InstanceID != "inst-1" || got.Activity != op.Activity || got.Fingerprint != op.Fingerprint {
		t.Errorf("FinishOperation changed instance, activity or fingerprint: %+v", got)
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

// testOperationFingerprint: the fingerprint is stored as given, read back
// inside and outside transactions, kept by a repeated insert with another
// fingerprint (the first call's request is the record), and an empty one
// is a valid value.
func testOperationFingerprint(t *testing.T, s store.Store) {
	const fp = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, op := range []store.Operation{
			{Key: "upgrade:O:L:1", Activity: "upgradeInstance", Fingerprint: fp},
			{Key: "upgrade:O:L:2", Activity: "upgradeInstance"},
		} {
			if ok, err := tx.InsertOperation(ctx, op); err != nil || !ok {
				return fmt.Errorf("InsertOperation(%s) = %v, %v; want true, nil", op.Key, ok, err)
			}
		}
		got, err := tx.Operation(ctx, "upgrade:O:L:1")
		if err != nil {
			return err
		}
		if got.Fingerprint != fp {
			t.Errorf("Fingerprint in tx = %q, want %q", got.Fingerprint, fp)
		}
		ok, err := tx.InsertOperation(ctx, store.Operation{Key: "upgrade:O:L:1", Activity: "upgradeInstance", Fingerprint: "sha256:other"})
		if err != nil || ok {
			return fmt.Errorf("repeated InsertOperation = %v, %v; want false, nil", ok, err)
		}
		return nil
	})
	got, err := s.Operation(t.Context(), "upgrade:O:L:1")
	noErr(t, "Operation", err)
	if got.Fingerprint != fp {
		t.Errorf("Fingerprint = %q, want the first insert's %q", got.Fingerprint, fp)
	}
	got, err = s.Operation(t.Context(), "upgrade:O:L:2")
	noErr(t, "Operation", err)
	if got.Fingerprint != "" {
		t.Errorf("Fingerprint of an operation inserted without one = %q, want \"\"", got.Fingerprint)
	}
}

// testOperationReopen: a done operation goes back to running with no
// result, UpdatedAt moves to the given time, the rest is kept; it can be
// finished again.
func testOperationReopen(t *testing.T, s store.Store) {
	const key = "newInstance:CSRO:CSRO-000001"
	op := store.Operation{Key: key, Activity: "newInstance", InstanceID: "inst-ro", Fingerprint: "fp-1",
		CreatedAt: at(0), UpdatedAt: at(0)}
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.InsertOperation(ctx, op); err != nil {
			return err
		}
		return tx.FinishOperation(ctx, key, "000005", []byte(`{"resultCode":"000005"}`))
	})
	done, err := s.Operation(t.Context(), key)
	noErr(t, "Operation", err)
	if done.State != store.OperationDone || done.ResultCode != "000005" {
		t.Fatalf("finished operation: state %q code %q, want done 000005", done.State, done.ResultCode)
	}

	reopened := at(time.Minute + 7*time.Millisecond)
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.ReopenOperation(ctx, key, reopened); err != nil {
			return err
		}
		// The transaction sees its own change.
		got, err := tx.Operation(ctx, key)
		if err != nil {
			return err
		}
		if got.State != store.OperationRunning {
			t.Errorf("reopened operation in tx: state %q, want running", got.State)
		}
		return nil
	})
	got, err := s.Operation(t.Context(), key)
	noErr(t, "Operation", err)
	want := op
	want.State = store.OperationRunning
	want.UpdatedAt = reopened
	if d := diff(normOperation(got), normOperation(want)); d != "" {
		t.Errorf("reopened operation differs:%s", d)
	}

	// A new attempt finishes it again.
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.FinishOperation(ctx, key, "000000", []byte(`{"resultCode":"000000"}`))
	})
	got, err = s.Operation(t.Context(), key)
	noErr(t, "Operation", err)
	if got.State != store.OperationDone || got.ResultCode != "000000" || string(got.Response) != `{"resultCode":"000000"}` {
		t.Errorf("operation finished after reopening: state %q code %q response %q", got.State, got.ResultCode, got.Response)
	}
}

func testOperationReopenNotFound(t *testing.T, s store.Store) {
	err := s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		return tx.ReopenOperation(ctx, "nope", at(0))
	})
	wantErr(t, "ReopenOperation of an absent operation", err, store.ErrNotFound)
	_, err = s.Operation(t.Context(), "nope")
	wantErr(t, "Operation after ReopenOperation of an absent operation", err, store.ErrNotFound)
}

// normOperation makes op comparable with reflect.DeepEqual: times
// normalised, and a nil and an empty Response alike.
func normOperation(op store.Operation) store.Operation {
	op.CreatedAt = normTime(op.CreatedAt)
	op.UpdatedAt = normTime(op.UpdatedAt)
	if len(op.Response) == 0 {
		op.Response = nil
	}
	return op
}
