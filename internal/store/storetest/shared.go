package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// RunShared checks two handles on one database, as two processes or two
// replicas have them: goroutines spread over both race on one order line
// (its instance and its order notification), one nonce, a
// read-modify-write counter, ledger appends and 100 jobs, and each must
// come out exactly once. a and b must be fresh and empty.
func RunShared(t *testing.T, a, b store.Store) {
	handles := [2]store.Store{a, b}
	ctx := t.Context()
	err := a.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.InsertInstance(ctx, store.Instance{ID: "counter", OrderID: "C", OrderLineID: "C-1", Status: store.StatusActive})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	const n, callsEach = 40, 5
	var (
		inserted = make([]bool, n)
		notified = make([]bool, n)
		nonceErr = make([]error, n)
		callErr  = make([]error, n)
		txErr    = make([]error, n)
		incrErr  = make([]error, n)
	)
	exp := time.Now().Add(time.Hour)
	Race(n, func(i int) {
		s := handles[i%2]
		ctx := context.Background()
		// Read-modify-write: no increment may be lost, none may conflict.
		incrErr[i] = s.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
			in, err := tx.Instance(ctx, "counter")
			if err != nil {
				return err
			}
			in.PeriodNumber++
			return tx.UpdateInstance(ctx, in)
		})
		txErr[i] = s.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
			ok, err := tx.InsertInstance(ctx, store.Instance{ID: fmt.Sprintf("i%02d", i), OrderID: "O", OrderLineID: "O-1",
				Status: store.StatusProvisioning})
			inserted[i] = ok
			if err != nil {
				return err
			}
			ok, err = tx.InsertOrderNotification(ctx, store.OrderNotification{OrderID: "O", OrderLineID: "O-1",
				Status: store.NotificationPending, LastError: fmt.Sprintf("%02d", i)})
			notified[i] = ok
			return err
		})
		nonceErr[i] = s.RememberNonce(ctx, "shared-nonce", exp)
		for j := range callsEach {
			if _, err := s.InsertCall(ctx, store.Call{Activity: "queryInstance", RequestID: fmt.Sprintf("%d-%d", i, j)}); err != nil {
				callErr[i] = err
				break
			}
		}
	})
	winners, notifyWinners, nonceOK := 0, 0, 0
	for i := range n {
		for what, err := range map[string]error{"increment": incrErr[i], "insert": txErr[i], "InsertCall": callErr[i]} {
			if err != nil {
				t.Errorf("%s %d: %v", what, i, err)
			}
		}
		if inserted[i] {
			winners++
		}
		if notified[i] {
			notifyWinners++
		}
		switch {
		case nonceErr[i] == nil:
			nonceOK++
		case !errors.Is(nonceErr[i], store.ErrReplayedNonce):
			t.Errorf("RememberNonce %d: %v", i, nonceErr[i])
		}
	}
	if winners != 1 {
		t.Errorf("%d inserts of one order line succeeded across two handles, want 1", winners)
	}
	if notifyWinners != 1 {
		t.Errorf("%d inserts of one order line's notification succeeded across two handles, want 1", notifyWinners)
	}
	if nonceOK != 1 {
		t.Errorf("%d uses of one nonce succeeded across two handles, want 1", nonceOK)
	}
	counter, err := b.Instance(ctx, "counter")
	if err != nil {
		t.Fatal(err)
	}
	if counter.PeriodNumber != n || counter.Version != n {
		t.Errorf("counter = %d at version %d after %d increments, want %d and %d", counter.PeriodNumber, counter.Version, n, n, n)
	}
	calls, err := a.Calls(ctx, store.CallFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != n*callsEach {
		t.Errorf("%d calls recorded, want %d", len(calls), n*callsEach)
	}

	sharedJobs(t, handles)
}

