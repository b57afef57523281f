package instance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

func statusReq(id, status string) protocol.UpdateInstanceStatusRequest {
	return protocol.UpdateInstanceStatusRequest{ActivityName: protocol.ActivityUpdateInstanceStatus, InstanceID: id, Status: status}
}

func releaseReq(id string) protocol.ReleaseInstanceRequest {
	return protocol.ReleaseInstanceRequest{ActivityName: protocol.ActivityReleaseInstance, InstanceID: id}
}

func upgradeReq(id, order string) protocol.UpgradeInstanceRequest {
	return protocol.UpgradeInstanceRequest{ActivityName: protocol.ActivityUpgradeInstance, InstanceID: id, OrderID: order, OrderLineID: order + "-000001"}
}

func refreshReq(id, order, scene string, expiry time.Time) protocol.RefreshInstanceRequest {
	return protocol.RefreshInstanceRequest{
		ActivityName: protocol.ActivityRefreshInstance, InstanceID: id, OrderID: order, OrderLineID: order + "-000001",
		Scene: scene, ExpireTime: protocol.FormatTime17(expiry),
	}
}

func checkReq(id string) protocol.ChangeInstanceCheckRequest {
	return protocol.ChangeInstanceCheckRequest{
		ActivityName: protocol.ActivityChangeInstanceCheck, InstanceID: id,
		ProductInfo: &protocol.ProductInfo{ProductID: "OFFI-PROD-2", SKUCode: "sku-pro", LinearValue: "20"},
	}
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := protocol.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRefreshInstance(t *testing.T) {
	e := newEnv(t, options{})
	id := e.newActive("CS-REF")
	next := time.Date(2028, 12, 31, 23, 59, 59, 0, time.UTC)

	first := e.do(refreshReq(id, "CS-REF-R1", protocol.SceneRenewal, next))
	if first.Code != protocol.CodeSuccess || first.Repeat || first.IdemKey != "refreshInstance:CS-REF-R1:CS-REF-R1-000001:RENEWAL" {
		t.Fatalf("first refresh: %+v", first)
	}
	if got := e.instance(id).ExpireTime; !got.Equal(next) {
		t.Errorf("expiry %v, want %v", got, next)
	}
	// A repeat is answered from the stored reply, byte for byte, and
	// changes nothing even if the instance changed since.
	earlier := next.AddDate(-1, 0, 0)
	if out := e.do(refreshReq(id, "CS-REF-R2", protocol.SceneUnsubscribeRenewalPeriod, earlier)); out.Code != protocol.CodeSuccess {
		t.Fatalf("unsubscribe period: %s", out.Code)
	}
	again := e.do(refreshReq(id, "CS-REF-R1", protocol.SceneRenewal, next))
	if !again.Repeat || again.Code != protocol.CodeSuccess {
		t.Fatalf("repeat: %+v", again)
	}
	if a, b := marshal(t, first.Response), marshal(t, again.Response); !bytes.Equal(a, b) {
		t.Errorf("repeat reply %s differs from first %s", b, a)
	}
	op, err := e.st.Operation(context.Background(), first.IdemKey)
	if err != nil || !bytes.Equal(op.Response, marshal(t, again.Response)) || op.State != store.OperationDone {
		t.Errorf("stored operation %+v, %v", op, err)
	}
	if got := e.instance(id).ExpireTime; !got.Equal(earlier) {
		t.Errorf("a repeat must not set the expiry again: %v", got)
	}
	eventually(t, "two instance.renewed events", func() bool { return e.prov.count(provision.EventRenewed) == 2 })

	// Invalid: unknown and released instances, and they are not stored.
	if out := e.do(refreshReq("nope", "CS-REF-X", protocol.SceneRenewal, next)); out.Code != protocol.CodeInstanceNotFound {
		t.Errorf("unknown: %s", out.Code)
	}
	if _, err := e.st.Operation(context.Background(), "refreshInstance:CS-REF-X:CS-REF-X-000001:RENEWAL"); err == nil {
		t.Error("a refused refresh was stored")
	}
	if out := e.do(releaseReq(id)); out.Code != protocol.CodeSuccess {
		t.Fatal(out.Code)
	}
	if out := e.do(refreshReq(id, "CS-REF-R3", protocol.SceneRenewal, next)); out.Code != protocol.CodeInstanceNotFound {
		t.Errorf("released: %s", out.Code)
	}
}

func TestRefreshUnfreezes(t *testing.T) {
	e := newEnv(t, options{})
	future := time.Now().AddDate(1, 0, 0).UTC().Truncate(time.Second)
	past := time.Now().AddDate(0, -1, 0).UTC().Truncate(time.Second)
	cases := []struct {
		scene  string
		expiry time.Time
		want   store.InstanceStatus
	}{
		{protocol.SceneRenewal, future, store.StatusActive},
		{protocol.SceneTrialToFormal, future, store.StatusActive},
		{protocol.SceneRenewalChange, future, store.StatusActive},
		{protocol.SceneRenewal, past, store.StatusFrozen},
		{protocol.SceneUnsubscribeRenewalPeriod, future, store.StatusFrozen},
	}
	for i, c := range cases {
		t.Run(c.scene, func(t *testing.T) {
			order := "CS-UNF-" + string(rune('A'+i))
			id := e.newActive(order)
			if out := e.do(statusReq(id, protocol.StatusFreeze)); out.Code != protocol.CodeSuccess {
				t.Fatal(out.Code)
			}
			if out := e.do(refreshReq(id, order+"-R", c.scene, c.expiry)); out.Code != protocol.CodeSuccess {
				t.Fatal(out.Code)
			}
			if got := e.instance(id); got.Status != c.want {
				t.Errorf("status %s, want %s", got.Status, c.want)
			}
		})
	}
}

func TestUpdateInstanceStatus(t *testing.T) {
	e := newEnv(t, options{})
	id := e.newActive("CS-ST")
	steps := []struct {
		status     string
		want       store.InstanceStatus
		wantRepeat bool
	}{
		{protocol.StatusFreeze, store.StatusFrozen, false},
		{protocol.StatusFreeze, store.StatusFrozen, true}, // already frozen
		{protocol.StatusUnfreeze, store.StatusActive, false},
		{protocol.StatusUnfreeze, store.StatusActive, true},
		{protocol.StatusFreeze, store.StatusFrozen, false}, // FREEZE after UNFREEZE acts again
	}
	for i, s := range steps {
		out := e.do(statusReq(id, s.status))
		if out.Code != protocol.CodeSuccess || out.Repeat != s.wantRepeat {
			t.Fatalf("step %d %s: code %s repeat %v", i, s.status, out.Code, out.Repeat)
		}
		inst := e.instance(id)
		if inst.Status != s.want {
			t.Fatalf("step %d: status %s, want %s", i, inst.Status, s.want)
		}
		if s.want == store.StatusFrozen && inst.FrozenBy != "status" {
			t.Errorf("step %d: frozenBy %q", i, inst.FrozenBy)
		}
	}
	// Three acting calls enqueue three events; the two repeats enqueue none.
	var statusJobs int
	for _, jobs := range e.notifyJobs("") {
		for _, j := range jobs {
			if strings.HasPrefix(j.UniqueKey, "notify:status:") {
				statusJobs++
			}
		}
	}
	if statusJobs != 3 {
		t.Errorf("%d status events enqueued, want 3 (none for repeats)", statusJobs)
	}
	// Delivery may drop events the instance has moved past (handleNotify),
	// so the vendor need not see every step, but it must end frozen.
	eventually(t, "every notify job done", func() bool {
		return len(e.notifyJobs(store.JobAvailable)) == 0 && len(e.notifyJobs(store.JobRunning)) == 0
	})
	e.shutdown()
	if last := e.prov.lastStatusEvent(); last != provision.EventFrozen {
		t.Errorf("the vendor's last status event is %q, want instance.frozen", last)
	}
}

func TestInvalidTransitions(t *testing.T) {
	v := newVendor(t)
	e := newEnv(t, options{budget: 200 * time.Millisecond, prov: v.provisioner(t)})
	released := e.newActive("CS-INV-REL")
	if out := e.do(releaseReq(released)); out.Code != protocol.CodeSuccess {
		t.Fatal(out.Code)
	}
	release := make(chan struct{})
	v.mu.Lock()
	v.release = release
	v.mu.Unlock()
	t.Cleanup(func() { close(release) })
	addOrder(e.api, "CS-INV-PROV", protocol.ChargingPeriod, "sku-basic")
	provisioning := e.do(newReq("CS-INV-PROV")).InstanceID
	if st := e.instance(provisioning).Status; st != store.StatusProvisioning {
		t.Fatalf("setup: %s", st)
	}

	cases := []struct {
		name string
		req  protocol.V2Request
		want protocol.ResultCode
	}{
		{"freeze unknown", statusReq("nope", protocol.StatusFreeze), protocol.CodeInstanceNotFound},
		{"freeze released", statusReq(released, protocol.StatusFreeze), protocol.CodeInstanceNotFound},
		{"unfreeze released", statusReq(released, protocol.StatusUnfreeze), protocol.CodeInstanceNotFound},
		{"freeze provisioning", statusReq(provisioning, protocol.StatusFreeze), protocol.CodeInternal},
		{"unfreeze provisioning", statusReq(provisioning, protocol.StatusUnfreeze), protocol.CodeInternal},
		{"release unknown", releaseReq("nope"), protocol.CodeInstanceNotFound},
		{"upgrade unknown", upgradeReq("nope", "CS-INV-U1"), protocol.CodeInstanceNotFound},
		{"upgrade released", upgradeReq(released, "CS-INV-U2"), protocol.CodeInstanceNotFound},
		{"upgrade provisioning", upgradeReq(provisioning, "CS-INV-U3"), protocol.CodeInternal},
		{"check unknown", checkReq("nope"), protocol.CodeInstanceNotFound},
		{"check released", checkReq(released), protocol.CodeInstanceNotFound},
		{"refresh unknown", refreshReq("nope", "CS-INV-R", protocol.SceneRenewal, time.Now()), protocol.CodeInstanceNotFound},
		{"new again released", newReq("CS-INV-REL"), protocol.CodeSuccess},
		{"new again provisioning", newReq("CS-INV-PROV"), protocol.CodeProcessing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if out := e.do(c.req); out.Code != c.want {
				t.Errorf("code %s (%q), want %s", out.Code, out.Msg, c.want)
			}
		})
	}
	// Refused calls leave no operation behind, so they can succeed later.
	for _, key := range []string{"upgradeInstance:CS-INV-U2:CS-INV-U2-000001", "upgradeInstance:CS-INV-U3:CS-INV-U3-000001"} {
		if _, err := e.st.Operation(context.Background(), key); err == nil {
			t.Errorf("refused call stored operation %s", key)
		}
	}
}

