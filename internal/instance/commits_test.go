package instance_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
)

// writes is the real store with a list of the writes that commit on their
// own, in order: every transaction, and the queue's claims and outcomes.
// (The nonce and the ledger row of a call are the pipeline's, not the
// Service's: two more per call.)
type writes struct {
	store.Store
	mu   sync.Mutex
	list []string
}

func (w *writes) add(what string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, what)
}

// take returns the writes so far and starts a new list.
func (w *writes) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.list
	w.list = nil
	return l
}

func (w *writes) Tx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error {
	err := w.Store.Tx(ctx, fn)
	if err == nil {
		w.add("tx")
	}
	return err
}

func (w *writes) ClaimJob(ctx context.Context, worker string, kinds []string, now time.Time, lease time.Duration) (store.Job, error) {
	j, err := w.Store.ClaimJob(ctx, worker, kinds, now, lease)
	if err == nil {
		w.add("claim")
	}
	return j, err
}

func (w *writes) ClaimJobByID(ctx context.Context, id int64, worker string, now time.Time, lease time.Duration) (store.Job, error) {
	w.add("claim")
	return w.Store.ClaimJobByID(ctx, id, worker, now, lease)
}

func (w *writes) CompleteJob(ctx context.Context, id int64, worker string) error {
	w.add("complete")
	return w.Store.CompleteJob(ctx, id, worker)
}

func (w *writes) RetryJob(ctx context.Context, id int64, worker string, runAt time.Time, lastErr string) error {
	w.add("retry")
	return w.Store.RetryJob(ctx, id, worker, runAt, lastErr)
}

func (w *writes) DeadJob(ctx context.Context, id int64, worker string, lastErr string) error {
	w.add("dead")
	return w.Store.DeadJob(ctx, id, worker, lastErr)
}

// TestNewInstanceCommits counts the writes of one newInstance whose
// provisioning ends within the budget. The call's own job is inserted
// claimed with the instance (no claim of its own), the order Query Order
// gave is stored with the delivery's outcome, and a delivery that
// succeeds completes the job in that same transaction: three commits
// (instance, outcome, stored answer) where there were six (instance,
// claim, order, outcome, completion, answer). A failure still records its
// outcome through the runner.
func TestNewInstanceCommits(t *testing.T) {
	cases := []struct {
		name  string
		mode  string // the vendor's
		fault bool   // Query Order answers 503
		code  protocol.ResultCode
		want  []string
		job   store.JobState
		order store.OrderState
	}{
		{"active", "ok", false, protocol.CodeSuccess, []string{"tx", "tx", "tx"}, store.JobDone, store.OrderFetched},
		{"refused by the vendor", "refuse", false, "000106", []string{"tx", "tx", "dead", "tx"}, store.JobDead, store.OrderFetched},
		{"vendor down", "fail", false, protocol.CodeProcessing, []string{"tx", "tx", "retry", "tx"}, store.JobAvailable, store.OrderFetched},
		{"Query Order down", "ok", true, protocol.CodeProcessing, []string{"tx", "tx", "retry", "tx"}, store.JobAvailable, store.OrderPending},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := newVendor(t)
			v.set(c.mode, 0)
			w := &writes{}
			e := newEnv(t, options{prov: v.provisioner(t), noRunner: true,
				wrap: func(st store.Store) store.Store { w.Store = st; return w }})
			addOrder(e.api, "CS-COMMITS", protocol.ChargingPeriod, "sku-basic")
			if c.fault {
				e.api.SetFault(mockapi.Fault{Status: 503})
			}

			out := e.do(newReq("CS-COMMITS"))
			if out.Code != c.code {
				t.Fatalf("newInstance: %s %q, want %s", out.Code, out.Msg, c.code)
			}
			if got := w.take(); !slices.Equal(got, c.want) {
				t.Errorf("writes %v, want %v", got, c.want)
			}
			js, err := e.st.Jobs(context.Background(), store.JobFilter{Kind: instance.KindProvision})
			if err != nil || len(js) != 1 || js[0].State != c.job || js[0].Attempts != 1 {
				t.Errorf("provision jobs %+v, %v; want one, %s after 1 attempt", js, err, c.job)
			}
			inst := e.instance(out.InstanceID)
			if inst.OrderState != c.order || (c.order == store.OrderFetched && (inst.SKUCode != "sku-basic" || inst.OrderJSON == "")) {
				t.Errorf("instance order %s, sku %q; want %s", inst.OrderState, inst.SKUCode, c.order)
			}
		})
	}
}

