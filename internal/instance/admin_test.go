package instance_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
)

// TestCanReprovision follows one instance through the states
// CanReprovision judges: provisioning with a dead provision job (yes),
// active after Reprovision (no); an unknown id is an error.
func TestCanReprovision(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, options{budget: 200 * time.Millisecond})
	addOrder(e.api, "CS-CAN", protocol.ChargingPeriod, "sku-basic")
	e.api.SetFault(mockapi.Fault{Status: 503})
	svc, v2 := e.serviceWith(t, 2)
	out := doOn(t, v2, newReq("CS-CAN"))
	if out.Code != protocol.CodeProcessing {
		t.Fatalf("%+v", out)
	}
	can := func(want bool, when string) {
		t.Helper()
		got, err := svc.CanReprovision(ctx, out.InstanceID)
		if err != nil || got != want {
			t.Errorf("%s: CanReprovision = %v, %v; want %v", when, got, err, want)
		}
	}
	eventually(t, "provision job dead", func() bool {
		js, err := e.st.Jobs(ctx, store.JobFilter{Kind: instance.KindProvision, State: store.JobDead})
		return err == nil && len(js) == 1
	})
	can(true, "dead provision job")
	e.api.SetFault(mockapi.Fault{})
	if err := svc.Reprovision(ctx, out.InstanceID); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(out.InstanceID, store.StatusActive)
	can(false, "active")
	if ok, err := svc.CanReprovision(ctx, "no-such-instance"); ok || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown instance: %v, %v; want false and store.ErrNotFound", ok, err)
	}
}

// TestCanReprovisionFailed: a failed instance can be re-run.
func TestCanReprovisionFailed(t *testing.T) {
	v := newVendor(t)
	v.set("reject", 0)
	e := newEnv(t, options{prov: v.provisioner(t)})
	addOrder(e.api, "CS-CANF", protocol.ChargingPeriod, "sku-basic")
	out := e.do(newReq("CS-CANF"))
	if out.Code != protocol.CodeInternal {
		t.Fatalf("want failed first, got %s", out.Code)
	}
	if ok, err := e.svc.CanReprovision(context.Background(), out.InstanceID); !ok || err != nil {
		t.Errorf("failed instance: CanReprovision = %v, %v; want true", ok, err)
	}
}
