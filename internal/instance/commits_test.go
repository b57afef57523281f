package instance_test

import (
	"context"
	"errors"
	"slices"
	"sync"
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

// dies is the real store of a process that stops dead right after the
// transaction that inserted an instance commits: that Tx returns only once
// release is closed, and then fails, so the process does nothing after the
// commit (it never runs the job it inserted, claimed or not).
type dies struct {
	store.Store
	once    sync.Once
	died    chan struct{} // closed when the transaction has committed
	release chan struct{}
}

// errDied is what the dead process's Tx returns once released.
var errDied = errors.New("test: the process died")

func (d *dies) Tx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error {
	var inserted bool
	err := d.Store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		inserted = false // Tx may run fn again
		return fn(ctx, insertSpy{Tx: tx, inserted: &inserted})
	})
	if err != nil || !inserted {
		return err
	}
	first := false
	d.once.Do(func() { first = true; close(d.died) })
	if !first {
		return nil
	}
	<-d.release
	return errDied
}

// insertSpy notes whether its transaction inserted an instance.
type insertSpy struct {
	store.Tx
	inserted *bool
}

func (s insertSpy) InsertInstance(ctx context.Context, inst store.Instance) (bool, error) {
	ok, err := s.Tx.InsertInstance(ctx, inst)
	if ok {
		*s.inserted = true
	}
	return ok, err
}

// TestNewInstanceJobTakenOverAfterLease: the process that bought an order
// line dies right after the transaction that inserted the instance and its
// provision job commits, before it runs the job. The job was inserted
// claimed by that process: running, held by its worker, and no other
// worker may take it within the lease. Once the lease has expired another
// process takes it over and provisions the instance.
func TestNewInstanceJobTakenOverAfterLease(t *testing.T) {
	const lease = time.Minute
	d := &dies{died: make(chan struct{}), release: make(chan struct{})}
	first := newEnv(t, options{lease: lease, noRunner: true,
		wrap: func(st store.Store) store.Store { d.Store = st; return d }})
	addOrder(first.api, "CS-TAKEOVER", protocol.ChargingPeriod, "sku-basic")

	called := make(chan error, 1)
	go func() {
		_, err := first.v2.Serve(context.Background(), newReq("CS-TAKEOVER"))
		called <- err
	}()
	// Released (and the dead call waited for) before first's cleanup
	// waits for its background work.
	defer func() { close(d.release); <-called }()
	select {
	case <-d.died:
	case err := <-called:
		t.Fatalf("newInstance returned (%v) without committing an instance", err)
	}

	ctx := context.Background()
	js, err := first.st.Jobs(ctx, store.JobFilter{Kind: instance.KindProvision})
	if err != nil || len(js) != 1 {
		t.Fatalf("provision jobs %+v, %v; want one", js, err)
	}
	if j := js[0]; j.State != store.JobRunning || j.LockedBy != first.runner.WorkerID() || j.Attempts != 1 {
		t.Fatalf("provision job %s, held by %q, attempt %d; want running, held by the dead process's worker %q, attempt 1",
			j.State, j.LockedBy, j.Attempts, first.runner.WorkerID())
	}
	for _, at := range []time.Time{time.Now(), time.Now().Add(lease / 2)} {
		if j, err := first.st.ClaimJob(ctx, "other", nil, at, lease); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("ClaimJob within the lease: job %d, %v; want ErrNotFound", j.ID, err)
		}
	}

	// Another process, whose clock is past the lease.
	second := newEnv(t, options{path: first.path, api: first.api, lease: lease,
		runnerNow: func() time.Time { return time.Now().Add(2 * lease) }})
	inst, err := second.st.InstanceByOrderLine(ctx, "CS-TAKEOVER", "CS-TAKEOVER-000001")
	if err != nil {
		t.Fatalf("instance of the order line: %v", err)
	}
	inst = second.waitStatus(inst.ID, store.StatusActive)
	if inst.SKUCode != "sku-basic" || inst.AppInfo.FrontEndURL == "" {
		t.Errorf("instance %+v, want its order and app stored", inst)
	}
	j, err := second.st.Job(ctx, js[0].ID)
	if err != nil || j.State != store.JobDone || j.Attempts != 2 {
		t.Errorf("job %s at attempt %d, %v; want done by the second process at attempt 2", j.State, j.Attempts, err)
	}
}
