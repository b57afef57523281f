package license_test

import (
	"context"
	"errors"
	"slices"
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
			e := newEnv(t, dialects[0].Open(t), options{})
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

// TestEventsCorrected: an event whose first delivery failed reaches the
// vendor after a later one; the domain then sends the code's current
// status again (license.unfrozen for active, license.frozen,
// license.released), so the vendor's last word is the code's status. In
// order, nothing is corrected. A renewal that lifts a freeze says so
// with license.unfrozen.
func TestEventsCorrected(t *testing.T) {
	type call func(e *env) (license.Answer, error)
	status := func(st string) call {
		return func(e *env) (license.Answer, error) {
			return e.svc.SetStatus(context.Background(), protocol.UpdateLicenseCodeStatusRequest{
				ActivityName: protocol.ActivityUpdateLicenseCodeStatus, License: "PL-ORD", Status: st})
		}
	}
	freeze, unfreeze := status(protocol.StatusFreeze), status(protocol.StatusUnfreeze)
	release := func(e *env) (license.Answer, error) {
		return e.svc.Release(context.Background(), protocol.ReleaseLicenseCodeRequest{ActivityName: protocol.ActivityReleaseLicenseCode, License: "PL-ORD"})
	}
	renew := func(e *env) (license.Answer, error) {
		return e.svc.Refresh(context.Background(), protocol.RefreshLicenseCodeRequest{ActivityName: protocol.ActivityRefreshLicenseCode,
			Scene: protocol.SceneRenewal, OrderID: "R1", OrderLineID: "R1-1", License: "PL-ORD",
			ExpireTime: e.clk.Now().AddDate(1, 0, 0).Format("20060102150405")})
	}
	tests := []struct {
		name    string
		held    provision.EventType // its delivery fails until an event of type after was delivered
		after   provision.EventType
		calls   []call
		inOrder bool   // every event delivered before the next call
		want    string // the events delivered, in order ("" when the order is the runner's)
		status  string
		anyway  bool // want's order is the runner's: compare sorted
	}{
		{"frozen delivered after unfrozen", provision.EventLicenseFrozen, provision.EventLicenseUnfrozen, []call{freeze, unfreeze}, false,
			"license.unfrozen/active,license.frozen/frozen,license.unfrozen/active(fix)", "active", false},
		{"frozen delivered after released", provision.EventLicenseFrozen, provision.EventLicenseReleased, []call{freeze, release}, false,
			"license.released/released,license.frozen/frozen,license.released/released(fix)", "released", false},
		{"unfrozen delivered after the next freeze", provision.EventLicenseUnfrozen, provision.EventLicenseFrozen, []call{freeze, unfreeze, freeze}, false,
			"", "frozen", false},
		{"in order", "", "", []call{freeze, unfreeze}, true,
			"license.frozen/frozen,license.unfrozen/active", "active", false},
		{"a renewal lifting a freeze", "", "", []call{freeze, renew}, true,
			"license.frozen/frozen,license.renewed/active,license.unfrozen/active", "active", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forEachDialect(t, options{}, func(t *testing.T, e *env) {
				seen := false
				e.real.fail = func(ev provision.Event) error {
					switch {
					case ev.Type == tc.after:
						seen = true
					case ev.Type == tc.held && !seen:
						return errors.New("vendor webhook: 503")
					}
					return nil
				}
				for _, c := range tc.calls {
					if a, err := c(e); err != nil || a.Code != protocol.CodeSuccess {
						t.Fatalf("call: %+v %v", a, err)
					}
					if tc.inOrder {
						e.settle(t, license.KindEvent)
					}
				}
				e.settle(t, license.KindEvent)
				delivered := e.real.delivered()
				var got []string
				for _, ev := range delivered {
					s := string(ev.Type) + "/" + ev.License.Status
					if strings.Contains(ev.ID, ":fix-") {
						s += "(fix)"
					}
					got = append(got, s)
				}
				if c := e.code(t, "PL-ORD"); string(c.Status) != tc.status {
					t.Fatalf("code %s, want %s", c.Status, tc.status)
				}
				if last := delivered[len(delivered)-1]; last.License.Status != tc.status {
					t.Errorf("the vendor's last word is %s (%s, of %v), the code is %s", last.License.Status, last.ID, got, tc.status)
				}
				want := strings.Split(tc.want, ",")
				if tc.anyway {
					slices.Sort(got)
					slices.Sort(want)
				}
				if tc.want != "" && !slices.Equal(got, want) {
					t.Errorf("delivered %v, want %s", got, tc.want)
				}
			})
		})
	}
}