// sharedJobs: 100 jobs, 20 workers spread over both handles, each job
// claimed and completed exactly once.
func sharedJobs(t *testing.T, handles [2]store.Store) {
	const jobs = 100
	ctx := t.Context()
	err := handles[0].Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		for i := range jobs {
			if _, _, err := tx.EnqueueJob(ctx, store.Job{Kind: "provision", UniqueKey: fmt.Sprintf("provision:%d", i),
				Payload: []byte(`{}`), MaxAttempts: 3, RunAt: time.Now().Add(-time.Minute)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		claimed = map[int64][]string{}
		errs    []error
	)
	Race(20, func(i int) {
		s := handles[i%2]
		worker := fmt.Sprintf("w%02d", i)
		for {
			j, err := s.ClaimJob(context.Background(), worker, []string{"provision"}, time.Now(), time.Minute)
			if errors.Is(err, store.ErrNotFound) {
				return
			}
			if err == nil {
				err = s.CompleteJob(context.Background(), j.ID, worker)
			}
			mu.Lock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", worker, err))
				mu.Unlock()
				return
			}
			claimed[j.ID] = append(claimed[j.ID], worker)
			mu.Unlock()
		}
	})
	for _, err := range errs {
		t.Error(err)
	}
	if len(claimed) != jobs {
		t.Errorf("%d of %d jobs claimed", len(claimed), jobs)
	}
	for id, workers := range claimed {
		if len(workers) != 1 {
			t.Errorf("job %d claimed by %d workers %v, want 1", id, len(workers), workers)
		}
	}
	done, err := handles[1].Jobs(ctx, store.JobFilter{State: store.JobDone, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != jobs {
		t.Errorf("%d jobs done, want %d", len(done), jobs)
	}
}

// Bench measures the writes of a KooGallery call on stores made by open:
// a ledger row, a nonce, and a newInstance's transaction (instance,
// operation record and job), one at a time and from many goroutines at
// once (where SQLite's group commit shares transactions), and the read
// of an instance by id.
func Bench(b *testing.B, open func(b *testing.B) store.Store) {
	b.Run("InsertCallParallel", func(b *testing.B) {
		s := open(b)
		c := store.Call{
			RequestID: "req", Interface: "v2", Activity: "queryInstance",
			Request: `{"activity":"queryInstance","instanceId":"I"}`, Response: `{"resultCode":"000000"}`,
			ResultCode: "000000", HTTPStatus: 200, Latency: 3 * time.Millisecond,
		}
		b.SetParallelism(8) // 8 × GOMAXPROCS goroutines, as calls arrive together
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.InsertCall(b.Context(), c); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("Instance", func(b *testing.B) {
		s := open(b)
		const n = 1000
		for i := range n {
			id := fmt.Sprintf("inst-%d", i)
			err := s.Tx(b.Context(), func(ctx context.Context, tx store.Tx) error {
				_, err := tx.InsertInstance(ctx, store.Instance{ID: id, OrderID: "O", OrderLineID: id, Status: store.StatusActive, OrderState: store.OrderFetched})
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		i := 0
		for b.Loop() {
			i++
			if _, err := s.Instance(b.Context(), fmt.Sprintf("inst-%d", i%n)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("InsertCall", func(b *testing.B) {
		s := open(b)
		c := store.Call{
			RequestID: "req", Interface: "v2", Activity: "newInstance", IdemKey: "newInstance:O:L",
			Request: `{"activity":"newInstance","orderId":"O","orderLineId":"L"}`, Response: `{"resultCode":"000000"}`,
			ResultCode: "000000", HTTPStatus: 200, Latency: 3 * time.Millisecond,
		}
		for b.Loop() {
			if _, err := s.InsertCall(b.Context(), c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RememberNonce", func(b *testing.B) {
		s := open(b)
		exp := time.Now().Add(time.Minute)
		i := 0
		for b.Loop() {
			i++
			if err := s.RememberNonce(b.Context(), fmt.Sprintf("%064x", i), exp); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("InsertInstanceTx", func(b *testing.B) {
		s := open(b)
		i := 0
		for b.Loop() {
			i++
			id := fmt.Sprintf("inst-%d", i)
			err := s.Tx(b.Context(), func(ctx context.Context, tx store.Tx) error {
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
	})
}
