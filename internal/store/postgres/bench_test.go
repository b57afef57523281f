package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// The benchmarks mirror package sqlite's, on a fresh schema each.

func benchStore(b *testing.B) *Store {
	b.Helper()
	dsn, schema := newSchema(b)
	return openStore(b, dsn, schema)
}

func BenchmarkInsertCall(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	c := store.Call{
		RequestID: "req", Interface: "v2", Activity: "newInstance", IdemKey: "newInstance:O:L",
		Request: `{"activity":"newInstance","orderId":"O","orderLineId":"L"}`, Response: `{"resultCode":"000000"}`,
		ResultCode: "000000", HTTPStatus: 200, Latency: 3 * time.Millisecond,
	}
	for b.Loop() {
		if _, err := s.InsertCall(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRememberNonce(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	exp := time.Now().Add(time.Minute)
	i := 0
	for b.Loop() {
		i++
		if err := s.RememberNonce(ctx, fmt.Sprintf("%064x", i), exp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInsertInstanceTx is the write path of a newInstance call: one
// transaction with the instance, its operation record and its job.
func BenchmarkInsertInstanceTx(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		id := fmt.Sprintf("inst-%d", i)
		err := s.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
			in := store.Instance{ID: id, OrderID: "O", OrderLineID: id, Status: store.StatusProvisioning, OrderState: store.OrderPending}
			if ok, err := tx.InsertInstance(ctx, in); err != nil || !ok {
				return fmt.Errorf("insert instance: %v %v", ok, err)
			}
			if _, err := tx.InsertOperation(ctx, store.Operation{Key: "newInstance:O:" + id, Activity: "newInstance", InstanceID: id}); err != nil {
				return err
			}
			_, _, err := tx.EnqueueJob(ctx, store.Job{Kind: "provision", UniqueKey: "provision:" + id, Payload: []byte(`{}`), MaxAttempts: 25})
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
