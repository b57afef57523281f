package ledger

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/dbtest"
)

// countingStore counts the delete batches the sweep sends to a real store.
type countingStore struct {
	store.Store
	batches atomic.Int64
}

func (c *countingStore) DeleteCalls(ctx context.Context, kind store.CallKind, before time.Time, limit int) (int64, error) {
	c.batches.Add(1)
	return c.Store.DeleteCalls(ctx, kind, before, limit)
}

// fill inserts n calls of kind, each created at created.
func fill(t *testing.T, st store.Store, kind store.CallKind, n int, created time.Time, name string) {
	t.Helper()
	c := store.Call{Activity: "newInstance", ResultCode: "000000", IdemKey: "newInstance:O:L", HTTPStatus: 200, CreatedAt: created}
	if kind == store.CallsRejected {
		c.ResultCode, c.IdemKey = "000001", ""
	}
	for i := range n {
		c.RequestID = name
		c.CreatedAt = created.Add(time.Duration(i) * time.Millisecond)
		if _, err := st.InsertCall(t.Context(), c); err != nil {
			t.Fatalf("InsertCall: %v", err)
		}
	}
}

// swept reads koobridge_ledger_swept_total from reg, by kind.
func swept(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "koobridge_ledger_swept_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" {
					out[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// left counts the calls left by request ID.
func left(t *testing.T, st store.Store) map[string]int {
	t.Helper()
	calls, err := st.Calls(t.Context(), store.CallFilter{Limit: 1000})
	if err != nil {
		t.Fatalf("Calls: %v", err)
	}
	out := map[string]int{}
	for _, c := range calls {
		out[c.RequestID]++
	}
	return out
}

// TestSweepJobDeletesInBatches runs the sweep as a job of a real runner on
// each database: the old calls go, several batches each, the new ones and
// the answered ones younger than their longer retention stay.
func TestSweepJobDeletesInBatches(t *testing.T) {
	for _, d := range dbtest.Dialects {
		t.Run(d.Name, func(t *testing.T) {
			real := d.Open(t)
			st := &countingStore{Store: real}
			now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
			day := 24 * time.Hour
			fill(t, real, store.CallsAnswered, 23, now.Add(-40*day), "answered-old")
			fill(t, real, store.CallsAnswered, 4, now.Add(-10*day), "answered-mid")
			fill(t, real, store.CallsRejected, 17, now.Add(-3*day), "rejected-old")
			fill(t, real, store.CallsRejected, 3, now.Add(-time.Hour), "rejected-new")
			fill(t, real, store.CallsAnswered, 5, now.Add(-time.Hour), "answered-new")

			var logs bytes.Buffer
			reg := prometheus.NewRegistry()
			runner := jobs.NewRunner(jobs.Config{Store: real, Workers: 1, Poll: 10 * time.Millisecond, Now: func() time.Time { return now }})
			sw, err := New(Config{
				Store: st, Jobs: runner, Answered: 30 * day, Rejected: 2 * day, Registerer: reg,
				Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now },
			})
			if err != nil {
				t.Fatal(err)
			}
			sw.batch, sw.pause = 5, 0
			if err := runner.RegisterAll(sw.Jobs()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- runner.Run(ctx) }()
			if err := sw.enqueue(t.Context(), now.Truncate(Interval)); err != nil {
				t.Fatal(err)
			}
			// A second replica's enqueue of the same interval adds nothing.
			if err := sw.enqueue(t.Context(), now.Truncate(Interval)); err != nil {
				t.Fatal(err)
			}
			var job store.Job
			for job.State != store.JobDone && job.State != store.JobDead {
				list, err := real.Jobs(t.Context(), store.JobFilter{Kind: KindSweep})
				if err != nil {
					t.Fatal(err)
				}
				if len(list) != 1 {
					t.Fatalf("%d sweep jobs, want 1", len(list))
				}
				job = list[0]
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if job.State != store.JobDone {
				t.Fatalf("sweep job %s: %s", job.State, job.LastError)
			}

			want := map[string]int{"answered-mid": 4, "rejected-new": 3, "answered-new": 5}
			got := left(t, real)
			if len(got) != len(want) {
				t.Errorf("left %v, want %v", got, want)
			}
			for k, n := range want {
				if got[k] != n {
					t.Errorf("left %v, want %v", got, want)
					break
				}
			}
			// 17 rejected in batches of 5: 5, 5, 5, 2; 23 answered: 5×4, 3.
			if n := st.batches.Load(); n != 4+5 {
				t.Errorf("%d delete batches, want 9", n)
			}
			if got, want := swept(t, reg), map[string]float64{"answered": 23, "rejected": 17}; len(got) != 2 ||
				got["answered"] != want["answered"] || got["rejected"] != want["rejected"] {
				t.Errorf("koobridge_ledger_swept_total = %v, want %v", got, want)
			}
			if line := logs.String(); !strings.Contains(line, "msg=\"ledger swept\" answered=23 rejected=17") {
				t.Errorf("log %q lacks the sweep's counts", line)
			}
		})
	}
}

// TestSweepRejectedFollowsAnswered checks that a zero rejected retention
// follows the answered one, and that with neither set nothing is swept.
func TestSweepRejectedFollowsAnswered(t *testing.T) {
	day := 24 * time.Hour
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name              string
		answered          time.Duration
		enabled           bool
		wantLeftRejected  int
		wantLeftAnswered  int
		wantSweptRejected int64
	}{
		{"both follow one setting", 2 * day, true, 0, 0, 6},
		{"off", 0, false, 6, 7, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := dbtest.Dialects[0].Open(t)
			fill(t, st, store.CallsRejected, 6, now.Add(-3*day), "rejected")
			fill(t, st, store.CallsAnswered, 7, now.Add(-3*day), "answered")
			sw, err := New(Config{Store: st, Jobs: jobs.NewRunner(jobs.Config{Store: st}), Answered: tc.answered,
				Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			if sw.Enabled() != tc.enabled {
				t.Fatalf("Enabled() = %v, want %v", sw.Enabled(), tc.enabled)
			}
			deleted, err := sw.Sweep(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if deleted[store.CallsRejected] != tc.wantSweptRejected {
				t.Errorf("swept %d rejected, want %d", deleted[store.CallsRejected], tc.wantSweptRejected)
			}
			got := left(t, st)
			if got["rejected"] != tc.wantLeftRejected || got["answered"] != tc.wantLeftAnswered {
				t.Errorf("left %v, want rejected %d, answered %d", got, tc.wantLeftRejected, tc.wantLeftAnswered)
			}
		})
	}
}

// TestCheckRetention checks the floor and the sign.
func TestCheckRetention(t *testing.T) {
	tests := []struct {
		d       time.Duration
		wantErr string
	}{
		{0, ""},
		{MinRetention, ""},
		{90 * 24 * time.Hour, ""},
		{-time.Hour, "is negative"},
		{MinRetention - time.Second, "below the floor of 24h0m0s"},
		{time.Hour, "below the floor of 24h0m0s"},
	}
	for _, tc := range tests {
		err := CheckRetention("x", tc.d)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("CheckRetention(%s) = %v, want nil", tc.d, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("CheckRetention(%s) = %v, want %q", tc.d, err, tc.wantErr)
		}
	}
	if _, err := New(Config{Store: dbtest.Dialects[0].Open(t), Jobs: jobs.NewRunner(jobs.Config{}), Rejected: time.Hour}); err == nil ||
		!strings.Contains(err.Error(), "rejected-call retention 1h0m0s is below the floor") {
		t.Errorf("New with a rejected retention of 1h = %v, want the floor named", err)
	}
}

// TestSweepJobCutShortIsDone: a sweep job whose deadline passes mid-way is
// done, not failed, so a large backlog never dead-letters the job; the
// calls it did not reach are left for the next one.
func TestSweepJobCutShortIsDone(t *testing.T) {
	st := dbtest.Dialects[0].Open(t)
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	fill(t, st, store.CallsAnswered, 3, now.Add(-10*24*time.Hour), "old")
	var logs bytes.Buffer
	sw, err := New(Config{Store: st, Jobs: jobs.NewRunner(jobs.Config{Store: st}), Answered: 2 * 24 * time.Hour,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := sw.Jobs()[KindSweep](ctx, store.Job{Kind: KindSweep}); err != nil {
		t.Errorf("sweep job past its deadline = %v, want nil (done)", err)
	}
	if !strings.Contains(logs.String(), "ledger sweep stopped at its deadline") {
		t.Errorf("log %q does not say the sweep stopped", logs.String())
	}
	// A job with time left fails on a real error all the same.
	broken := dbtest.Dialects[0].Open(t)
	broken.Close()
	sw.store = broken
	if err := sw.Jobs()[KindSweep](t.Context(), store.Job{Kind: KindSweep}); err == nil {
		t.Error("sweep job on a closed database = nil, want its error")
	}
}
