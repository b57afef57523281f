package license_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/license"
	"github.com/koobridge/koobridge/internal/store"
)

// usagePushes counts the software-usage-info requests KooGallery got, and
// those it accepted.
func (e *env) usagePushes() (all, ok int) {
	for _, r := range e.api.Requests() {
		if r.Path == mockapi.SoftwareUsagePath {
			all++
			if r.Code == "92020000" {
				ok++
			}
		}
	}
	return all, ok
}

// waitPushes waits until KooGallery accepted n usage pushes, moving the
// clock on so that retries come due.
func (e *env) waitPushes(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		if _, ok := e.usagePushes(); ok >= n {
			e.settle(t, license.KindUsage)
			return
		}
		if time.Now().After(deadline) {
			all, ok := e.usagePushes()
			t.Fatalf("%d usage pushes accepted (%d sent), want %d", ok, all, n)
		}
		e.clk.Advance(time.Second)
		time.Sleep(10 * time.Millisecond)
	}
}

// run starts the usage loop until the test ends.
func (e *env) run(t *testing.T, svc *license.Service) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestUsage: the usage job reports every device of the real codes seen
// since its last report, by code, at most 100 codes a request, through an
// outage; debug codes never; a device seen again is reported again in a
// later interval, alone.
func TestUsage(t *testing.T) {
	forEachDialect(t, options{devices: license.DevicesUnlimited}, func(t *testing.T, e *env) {
		ctx := context.Background()
		const codes = 150
		for i := range codes {
			code := fmt.Sprintf("PL-U%03d", i)
			e.issue(t, code, 1)
			devices := 1 + i%2 // odd codes have two devices
			for d := range devices {
				if _, err := e.svc.Activate(ctx, code, fmt.Sprintf("%s|dev-%d", fp, d)); err != nil {
					t.Fatal(err)
				}
			}
		}
		// A debug code with a device (a debug code is only ever made by
		// the production interface's debug calls).
		err := e.st.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
			if _, err := tx.InsertLicenseCode(ctx, store.LicenseCode{Code: "PL-U000", Test: true, Status: store.LicenseActive}); err != nil {
				return err
			}
			_, err := tx.UpsertLicenseDevice(ctx, store.LicenseDevice{Code: "PL-U000", Test: true, Device: e.svc.DeviceID("debug"), LastSeen: e.clk.Now()})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		e.api.SetLicenseFault(mockapi.Fault{Status: http.StatusServiceUnavailable, Count: 1})
		e.run(t, e.svc)
		e.run(t, e.replica(t)) // a second replica: one push per interval all the same
		e.waitPushes(t, 2)

		if all, ok := e.usagePushes(); all != 3 || ok != 2 {
			t.Errorf("%d pushes, %d accepted; want 3 and 2 (one refused by the outage, then 100 codes and 50)", all, ok)
		}
		entries := e.api.LicenseUsage()
		var reported []string
		ids := 0
		for _, u := range entries {
			if !u.Accepted {
				t.Errorf("entry of %s not accepted", u.License)
			}
			reported = append(reported, u.License)
			ids += len(u.Items)
			for _, it := range u.Items {
				if it.ActiveNum != nil || len(it.ID) != 64 {
					t.Errorf("%s: item %+v, want a device hash", u.License, it)
				}
			}
		}
		slices.Sort(reported)
		if len(slices.Compact(reported)) != codes || ids != codes+codes/2 {
			t.Errorf("%d codes (%d entries) and %d devices reported, want %d codes once and %d devices", len(slices.Compact(reported)), len(entries), ids, codes, codes+codes/2)
		}
		if u := entries[0]; u.License != "PL-U000" || len(u.Items) != 1 || u.Items[0].ID != e.svc.DeviceID(fp+"|dev-0") {
			t.Errorf("first entry %+v, want PL-U000 with the hash of its device", u)
		}
		left, err := e.st.UnreportedLicenseDevices(ctx, 1000)
		if err != nil || len(left) != 0 {
			t.Errorf("unreported after the push: %d (%v)", len(left), err)
		}
		js, err := e.st.Jobs(ctx, store.JobFilter{Kind: license.KindUsage})
		if err != nil || len(js) != 1 {
			t.Errorf("%d usage jobs (%v), want one for the interval", len(js), err)
		}

		// A device seen again in a later interval is reported again, alone.
		e.clk.Advance(time.Hour)
		if _, err := e.svc.Check(ctx, "PL-U007", fp+"|dev-1"); err != nil {
			t.Fatal(err)
		}
		e.run(t, e.svc)
		e.waitPushes(t, 3)
		entries = e.api.LicenseUsage()
		if last := entries[len(entries)-1]; len(entries) != codes+1 || last.License != "PL-U007" || len(last.Items) != 1 || last.Items[0].ID != e.svc.DeviceID(fp+"|dev-1") {
			t.Errorf("%d entries, last %+v; want one more: PL-U007 with the device checked", len(entries), last)
		}
	})
}

