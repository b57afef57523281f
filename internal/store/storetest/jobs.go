package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

var jobTests = []test{
	{"EnqueueAndRead", testJobEnqueue},
	{"UniqueKey", testJobUniqueKey},
	{"ClaimOrderAndDue", testJobClaimOrder},
	{"ClaimKinds", testJobClaimKinds},
	{"LeaseExpiry", testJobLeaseExpiry},
	{"ConcurrentClaims", testJobConcurrentClaims},
	{"Retry", testJobRetry},
	{"DeadAndRevive", testJobDeadAndRevive},
	{"WrongWorker", testJobWrongWorker},
	{"ClaimByID", testJobClaimByID},
	{"EnqueueClaimed", testJobEnqueueClaimed},
	{"EnqueueClaimedUniqueKey", testJobEnqueueClaimedUniqueKey},
	{"CompleteInTx", testJobCompleteInTx},
	{"RunAtIsWhenItRan", testJobRunAtIsWhenItRan},
	{"List", testJobList},
	{"NotFound", testJobNotFound},
}

const lease = time.Minute

// enqueue inserts job in its own transaction and returns its ID.
func enqueue(t *testing.T, s store.Store, job store.Job) int64 {
	t.Helper()
	var id int64
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		var (
			ok  bool
			err error
		)
		id, ok, err = tx.EnqueueJob(ctx, job)
		if err == nil && !ok {
			err = fmt.Errorf("job %+v not inserted", job)
		}
		return err
	})
	return id
}

func job(kind string, runAt time.Time) store.Job {
	return store.Job{Kind: kind, Payload: []byte(`{"instanceId":"i1"}`), MaxAttempts: 7, RunAt: runAt, CreatedAt: at(0)}
}

func claim(t *testing.T, s store.Store, worker string, kinds []string, now time.Time) store.Job {
	t.Helper()
	j, err := s.ClaimJob(t.Context(), worker, kinds, now, lease)
	noErr(t, "ClaimJob by "+worker, err)
	return j
}

func claimNone(t *testing.T, s store.Store, worker string, kinds []string, now time.Time) {
	t.Helper()
	j, err := s.ClaimJob(t.Context(), worker, kinds, now, lease)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ClaimJob by %s at %v = job %d, %v; want ErrNotFound", worker, now, j.ID, err)
	}
}

func testJobEnqueue(t *testing.T, s store.Store) {
	in := store.Job{
		Kind: "provision", UniqueKey: "provision:i1", Payload: []byte(`{"a":"\u00e9","b":[1,2]}`),
		State: store.JobDead, Attempts: 9, // ignored: a new job is available with no attempts
		MaxAttempts: 25, RunAt: at(time.Minute), CreatedAt: at(0), UpdatedAt: at(0),
	}
	id := enqueue(t, s, in)
	if id <= 0 {
		t.Fatalf("EnqueueJob returned ID %d", id)
	}
	got, err := s.Job(t.Context(), id)
	noErr(t, "Job", err)
	if got.ID != id || got.Kind != in.Kind || got.UniqueKey != in.UniqueKey || !bytes.Equal(got.Payload, in.Payload) ||
		got.State != store.JobAvailable || got.Attempts != 0 || got.MaxAttempts != 25 ||
		!got.RunAt.Equal(in.RunAt) || got.LockedBy != "" || !got.LockedUntil.IsZero() || got.LastError != "" ||
		!got.CreatedAt.Equal(in.CreatedAt) {
		t.Errorf("Job = %+v, want an available copy of %+v", got, in)
	}
}