func TestReleaseInstance(t *testing.T) {
	e := newEnv(t, options{})
	id := e.newActive("CS-REL")
	first := e.do(releaseReq(id))
	if first.Code != protocol.CodeSuccess || first.Repeat {
		t.Fatalf("release: %+v", first)
	}
	inst := e.instance(id)
	if inst.Status != store.StatusReleased || inst.ReleasedAt.IsZero() {
		t.Fatalf("after release: %s %v", inst.Status, inst.ReleasedAt)
	}
	second := e.do(releaseReq(id))
	if second.Code != protocol.CodeSuccess || !second.Repeat {
		t.Fatalf("second release: %+v", second)
	}
	// Data is kept: the instance can still be queried (with its app info).
	if q := e.do(queryReq(id)); q.Code != protocol.CodeSuccess {
		t.Errorf("query released: %s", q.Code)
	}
	eventually(t, "instance.released", func() bool { return e.prov.count(provision.EventReleased) >= 1 })
	e.shutdown()
	if n := e.prov.count(provision.EventReleased); n != 1 {
		t.Errorf("instance.released delivered %d times, want 1", n)
	}
}

// TestReleaseEndsFreeze: a released instance is no longer frozen, so it
// keeps no reason for a freeze, whatever froze it before.
func TestReleaseEndsFreeze(t *testing.T) {
	e := newEnv(t, options{})
	render := func(instance.Answer) ([]byte, error) { return []byte("{}"), nil }
	cases := []struct {
		name, order string
		freeze      func(id string) (instance.Answer, error)
		frozenBy    string
	}{
		{"active", "CS-RELF-A", nil, ""},
		{"frozen by status", "CS-RELF-S", func(id string) (instance.Answer, error) {
			return e.svc.SetStatus(context.Background(), "updateInstanceStatus:"+id, id, true, render)
		}, "status"},
		{"frozen by expiry", "CS-RELF-E", func(id string) (instance.Answer, error) {
			return e.svc.Expire(context.Background(), "expireInstance:"+id, id, render)
		}, "expiry"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := e.newActive(c.order)
			if c.freeze != nil {
				if a, err := c.freeze(id); err != nil || a.Code != protocol.CodeSuccess {
					t.Fatalf("freeze: %+v, %v", a, err)
				}
			}
			if got := e.instance(id); got.FrozenBy != c.frozenBy {
				t.Fatalf("before the release: frozenBy %q, want %q", got.FrozenBy, c.frozenBy)
			}
			if out := e.do(releaseReq(id)); out.Code != protocol.CodeSuccess {
				t.Fatalf("release: %s %s", out.Code, out.Msg)
			}
			if got := e.instance(id); got.Status != store.StatusReleased || got.FrozenBy != "" {
				t.Errorf("after the release: status %s, frozenBy %q; want released, no freeze reason", got.Status, got.FrozenBy)
			}
		})
	}
}

