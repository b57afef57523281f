package license_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/license"
	"github.com/koobridge/koobridge/protocol"
)

// TestQueryAnswerPredatingRenewal: a renewal into the future that commits
// while a due query is in flight: the query's older EXPIRED answer does
// not overwrite it, and the code is answered active with the renewal's
// expiry.
func TestQueryAnswerPredatingRenewal(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		var future time.Time
		svc := e.service(t, func(cfg *license.Config) {
			cfg.OpenAPI = reshaped{OpenAPI: e.client(t), queried: func(info *protocol.LicenseInfo) {
				if info.Status != protocol.LicenseStatusExpired || !future.IsZero() {
					return
				}
				// KooGallery renews (after answering the query) and
				// tells the production interface.
				future = e.clk.Now().AddDate(1, 0, 0)
				e.api.UpdateLicense("PL-RQ", func(c *mockapi.LicenseCode) { c.Status, c.Expire = protocol.LicenseStatusAlive, future })
				a, err := e.svc.Refresh(ctx, protocol.RefreshLicenseCodeRequest{ActivityName: protocol.ActivityRefreshLicenseCode, Scene: protocol.SceneRenewal,
					OrderID: "R1", OrderLineID: "R1-1", License: "PL-RQ", ExpireTime: future.UTC().Format("20060102150405")})
				if err != nil || a.Code != protocol.CodeSuccess {
					t.Errorf("renewal: %+v %v", a, err)
				}
			}}
		})
		e.issue(t, "PL-RQ", 1)
		if _, err := svc.Activate(ctx, "PL-RQ", fp); err != nil {
			t.Fatal(err)
		}
		e.settle(t, license.KindEvent)
		e.api.UpdateLicense("PL-RQ", func(c *mockapi.LicenseCode) { c.Status = protocol.LicenseStatusExpired })
		e.clk.Advance(25 * time.Hour)
		// The check whose query meets the renewal: KooGallery's EXPIRED
		// predates it.
		if _, err := svc.Check(ctx, "PL-RQ", fp); err != nil && !errors.Is(err, license.ErrUnavailable) {
			t.Fatal(err)
		}
		e.clk.Advance(time.Hour)
		v, err := svc.Check(ctx, "PL-RQ", fp)
		if err != nil || v.Status != "active" {
			t.Errorf("check an hour after the renewal: %+v %v, want active (renewed a year)", v, err)
		}
		if !v.Expires.Equal(future) {
			t.Errorf("expires %v, want the renewal's %v", v.Expires, future)
		}
	})
}

// TestLateOlderRenewalAfterFreeze: a late retry of an older renewal (its
// expiry not applied: the newer one stands) arriving after a FREEZE
// neither lifts the freeze nor counts as KooGallery confirming the code.
func TestLateOlderRenewalAfterFreeze(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		base := e.clk.Now()
		e.issue(t, "PL-LF", 1)
		if _, err := e.svc.Activate(ctx, "PL-LF", fp); err != nil {
			t.Fatal(err)
		}
		renew := func(order string, months int) {
			a, err := e.svc.Refresh(ctx, protocol.RefreshLicenseCodeRequest{ActivityName: protocol.ActivityRefreshLicenseCode,
				Scene: protocol.SceneRenewal, OrderID: order, OrderLineID: order + "-1", License: "PL-LF",
				ExpireTime: base.AddDate(0, months, 0).UTC().Format("20060102150405")})
			if err != nil || a.Code != protocol.CodeSuccess {
				t.Fatalf("renewal %s: %+v %v", order, a, err)
			}
		}
		renew("R2", 24)
		e.clk.Advance(10 * time.Minute)
		if a, err := e.svc.SetStatus(ctx, protocol.UpdateLicenseCodeStatusRequest{ActivityName: protocol.ActivityUpdateLicenseCodeStatus,
			License: "PL-LF", Status: protocol.StatusFreeze}); err != nil || a.Code != protocol.CodeSuccess {
			t.Fatal(a, err)
		}
		frozenAt := e.clk.Now()
		e.clk.Advance(time.Hour)
		renew("R1", 12) // the late retry of the first renewal
		c := e.code(t, "PL-LF")
		if c.Status != "frozen" {
			t.Errorf("a late retry of an older renewal, not applied, lifted the freeze: %s", c.Status)
		}
		if c.ConfirmedAt.After(frozenAt) {
			t.Errorf("a late retry of an older renewal, not applied, counts as a confirmation at %v", c.ConfirmedAt)
		}
	})
}

// TestAliveAnswerPredatingRenewal: an ALIVE answer whose expire_time
// predates a renewal made during the query does not move the expiry back.
func TestAliveAnswerPredatingRenewal(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		var future time.Time
		svc := e.service(t, func(cfg *license.Config) {
			cfg.OpenAPI = reshaped{OpenAPI: e.client(t), queried: func(info *protocol.LicenseInfo) {
				if !future.IsZero() {
					return
				}
				future = e.clk.Now().AddDate(1, 0, 0)
				e.api.UpdateLicense("PL-RA", func(c *mockapi.LicenseCode) { c.Expire = future })
				a, err := e.svc.Refresh(ctx, protocol.RefreshLicenseCodeRequest{ActivityName: protocol.ActivityRefreshLicenseCode, Scene: protocol.SceneRenewal,
					OrderID: "R1", OrderLineID: "R1-1", License: "PL-RA", ExpireTime: future.UTC().Format("20060102150405")})
				if err != nil || a.Code != protocol.CodeSuccess {
					t.Errorf("renewal: %+v %v", a, err)
				}
			}}
		})
		e.issue(t, "PL-RA", 1)
		if _, err := svc.Activate(ctx, "PL-RA", fp); err != nil {
			t.Fatal(err)
		}
		e.settle(t, license.KindEvent)
		e.clk.Advance(25 * time.Hour)
		soon := e.clk.Now().Add(time.Hour)
		e.api.UpdateLicense("PL-RA", func(c *mockapi.LicenseCode) { c.Expire = soon })
		if _, err := svc.Check(ctx, "PL-RA", fp); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(2 * time.Hour)
		v, err := svc.Check(ctx, "PL-RA", fp)
		if err != nil || !v.Expires.Equal(future) {
			t.Errorf("check 2 h later: %+v %v; expires want the renewal's %v (the query's %v is past)", v, err, future, soon)
		}
	})
}