func testJobUniqueKey(t *testing.T, s store.Store) {
	first := job("provision", at(0))
	first.UniqueKey = "provision:inst-1"
	id := enqueue(t, s, first)
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		dup := job("provision", at(time.Hour))
		dup.UniqueKey = first.UniqueKey
		gotID, ok, err := tx.EnqueueJob(ctx, dup)
		if err != nil {
			return err
		}
		if ok {
			t.Error("EnqueueJob with a taken unique key reported inserted")
		}
		if gotID != id {
			t.Errorf("EnqueueJob with a taken unique key returned ID %d, want the existing job's %d", gotID, id)
		}
		return nil
	})
	// The key stays taken once the job is done.
	j := claim(t, s, "w", nil, at(0))
	noErr(t, "CompleteJob", s.CompleteJob(t.Context(), j.ID, "w"))
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		dup := job("provision", at(0))
		dup.UniqueKey = first.UniqueKey
		if _, ok, err := tx.EnqueueJob(ctx, dup); err != nil || ok {
			return fmt.Errorf("EnqueueJob after done = %v, %v; want false, nil", ok, err)
		}
		return nil
	})
	// Jobs without a key are never duplicates of each other.
	a := enqueue(t, s, job("notify", at(0)))
	b := enqueue(t, s, job("notify", at(0)))
	if a == b {
		t.Errorf("two jobs without a key got the same ID %d", a)
	}
	all, err := s.Jobs(t.Context(), store.JobFilter{})
	noErr(t, "Jobs", err)
	if len(all) != 3 {
		t.Errorf("%d jobs stored, want 3", len(all))
	}
}

func testJobClaimOrder(t *testing.T, s store.Store) {
	later := enqueue(t, s, job("provision", at(-10*time.Second)))
	earlier := enqueue(t, s, job("provision", at(-20*time.Second)))
	future := enqueue(t, s, job("provision", at(time.Hour)))

	j := claim(t, s, "w1", []string{"provision"}, at(0))
	if j.ID != earlier {
		t.Errorf("first claim took job %d, want the earliest RunAt %d", j.ID, earlier)
	}
	if j.State != store.JobRunning || j.LockedBy != "w1" || !j.LockedUntil.Equal(at(lease)) || j.Attempts != 1 {
		t.Errorf("claimed job = %+v, want running, locked by w1 until now+lease, 1 attempt", j)
	}
	stored, err := s.Job(t.Context(), j.ID)
	noErr(t, "Job", err)
	if stored.State != store.JobRunning || stored.LockedBy != "w1" || stored.Attempts != 1 {
		t.Errorf("stored job after claim = %+v", stored)
	}

	j = claim(t, s, "w1", []string{"provision"}, at(0))
	if j.ID != later {
		t.Errorf("second claim took job %d, want %d", j.ID, later)
	}
	// The future job is not due.
	claimNone(t, s, "w1", []string{"provision"}, at(0))
	noErr(t, "CompleteJob", s.CompleteJob(t.Context(), earlier, "w1"))
	noErr(t, "CompleteJob", s.CompleteJob(t.Context(), later, "w1"))
	j = claim(t, s, "w1", []string{"provision"}, at(time.Hour))
	if j.ID != future {
		t.Errorf("claim at its RunAt took job %d, want %d", j.ID, future)
	}
}

func testJobClaimKinds(t *testing.T, s store.Store) {
	p := enqueue(t, s, job("provision", at(-time.Minute)))
	n := enqueue(t, s, job("notify", at(0)))
	claimNone(t, s, "w", []string{"usage"}, at(0))
	if j := claim(t, s, "w", []string{"notify"}, at(0)); j.ID != n {
		t.Errorf("claim of kind notify took job %d, want %d", j.ID, n)
	}
	if j := claim(t, s, "w", []string{"usage", "provision"}, at(0)); j.ID != p {
		t.Errorf("claim of kinds usage, provision took job %d, want %d", j.ID, p)
	}
}

func testJobLeaseExpiry(t *testing.T, s store.Store) {
	id := enqueue(t, s, job("provision", at(0)))
	j := claim(t, s, "w1", nil, at(0))
	// Within the lease, nobody else takes it.
	claimNone(t, s, "w2", nil, at(lease/2))
	_, err := s.ClaimJobByID(t.Context(), id, "w2", at(lease/2), lease)
	wantErr(t, "ClaimJobByID of a held job", err, store.ErrNotFound)

	// After it, w1 is presumed dead and w2 takes the job over.
	j2 := claim(t, s, "w2", nil, at(lease+time.Second))
	if j2.ID != j.ID || j2.LockedBy != "w2" || j2.Attempts != 2 || !j2.LockedUntil.Equal(at(2*lease+time.Second)) {
		t.Errorf("reclaimed job = %+v, want job %d locked by w2 with 2 attempts", j2, j.ID)
	}
	// w1 wakes up and cannot finish what it no longer holds.
	wantErr(t, "CompleteJob by the old worker", s.CompleteJob(t.Context(), id, "w1"), store.ErrConflict)
	noErr(t, "CompleteJob by the new worker", s.CompleteJob(t.Context(), id, "w2"))
	got, err := s.Job(t.Context(), id)
	noErr(t, "Job", err)
	if got.State != store.JobDone {
		t.Errorf("state %s, want done", got.State)
	}
	// Done jobs are never claimed again.
	claimNone(t, s, "w3", nil, at(24*time.Hour))
}

