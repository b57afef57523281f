package license_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/license"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// TestEventDelivery: a vendor event is retried until the vendor takes it,
// once; a permanent refusal ends its job dead; debug codes' events go to
// the test provisioner.
func TestEventDelivery(t *testing.T) {
	tests := []struct {
		name     string
		test     bool
		fail     func(calls int32) error // the vendor's answer to delivery number calls
		state    store.JobState
		real     int // events the real provisioner took
		debug    int // events the test provisioner took
		attempts int
	}{
		{"taken at once", false, func(int32) error { return nil }, store.JobDone, 1, 0, 1},
		{"two failures, then taken", false, func(n int32) error {
			if n <= 2 {
				return errors.New("vendor down")
			}
			return nil
		}, store.JobDone, 1, 0, 3},
		{"refused for good", false, func(int32) error { return provision.Permanent(errors.New("no such product")) }, store.JobDead, 0, 0, 1},
		{"debug code", true, func(int32) error { return nil }, store.JobDone, 0, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, dialects[0].open(t), options{})
			var calls atomic.Int32
			fail := func(provision.Event) error { return tc.fail(calls.Add(1)) }
			e.real.fail, e.test.fail = fail, fail
			testFlag := ""
			if tc.test {
				testFlag = "1"
			}
			a, err := e.svc.SetStatus(context.Background(), protocol.UpdateLicenseCodeStatusRequest{
				ActivityName: protocol.ActivityUpdateLicenseCodeStatus, License: "PL-E", Status: "FREEZE", TestFlag: testFlag})
			if err != nil || a.Code != protocol.CodeSuccess {
				t.Fatalf("freeze: %+v %v", a, err)
			}
			deadline := time.Now().Add(waitFor)
			var job store.Job
			for {
				js, err := e.st.Jobs(context.Background(), store.JobFilter{Kind: license.KindEvent})
				if err != nil || len(js) != 1 {
					t.Fatalf("%d event jobs (%v), want 1", len(js), err)
				}
				if job = js[0]; job.State == store.JobDone || job.State == store.JobDead {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("job still %s after %v", job.State, waitFor)
				}
				e.clk.Advance(time.Second) // retries come due
				time.Sleep(10 * time.Millisecond)
			}
			if job.State != tc.state || job.Attempts != tc.attempts || len(e.real.delivered()) != tc.real || len(e.test.delivered()) != tc.debug {
				t.Fatalf("job %s after %d attempts, %d real and %d debug events; want %s, %d, %d, %d",
					job.State, job.Attempts, len(e.real.delivered()), len(e.test.delivered()), tc.state, tc.attempts, tc.real, tc.debug)
			}
			evs := append(e.real.delivered(), e.test.delivered()...)
			if len(evs) == 1 {
				ev := evs[0]
				if ev.Type != provision.EventLicenseFrozen || ev.Test != tc.test || ev.License.Code != "PL-E" || ev.License.Status != "frozen" ||
					!strings.HasPrefix(ev.ID, "license.frozen:PL-E:") || job.UniqueKey != ev.ID {
					t.Errorf("event %+v (job key %s)", ev, job.UniqueKey)
				}
			}
		})
	}
}