func TestReleaseWhileProvisioningKeepsReleased(t *testing.T) {
	v := newVendor(t)
	v.set("ok", 800*time.Millisecond)
	e := newEnv(t, options{budget: 100 * time.Millisecond, prov: v.provisioner(t)})
	addOrder(e.api, "CS-RWP", protocol.ChargingPeriod, "sku-basic")
	id := e.do(newReq("CS-RWP")).InstanceID
	if out := e.do(releaseReq(id)); out.Code != protocol.CodeSuccess {
		t.Fatal(out.Code)
	}
	eventually(t, "created and released delivered", func() bool {
		return v.received(provision.EventCreated) == 1 && v.received(provision.EventReleased) == 1
	})
	e.shutdown()
	if st := e.instance(id).Status; st != store.StatusReleased {
		t.Errorf("status %s, want released (release is terminal)", st)
	}
}

func TestUpgradeInstance(t *testing.T) {
	e := newEnv(t, options{})
	id := e.newActive("CS-UPG")
	e.api.AddOrder(protocol.OrderInfo{
		OrderID: "CS-UPG-NEW", OrderType: protocol.OrderTypeChange,
		OrderLine: []protocol.OrderLine{{
			OrderLineID: "CS-UPG-NEW-000001", ChargingMode: protocol.ChargingPeriod, ExpireTime: "20291231235959",
			ProductInfo: protocol.ProductInfoList{{ProductID: "OFFI-PROD-1", SKUCode: "sku-pro", LinearValue: "50"}},
		}},
	})
	out := e.do(upgradeReq(id, "CS-UPG-NEW"))
	if out.Code != protocol.CodeSuccess || out.IdemKey != "upgradeInstance:CS-UPG-NEW:CS-UPG-NEW-000001" {
		t.Fatalf("upgrade: %+v", out)
	}
	eventually(t, "sku upgraded", func() bool { return e.instance(id).SKUCode == "sku-pro" })
	inst := e.instance(id)
	if inst.LinearValue != "50" || protocol.FormatTime14(inst.ExpireTime) != "20291231235959" || inst.Status != store.StatusActive {
		t.Errorf("after upgrade: %+v", inst)
	}
	again := e.do(upgradeReq(id, "CS-UPG-NEW"))
	if !again.Repeat || !bytes.Equal(marshal(t, again.Response), marshal(t, out.Response)) {
		t.Errorf("repeat: %+v", again)
	}
	e.shutdown()
	if n := e.prov.count(provision.EventUpgraded); n != 1 {
		t.Errorf("instance.upgraded delivered %d times, want 1", n)
	}
	if n := e.api.QueryOrderCalls(); n != 2 {
		t.Errorf("Query Order calls %d, want 2 (purchase, upgrade)", n)
	}
}