// testJobConcurrentClaims races 20 workers over 10 jobs: every job is
// claimed exactly once.
func testJobConcurrentClaims(t *testing.T, s store.Store) {
	want := map[int64]bool{}
	for i := range 10 {
		want[enqueue(t, s, job("provision", at(time.Duration(i)*time.Millisecond)))] = true
	}
	var (
		mu      sync.Mutex
		claimed = map[int64][]string{}
		errs    []error
	)
	Race(20, func(i int) {
		worker := fmt.Sprintf("w%02d", i)
		for {
			j, err := s.ClaimJob(context.Background(), worker, []string{"provision"}, at(time.Second), lease)
			mu.Lock()
			switch {
			case errors.Is(err, store.ErrNotFound):
				mu.Unlock()
				return
			case err != nil:
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
	for id, workers := range claimed {
		if !want[id] {
			t.Errorf("claimed unknown job %d", id)
		}
		if len(workers) != 1 {
			t.Errorf("job %d claimed by %d workers %v, want 1", id, len(workers), workers)
		}
	}
	if len(claimed) != len(want) {
		t.Errorf("%d of %d jobs claimed", len(claimed), len(want))
	}
}

func testJobRetry(t *testing.T, s store.Store) {
	id := enqueue(t, s, job("notify", at(0)))
	claim(t, s, "w", nil, at(0))
	noErr(t, "RetryJob", s.RetryJob(t.Context(), id, "w", at(30*time.Second), "vendor answered 503"))
	got, err := s.Job(t.Context(), id)
	noErr(t, "Job", err)
	if got.State != store.JobAvailable || !got.RunAt.Equal(at(30*time.Second)) || got.LastError != "vendor answered 503" ||
		got.LockedBy != "" || got.Attempts != 1 || got.MaxAttempts != 7 {
		t.Errorf("retried job = %+v", got)
	}
	// Not before its new RunAt.
	claimNone(t, s, "w", nil, at(10*time.Second))
	j := claim(t, s, "w2", nil, at(30*time.Second))
	if j.ID != id || j.Attempts != 2 || j.MaxAttempts != 7 || j.LastError != "vendor answered 503" {
		t.Errorf("second claim = %+v, want job %d, attempt 2, MaxAttempts 7, last error kept", j, id)
	}
	// The retry was recorded, so the old worker may not retry again.
	wantErr(t, "RetryJob by the old worker", s.RetryJob(t.Context(), id, "w", at(time.Hour), "x"), store.ErrConflict)
}

func testJobDeadAndRevive(t *testing.T, s store.Store) {
	id := enqueue(t, s, job("provision", at(0)))
	claim(t, s, "w", nil, at(0))
	noErr(t, "DeadJob", s.DeadJob(t.Context(), id, "w", "gave up: permanent"))
	got, err := s.Job(t.Context(), id)
	noErr(t, "Job", err)
	if got.State != store.JobDead || got.LastError != "gave up: permanent" || got.LockedBy != "" {
		t.Errorf("dead job = %+v", got)
	}
	claimNone(t, s, "w", nil, at(24*time.Hour))
	_, err = s.ClaimJobByID(t.Context(), id, "w", at(time.Hour), lease)
	wantErr(t, "ClaimJobByID of a dead job", err, store.ErrNotFound)

	noErr(t, "ReviveJob", s.ReviveJob(t.Context(), id, at(time.Hour)))
	got, err = s.Job(t.Context(), id)
	noErr(t, "Job", err)
	if got.State != store.JobAvailable || got.Attempts != 0 || !got.RunAt.Equal(at(time.Hour)) ||
		got.LastError != "gave up: permanent" || got.MaxAttempts != 7 {
		t.Errorf("revived job = %+v, want available at now with 0 attempts, last error kept", got)
	}
	wantErr(t, "ReviveJob of an available job", s.ReviveJob(t.Context(), id, at(time.Hour)), store.ErrConflict)
	j := claim(t, s, "w", nil, at(time.Hour))
	if j.ID != id || j.Attempts != 1 {
		t.Errorf("claim after revive = %+v", j)
	}
	wantErr(t, "ReviveJob of a running job", s.ReviveJob(t.Context(), id, at(time.Hour)), store.ErrConflict)

	// Done jobs can be re-run too.
	noErr(t, "CompleteJob", s.CompleteJob(t.Context(), id, "w"))
	noErr(t, "ReviveJob of a done job", s.ReviveJob(t.Context(), id, at(2*time.Hour)))
	wantErr(t, "ReviveJob of an absent job", s.ReviveJob(t.Context(), id+1000, at(0)), store.ErrNotFound)
}

func testJobWrongWorker(t *testing.T, s store.Store) {
	id := enqueue(t, s, job("provision", at(0)))
	// Not claimed yet: nobody holds it.
	wantErr(t, "CompleteJob of an unclaimed job", s.CompleteJob(t.Context(), id, "w1"), store.ErrConflict)
	claim(t, s, "w1", nil, at(0))
	wantErr(t, "CompleteJob by another worker", s.CompleteJob(t.Context(), id, "w2"), store.ErrConflict)
	wantErr(t, "RetryJob by another worker", s.RetryJob(t.Context(), id, "w2", at(time.Minute), "x"), store.ErrConflict)
	wantErr(t, "DeadJob by another worker", s.DeadJob(t.Context(), id, "w2", "x"), store.ErrConflict)
	got, err := s.Job(t.Context(), id)
	noErr(t, "Job", err)
	if got.State != store.JobRunning || got.LockedBy != "w1" || got.LastError != "" {
		t.Errorf("job changed by the wrong worker: %+v", got)
	}
	noErr(t, "CompleteJob by the holder", s.CompleteJob(t.Context(), id, "w1"))
	wantErr(t, "CompleteJob twice", s.CompleteJob(t.Context(), id, "w1"), store.ErrConflict)
	wantErr(t, "DeadJob of a done job", s.DeadJob(t.Context(), id, "w1", "x"), store.ErrConflict)

	const absent = 1 << 40
	wantErr(t, "CompleteJob of an absent job", s.CompleteJob(t.Context(), absent, "w1"), store.ErrNotFound)
	wantErr(t, "RetryJob of an absent job", s.RetryJob(t.Context(), absent, "w1", at(0), "x"), store.ErrNotFound)
	wantErr(t, "DeadJob of an absent job", s.DeadJob(t.Context(), absent, "w1", "x"), store.ErrNotFound)
}

func testJobClaimByID(t *testing.T, s store.Store) {
	other := enqueue(t, s, job("provision", at(-time.Hour)))
	id := enqueue(t, s, job("provision", at(time.Hour)))
	// Available but not yet due: ClaimJobByID takes it anyway.
	j, err := s.ClaimJobByID(t.Context(), id, "call-1", at(0), 10*time.Second)
	noErr(t, "ClaimJobByID", err)
	if j.ID != id || j.State != store.JobRunning || j.LockedBy != "call-1" || j.Attempts != 1 ||
		!j.LockedUntil.Equal(at(10*time.Second)) || j.MaxAttempts != 7 {
		t.Errorf("ClaimJobByID = %+v", j)
	}
	// Held: neither ClaimJobByID nor ClaimJob gets it; ClaimJob gets the other.
	_, err = s.ClaimJobByID(t.Context(), id, "call-2", at(time.Second), lease)
	wantErr(t, "ClaimJobByID of a held job", err, store.ErrNotFound)
	if j := claim(t, s, "w", nil, at(time.Second)); j.ID != other {
		t.Errorf("ClaimJob took job %d, want %d", j.ID, other)
	}
	// The holder hands it back for later; then it is claimable by ID again.
	noErr(t, "RetryJob", s.RetryJob(t.Context(), id, "call-1", at(time.Hour), "budget exceeded"))
	j, err = s.ClaimJobByID(t.Context(), id, "call-3", at(time.Minute), lease)
	noErr(t, "ClaimJobByID after retry", err)
	if j.Attempts != 2 || j.LockedBy != "call-3" {
		t.Errorf("ClaimJobByID after retry = %+v", j)
	}
	// Expired lease: claimable by ID.
	j, err = s.ClaimJobByID(t.Context(), id, "call-4", at(time.Minute+lease+time.Second), lease)
	noErr(t, "ClaimJobByID after lease expiry", err)
	if j.LockedBy != "call-4" || j.Attempts != 3 {
		t.Errorf("ClaimJobByID after lease expiry = %+v", j)
	}
	noErr(t, "CompleteJob", s.CompleteJob(t.Context(), id, "call-4"))
	_, err = s.ClaimJobByID(t.Context(), id, "call-5", at(24*time.Hour), lease)
	wantErr(t, "ClaimJobByID of a done job", err, store.ErrNotFound)
	_, err = s.ClaimJobByID(t.Context(), id+1000, "call-5", at(0), lease)
	wantErr(t, "ClaimJobByID of an absent job", err, store.ErrNotFound)
}

// testJobRunAtIsWhenItRan: a claim sets RunAt to its time, so a job
// claimed before it was due (a call running its own job by ID) or after
// (a worker polling late) shows when it last ran, never a time after it
// finished; a retry's RunAt is when it is due again.
func testJobRunAtIsWhenItRan(t *testing.T, s store.Store) {
	cases := []struct {
		name         string
		runAt, claim time.Duration
		byID         bool
	}{
		{"by ID before it is due", time.Hour, 0, true},
		{"by ID when due", 0, time.Second, true},
		{"due, claimed late", -time.Minute, 0, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kind := fmt.Sprintf("ran-%d", i)
			id := enqueue(t, s, job(kind, at(c.runAt)))
			var (
				j   store.Job
				err error
			)
			if c.byID {
				j, err = s.ClaimJobByID(t.Context(), id, "w", at(c.claim), lease)
				noErr(t, "ClaimJobByID", err)
			} else {
				j = claim(t, s, "w", []string{kind}, at(c.claim))
			}
			if j.ID != id || !j.RunAt.Equal(at(c.claim)) {
				t.Errorf("claimed job %d RunAt %v, want job %d at the claim's time %v", j.ID, j.RunAt, id, at(c.claim))
			}
			noErr(t, "CompleteJob", s.CompleteJob(t.Context(), id, "w"))
			done, err := s.Job(t.Context(), id)
			noErr(t, "Job", err)
			if done.State != store.JobDone || !done.RunAt.Equal(at(c.claim)) || done.UpdatedAt.Before(done.RunAt) {
				t.Errorf("done job: state %s, RunAt %v, UpdatedAt %v; want done, run at %v, updated not before",
					done.State, done.RunAt, done.UpdatedAt, at(c.claim))
			}
		})
	}

	// A failed attempt is due again at the retry's time, and its next
	// claim is when it ran.
	id := enqueue(t, s, job("ran-retry", at(time.Hour)))
	_, err := s.ClaimJobByID(t.Context(), id, "w", at(0), lease)
	noErr(t, "ClaimJobByID", err)
	noErr(t, "RetryJob", s.RetryJob(t.Context(), id, "w", at(time.Minute), "busy"))
	if got, err := s.Job(t.Context(), id); err != nil || got.State != store.JobAvailable || !got.RunAt.Equal(at(time.Minute)) {
		t.Errorf("retried job = %+v, %v; want available at %v", got, err, at(time.Minute))
	}
	if j := claim(t, s, "w", []string{"ran-retry"}, at(2*time.Minute)); j.ID != id || !j.RunAt.Equal(at(2*time.Minute)) {
		t.Errorf("second claim: job %d RunAt %v, want job %d at %v", j.ID, j.RunAt, id, at(2*time.Minute))
	}
}

func testJobList(t *testing.T, s store.Store) {
	var ids []int64
	for i, kind := range []string{"provision", "notify", "provision", "notify", "provision"} {
		ids = append(ids, enqueue(t, s, job(kind, at(time.Duration(i)*time.Second))))
	}
	// Make ids[0] done and ids[2] dead.
	for _, id := range []int64{ids[0], ids[2]} {
		j, err := s.ClaimJobByID(t.Context(), id, "w", at(0), lease)
		noErr(t, "ClaimJobByID", err)
		if j.ID == ids[0] {
			noErr(t, "CompleteJob", s.CompleteJob(t.Context(), j.ID, "w"))
		} else {
			noErr(t, "DeadJob", s.DeadJob(t.Context(), j.ID, "w", "boom"))
		}
	}
	desc := func(idx ...int) []int64 {
		var out []int64
		for _, i := range idx {
			out = append(out, ids[i])
		}
		sort.Slice(out, func(a, b int) bool { return out[a] > out[b] })
		return out
	}
	tests := []struct {
		name string
		f    store.JobFilter
		want []int64
	}{
		{"all", store.JobFilter{}, desc(0, 1, 2, 3, 4)},
		{"kind", store.JobFilter{Kind: "notify"}, desc(1, 3)},
		{"state dead", store.JobFilter{State: store.JobDead}, desc(2)},
		{"state available", store.JobFilter{State: store.JobAvailable}, desc(1, 3, 4)},
		{"kind and state", store.JobFilter{Kind: "provision", State: store.JobAvailable}, desc(4)},
		{"kind and state done", store.JobFilter{Kind: "provision", State: store.JobDone}, desc(0)},
		{"kind and state, none", store.JobFilter{Kind: "notify", State: store.JobDone}, nil},
		{"before", store.JobFilter{BeforeID: ids[3]}, desc(0, 1, 2)},
		{"limit", store.JobFilter{Limit: 2}, desc(3, 4)},
		{"page", store.JobFilter{BeforeID: ids[3], Limit: 2}, desc(1, 2)},
	}
	for _, tc := range tests {
		got, err := s.Jobs(t.Context(), tc.f)
		noErr(t, tc.name, err)
		var gotIDs []int64
		for _, j := range got {
			gotIDs = append(gotIDs, j.ID)
		}
		if fmt.Sprint(gotIDs) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, gotIDs, tc.want)
		}
	}
}

func testJobNotFound(t *testing.T, s store.Store) {
	_, err := s.Job(t.Context(), 12345)
	wantErr(t, "Job", err, store.ErrNotFound)
	claimNone(t, s, "w", nil, at(0))
	claimNone(t, s, "w", []string{"provision"}, at(0))
}

// enqueueClaimed inserts job claimed by worker at now in its own
// transaction and returns it as stored.
func enqueueClaimed(t *testing.T, s store.Store, job store.Job, worker string, now time.Time) store.Job {
	t.Helper()
	var j store.Job
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		var (
			ok  bool
			err error
		)
		j, ok, err = tx.EnqueueClaimedJob(ctx, job, worker, now, lease)
		if err == nil && !ok {
			err = fmt.Errorf("job %+v not inserted", job)
		}
		return err
	})
	return j
}

