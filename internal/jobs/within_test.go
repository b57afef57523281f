package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/store"
)

// TestRunWithin: a call runs its job's first attempt itself, without a
// worker running; it stops waiting at its deadline while the job goes on;
// Wait waits for that job; once Wait has begun RunWithin leaves jobs to
// the workers.
func TestRunWithin(t *testing.T) {
	st := openStore(t, "")
	release := make(chan struct{})
	started := make(chan int64, 2)
	r := jobs.NewRunner(jobs.Config{
		Store:  st,
		Logger: quiet,
		Handlers: map[string]jobs.HandlerFunc{"slow": func(ctx context.Context, j store.Job) error {
			started <- j.ID
			<-release
			return nil
		}},
	})
	ids := enqueue(t, st, store.Job{Kind: "slow", MaxAttempts: 3}, store.Job{Kind: "slow", MaxAttempts: 3})

	// No worker runs (Run was not called): only RunWithin can start it.
	r.RunWithin(context.Background(), ids[0], time.Now().Add(20*time.Millisecond))
	if got := <-started; got != ids[0] {
		t.Fatalf("ran job %d, want %d", got, ids[0])
	}
	if j, err := st.Job(context.Background(), ids[0]); err != nil || j.State != store.JobRunning {
		t.Fatalf("after the deadline the job is %+v (%v), want still running", j, err)
	}

	waited := make(chan struct{})
	go func() { r.Wait(); close(waited) }()
	select {
	case <-waited:
		t.Fatal("Wait returned while a job RunWithin started was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-waited
	if j := waitState(t, st, ids[0], store.JobDone); j.Attempts != 1 {
		t.Errorf("job %+v, want done after 1 attempt", j)
	}

	// After Wait, a call leaves its job queued for the workers.
	r.RunWithin(context.Background(), ids[1], time.Now().Add(time.Second))
	if j, err := st.Job(context.Background(), ids[1]); err != nil || j.State != store.JobAvailable || j.Attempts != 0 {
		t.Errorf("job after Wait: %+v (%v), want available and never attempted", j, err)
	}
	select {
	case id := <-started:
		t.Errorf("job %d ran after Wait", id)
	default:
	}
}