func TestUpgradeMockOrderDuringOutage(t *testing.T) {
	e := newEnv(t, options{budget: 200 * time.Millisecond})
	first := e.do(newReq(mockapi.MockMonthRenew))
	if first.Code != protocol.CodeSuccess {
		t.Fatal(first.Code, first.Msg)
	}
	before := e.instance(first.InstanceID).SKUCode
	e.api.SetFault(mockapi.Fault{Status: 503})
	// Accepted durably even though the order cannot be read yet.
	if out := e.do(upgradeReq(first.InstanceID, mockapi.MockMonthChange)); out.Code != protocol.CodeSuccess {
		t.Fatalf("upgrade during outage: %s", out.Code)
	}
	e.api.SetFault(mockapi.Fault{})
	eventually(t, "upgrade applied", func() bool {
		inst := e.instance(first.InstanceID)
		return inst.SKUCode != before && inst.LastError == ""
	})
}

func TestChangeInstanceCheck(t *testing.T) {
	v := newVendor(t)
	e := newEnv(t, options{budget: 500 * time.Millisecond, prov: v.provisioner(t)})
	id := e.newActive("CS-CHK")
	cases := []struct {
		mode    string
		delay   time.Duration
		want    protocol.ResultCode
		wantMsg string
	}{
		{"ok", 0, protocol.CodeSuccess, "success"},
		{"deny", 0, protocol.CodeInternal, "downgrade not supported"},
		{"fail", 0, protocol.CodeInternal, "could not check the change"},
		{"ok", 3 * time.Second, protocol.CodeInternal, "could not check the change"}, // past the budget
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			v.set(c.mode, c.delay)
			out := e.do(checkReq(id))
			if out.Code != c.want || !strings.Contains(out.Msg, c.wantMsg) {
				t.Errorf("code %s %q, want %s %q", out.Code, out.Msg, c.want, c.wantMsg)
			}
		})
	}
	// The demo provisioner allows by default.
	d := newEnv(t, options{})
	did := d.newActive("CS-CHK-DEMO")
	if out := d.do(checkReq(did)); out.Code != protocol.CodeSuccess {
		t.Errorf("demo: %s %q", out.Code, out.Msg)
	}
}