// testJobEnqueueClaimed: a job inserted claimed is held as a claim holds
// it: nobody else takes it within the lease, another worker takes it over
// once the lease has expired (its first holder presumed dead), and the
// first holder can no longer finish it.
func testJobEnqueueClaimed(t *testing.T, s store.Store) {
	in := job("provision", at(time.Hour)) // RunAt is ignored: the attempt begins now
	in.State, in.Attempts, in.LockedBy = store.JobDead, 9, "someone"
	j := enqueueClaimed(t, s, in, "call-1", at(0))
	got, err := s.Job(t.Context(), j.ID)
	noErr(t, "Job", err)
	if got.State != store.JobRunning || got.Attempts != 1 || got.MaxAttempts != 7 || got.LockedBy != "call-1" ||
		!got.LockedUntil.Equal(at(lease)) || !got.RunAt.Equal(at(0)) || !got.CreatedAt.Equal(at(0)) ||
		!bytes.Equal(got.Payload, in.Payload) || got.Kind != "provision" {
		t.Errorf("Job = %+v, want running, locked by call-1 until %v, attempt 1", got, at(lease))
	}
	if d := diff(normJob(j), normJob(got)); d != "" {
		t.Errorf("EnqueueClaimedJob returned another job than it stored:%s", d)
	}

	claimNone(t, s, "w2", nil, at(lease/2))
	_, err = s.ClaimJobByID(t.Context(), j.ID, "w2", at(lease/2), lease)
	wantErr(t, "ClaimJobByID of a job inserted claimed", err, store.ErrNotFound)

	j2 := claim(t, s, "w2", nil, at(lease+time.Second))
	if j2.ID != j.ID || j2.LockedBy != "w2" || j2.Attempts != 2 {
		t.Errorf("job taken over after the lease = %+v, want job %d locked by w2, attempt 2", j2, j.ID)
	}
	wantErr(t, "CompleteJob by the first holder", s.CompleteJob(t.Context(), j.ID, "call-1"), store.ErrConflict)
	noErr(t, "CompleteJob by the new holder", s.CompleteJob(t.Context(), j.ID, "w2"))
}