// TestRepeatOfFailedPurchaseCommits: a newInstance repeated after its
// provisioning failed runs the new attempt as the first call does: its
// job inserted claimed with the restart, completed with the outcome.
func TestRepeatOfFailedPurchaseCommits(t *testing.T) {
	v := newVendor(t)
	v.set("reject", 0)
	w := &writes{}
	e := newEnv(t, options{prov: v.provisioner(t), noRunner: true,
		wrap: func(st store.Store) store.Store { w.Store = st; return w }})
	addOrder(e.api, "CS-AGAIN", protocol.ChargingPeriod, "sku-basic")
	if out := e.do(newReq("CS-AGAIN")); out.Code != protocol.CodeInternal {
		t.Fatalf("first call: %s %q, want 000005", out.Code, out.Msg)
	}
	w.take()

	v.set("ok", 0)
	out := e.do(newReq("CS-AGAIN"))
	if out.Code != protocol.CodeSuccess {
		t.Fatalf("repeat: %s %q", out.Code, out.Msg)
	}
	// The purchase's transaction finds the instance (and inserts
	// nothing), then the restart with its job, the outcome with the
	// completion and the answer.
	if got, want := w.take(), []string{"tx", "tx", "tx", "tx"}; !slices.Equal(got, want) {
		t.Errorf("writes %v, want %v", got, want)
	}
	js, err := e.st.Jobs(context.Background(), store.JobFilter{Kind: instance.KindProvision})
	if err != nil || len(js) != 2 || js[0].State != store.JobDone || js[0].Attempts != 1 {
		t.Errorf("provision jobs %+v, %v; want the restart's done after 1 attempt", js, err)
	}
}

// frozen is the real store whose first read of an instance never returns
// until release is closed: the process that reads it is as good as dead
// while it holds its job.
type frozen struct {
	store.Store
	read    atomic.Bool
	release chan struct{}
}

func (f *frozen) Instance(ctx context.Context, id string) (store.Instance, error) {
	if f.read.CompareAndSwap(false, true) {
		<-f.release
	}
	return f.Store.Instance(ctx, id)
}

// TestNewInstanceJobTakenOverAfterLease: the process that bought an order
// line stops dead after inserting its job claimed, before running it. The
// call is answered 000004 at its budget; another process takes the job
// over once the lease has expired and provisions the instance.
func TestNewInstanceJobTakenOverAfterLease(t *testing.T) {
	const lease = 2 * time.Second
	f := &frozen{release: make(chan struct{})}
	first := newEnv(t, options{budget: 300 * time.Millisecond, lease: lease, noRunner: true,
		wrap: func(st store.Store) store.Store { f.Store = st; return f }})
	defer close(f.release) // before first's cleanup waits for its job
	addOrder(first.api, "CS-TAKEOVER", protocol.ChargingPeriod, "sku-basic")

	out := first.do(newReq("CS-TAKEOVER"))
	if out.Code != protocol.CodeProcessing {
		t.Fatalf("newInstance: %s %q, want 000004", out.Code, out.Msg)
	}
	ctx := context.Background()
	js, err := first.st.Jobs(ctx, store.JobFilter{Kind: instance.KindProvision})
	if err != nil || len(js) != 1 || js[0].State != store.JobRunning || js[0].LockedBy != first.runner.WorkerID() {
		t.Fatalf("provision jobs %+v, %v; want one, held by the first process", js, err)
	}
	if _, err := first.st.ClaimJob(ctx, "other", nil, time.Now(), lease); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ClaimJob within the lease: %v, want ErrNotFound", err)
	}

	second := newEnv(t, options{path: first.path, api: first.api})
	inst := second.waitStatus(out.InstanceID, store.StatusActive)
	if inst.SKUCode != "sku-basic" {
		t.Errorf("instance %+v, want its order stored", inst)
	}
	j, err := second.st.Job(ctx, js[0].ID)
	if err != nil || j.State != store.JobDone || j.Attempts != 2 {
		t.Errorf("job %+v, %v; want done by the second process at attempt 2", j, err)
	}
}