// TestUsageRefused: KooGallery refusing a request as a whole (its
// content) does not block the codes after it: its devices are marked
// reported, with a warning, and the next request goes out in the same
// job; the gateway refusing koobridge (AK/SK) ends the job and loses
// nothing, for the next interval to push.
func TestUsageRefused(t *testing.T) {
	tests := []struct {
		name       string
		fault      mockapi.Fault
		sent, ok   int // requests, accepted
		unreported int // devices left unreported
		state      store.JobState
		warned     bool
	}{
		{"refused as a whole", mockapi.Fault{Status: http.StatusBadRequest, Code: "92020002", Count: 1}, 2, 1, 0, store.JobDone, true},
		{"a batch code KooGallery refuses", mockapi.Fault{Status: http.StatusBadRequest, Code: "92020020", Count: 1}, 2, 1, 0, store.JobDone, true},
		{"the gateway refuses the AK/SK", mockapi.Fault{Status: http.StatusUnauthorized}, 1, 0, 101, store.JobDead, false},
		{"the IAM user may not push", mockapi.Fault{Status: http.StatusForbidden, Code: "APIGW.0302"}, 1, 0, 101, store.JobDead, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, dialects[0].Open(t), options{})
			ctx := context.Background()
			for i := range 101 { // two requests: 100 codes, then 1
				code := fmt.Sprintf("PL-UR%03d", i)
				e.issue(t, code, 1)
				if _, err := e.svc.Activate(ctx, code, fp); err != nil {
					t.Fatal(err)
				}
			}
			e.api.SetLicenseFault(tc.fault)
			e.run(t, e.svc)
			deadline := time.Now().Add(waitFor)
			var js []store.Job
			for {
				var err error
				if js, err = e.st.Jobs(ctx, store.JobFilter{Kind: license.KindUsage}); err != nil {
					t.Fatal(err)
				}
				if len(js) == 1 && (js[0].State == store.JobDone || js[0].State == store.JobDead) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("usage jobs %+v not finished after %v", js, waitFor)
				}
				time.Sleep(10 * time.Millisecond)
			}
			left, err := e.st.UnreportedLicenseDevices(ctx, 1000)
			if err != nil {
				t.Fatal(err)
			}
			sent, ok := e.usagePushes()
			if js[0].State != tc.state || sent != tc.sent || ok != tc.ok || len(left) != tc.unreported {
				t.Errorf("job %s, %d requests (%d accepted), %d devices unreported; want %s, %d (%d), %d",
					js[0].State, sent, ok, len(left), tc.state, tc.sent, tc.ok, tc.unreported)
			}
			if warned := strings.Contains(e.logs.String(), "refused a request as a whole"); warned != tc.warned {
				t.Errorf("warned %v, want %v", warned, tc.warned)
			}
		})
	}
}