// testJobEnqueueClaimedUniqueKey: a taken unique key inserts nothing and
// claims nothing; the job holding the key is returned as it stands.
func testJobEnqueueClaimedUniqueKey(t *testing.T, s store.Store) {
	first := job("provision", at(0))
	first.UniqueKey = "provision:inst-1"
	id := enqueue(t, s, first)
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		got, ok, err := tx.EnqueueClaimedJob(ctx, first, "call-1", at(time.Second), lease)
		if err != nil {
			return err
		}
		if ok || got.ID != id || got.State != store.JobAvailable || got.LockedBy != "" || got.Attempts != 0 {
			t.Errorf("EnqueueClaimedJob with a taken key = %+v, %v; want the existing available job %d, not inserted", got, ok, id)
		}
		return nil
	})
	// The existing job is still there for any worker.
	if j := claim(t, s, "w", nil, at(time.Second)); j.ID != id || j.Attempts != 1 {
		t.Errorf("claim = %+v, want job %d at attempt 1", j, id)
	}
}

// testJobCompleteInTx: a handler completes its job in its own
// transaction: done only if that commits, and only while it holds the job.
func testJobCompleteInTx(t *testing.T, s store.Store) {
	complete := func(id int64, worker string, then error) error {
		return s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
			if err := tx.CompleteJob(ctx, id, worker); err != nil {
				return err
			}
			return then
		})
	}
	state := func(id int64) store.Job {
		t.Helper()
		j, err := s.Job(t.Context(), id)
		noErr(t, "Job", err)
		return j
	}

	id := enqueue(t, s, job("provision", at(0)))
	claim(t, s, "w1", nil, at(0))
	// Rolled back with its transaction.
	wantErr(t, "Tx completing then failing", complete(id, "w1", errBoom), errBoom)
	if j := state(id); j.State != store.JobRunning || j.LockedBy != "w1" {
		t.Fatalf("job after a rolled-back completion = %+v, want still running for w1", j)
	}
	// Not by a worker that does not hold it.
	wantErr(t, "CompleteJob by another worker", complete(id, "w2", nil), store.ErrConflict)
	// Committed with it.
	noErr(t, "CompleteJob in a transaction", complete(id, "w1", nil))
	if j := state(id); j.State != store.JobDone || j.LockedBy != "" || !j.LockedUntil.IsZero() {
		t.Errorf("job after completion = %+v, want done and unlocked", j)
	}
	wantErr(t, "CompleteJob of a done job", complete(id, "w1", nil), store.ErrConflict)
	wantErr(t, "CompleteJob of an absent job", complete(id+1000, "w1", nil), store.ErrNotFound)

	// A holder whose lease expired and was taken over cannot complete, and
	// the rest of its transaction rolls back with the refusal.
	in := fullInstance("jc-1", "CSJC", "CSJC-000001")
	j := enqueueClaimed(t, s, job("provision", at(0)), "call-1", at(0))
	claim(t, s, "w2", nil, at(lease+time.Second))
	err := s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.InsertInstance(ctx, in); err != nil {
			return err
		}
		return tx.CompleteJob(ctx, j.ID, "call-1")
	})
	wantErr(t, "CompleteJob after a takeover", err, store.ErrConflict)
	if got := state(j.ID); got.State != store.JobRunning || got.LockedBy != "w2" {
		t.Errorf("job after the old holder's completion = %+v, want running for w2", got)
	}
	_, err = s.Instance(t.Context(), in.ID)
	wantErr(t, "Instance written with a refused completion", err, store.ErrNotFound)
}

// normJob is j with its times comparable by reflect.DeepEqual.
func normJob(j store.Job) store.Job {
	j.RunAt, j.LockedUntil = normTime(j.RunAt), normTime(j.LockedUntil)
	j.CreatedAt, j.UpdatedAt = normTime(j.CreatedAt), normTime(j.UpdatedAt)
	return j
}