// TestBackgroundProvisioningSurvivesRestart runs a "process" whose
// provisioning outlives it: the job's worker dies holding the lease, and a
// new Service and Runner on the same SQLite file finish the work once the
// lease has expired.
func TestBackgroundProvisioningSurvivesRestart(t *testing.T) {
	v := newVendor(t)
	const lease = 3 * time.Second
	api := openapitest.NewServer(t, testAK, testSK)
	first := newEnv(t, options{budget: 200 * time.Millisecond, lease: lease, prov: v.provisioner(t), api: api})
	addOrder(api, "CS-RESTART", protocol.ChargingPeriod, "sku-basic")

	// The vendor hangs: the first attempt ends at the job deadline.
	release := make(chan struct{})
	v.mu.Lock()
	v.release = release
	v.mu.Unlock()
	out := first.do(newReq("CS-RESTART"))
	if out.Code != protocol.CodeProcessing {
		t.Fatalf("first process: %s %q", out.Code, out.Msg)
	}
	first.shutdown() // the process stops; its attempt returned when the job deadline passed
	v.mu.Lock()
	v.release = nil
	v.mu.Unlock()
	close(release)

	// Simulate a crash on the next attempt: a worker claims the job and
	// dies without recording anything, holding the lease.
	ctx := context.Background()
	js, err := first.st.Jobs(ctx, store.JobFilter{Kind: instance.KindProvision})
	if err != nil || len(js) != 1 {
		t.Fatalf("jobs: %v %d", err, len(js))
	}
	if js[0].State != store.JobAvailable {
		t.Fatalf("job state %s after the first process, want available (retry)", js[0].State)
	}
	eventually(t, "crashed worker claim", func() bool {
		_, err := first.st.ClaimJobByID(ctx, js[0].ID, "crashed-process/1", time.Now(), lease)
		return err == nil
	})
	if err := first.st.Close(); err != nil {
		t.Fatal(err)
	}

	second := newEnv(t, options{path: first.path, budget: 200 * time.Millisecond, lease: lease, prov: v.provisioner(t), api: api})
	if q := second.do(queryReq(out.InstanceID)); q.Code != protocol.CodeProcessing {
		t.Errorf("query after restart: %s", q.Code)
	}
	if again := second.do(newReq("CS-RESTART")); again.InstanceID != out.InstanceID {
		t.Errorf("repeat after restart answered %s, want %s", again.InstanceID, out.InstanceID)
	}
	second.waitStatus(out.InstanceID, store.StatusActive)
	if q := second.do(queryReq(out.InstanceID)); q.Code != protocol.CodeSuccess {
		t.Errorf("query after completion: %s", q.Code)
	}
	j, err := second.st.Job(ctx, js[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		InstanceID string `json:"instanceId"`
	}
	if err := json.Unmarshal(j.Payload, &p); err != nil || p.InstanceID != out.InstanceID {
		t.Errorf("payload %s", j.Payload)
	}
	eventually(t, "job done", func() bool {
		j, err := second.st.Job(ctx, js[0].ID)
		return err == nil && j.State == store.JobDone
	})
}

// TestRepeatKeyWithOtherFieldsIsNoRepeat: a stored answer is replayed only
// for the request it answered. A refreshInstance that reuses the orderId,
// orderLineId and scene of an earlier renewal but names an instance never
// issued is 000003, not the earlier renewal's 000000; one that names the
// same instance with another expiry is 000002; an upgrade order line
// reused for another instance likewise. Nothing of them is applied.
func TestRepeatKeyWithOtherFieldsIsNoRepeat(t *testing.T) {
	e := newEnv(t, options{})
	a := e.newActive("CS-FP-A")
	b := e.newActive("CS-FP-B")
	next := time.Date(2029, 6, 30, 0, 0, 0, 0, time.UTC)
	first := e.do(refreshReq(a, "CS-FP-R1", protocol.SceneRenewal, next))
	if first.Code != protocol.CodeSuccess {
		t.Fatalf("renewal: %s %q", first.Code, first.Msg)
	}
	expiryB := e.instance(b).ExpireTime

	tests := []struct {
		name string
		req  protocol.RefreshInstanceRequest
		code protocol.ResultCode
		msg  string
	}{
		{"never issued instance", refreshReq("never-issued-instance", "CS-FP-R1", protocol.SceneRenewal, next), protocol.CodeInstanceNotFound, "instance does not exist"},
		{"another instance", refreshReq(b, "CS-FP-R1", protocol.SceneRenewal, next), protocol.CodeInvalidParam, "already applied with other values"},
		{"another expiry", refreshReq(a, "CS-FP-R1", protocol.SceneRenewal, next.AddDate(1, 0, 0)), protocol.CodeInvalidParam, "already applied with other values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := e.do(tt.req)
			if out.Code != tt.code || !strings.Contains(out.Msg, tt.msg) || out.Repeat {
				t.Errorf("answered %s %q (repeat %v), want %s %q", out.Code, out.Msg, out.Repeat, tt.code, tt.msg)
			}
		})
	}
	// The same request again is still a repeat, byte for byte.
	again := e.do(refreshReq(a, "CS-FP-R1", protocol.SceneRenewal, next))
	if !again.Repeat || !bytes.Equal(marshal(t, again.Response), marshal(t, first.Response)) {
		t.Errorf("true repeat: %+v", again)
	}
	// The same instant written with 14 digits instead of 17 is the same request.
	same := refreshReq(a, "CS-FP-R1", protocol.SceneRenewal, next)
	same.ExpireTime = protocol.FormatTime14(next)
	if out := e.do(same); !out.Repeat || out.Code != protocol.CodeSuccess {
		t.Errorf("repeat with the expiry in 14 digits: %+v", out)
	}
	if got := e.instance(a).ExpireTime; !got.Equal(next) {
		t.Errorf("instance a expiry %v, want %v", got, next)
	}
	if got := e.instance(b).ExpireTime; !got.Equal(expiryB) {
		t.Errorf("instance b expiry moved to %v", got)
	}

	// An upgrade order line reused for another instance.
	e.api.AddOrder(protocol.OrderInfo{
		OrderID: "CS-FP-UP", OrderType: protocol.OrderTypeChange,
		OrderLine: []protocol.OrderLine{{
			OrderLineID: "CS-FP-UP-000001", ChargingMode: protocol.ChargingPeriod,
			ProductInfo: protocol.ProductInfoList{{ProductID: "OFFI-PROD-1", SKUCode: "sku-pro", LinearValue: "50"}},
		}},
	})
	if out := e.do(upgradeReq(a, "CS-FP-UP")); out.Code != protocol.CodeSuccess {
		t.Fatalf("upgrade: %s", out.Code)
	}
	if out := e.do(upgradeReq(b, "CS-FP-UP")); out.Code != protocol.CodeInvalidParam || out.Repeat {
		t.Errorf("upgrade order line reused for another instance: %s %q", out.Code, out.Msg)
	}
	if out := e.do(upgradeReq("never-issued-instance", "CS-FP-UP")); out.Code != protocol.CodeInstanceNotFound {
		t.Errorf("upgrade order line reused for an unknown instance: %s %q", out.Code, out.Msg)
	}
}
