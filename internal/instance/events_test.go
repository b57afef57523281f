package instance_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/provision"
)

// hooked is a real provisioner with a hook the test can set, run before
// each delivery (to change koobridge's state while an event is in flight).
type hooked struct {
	p      provision.Provisioner
	mu     sync.Mutex
	before func(provision.Event)
	got    []provision.Event
}

func (h *hooked) Provision(ctx context.Context, ev provision.Event) (provision.Result, error) {
	h.mu.Lock()
	before := h.before
	h.mu.Unlock()
	if before != nil {
		before(ev)
	}
	res, err := h.p.Provision(ctx, ev)
	h.mu.Lock()
	h.got = append(h.got, ev)
	h.mu.Unlock()
	return res, err
}

func (h *hooked) delivered(typ provision.EventType) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, ev := range h.got {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// notifyJobs returns the queued notify jobs of the env by event type.
func (e *env) notifyJobs(state store.JobState) map[provision.EventType][]store.Job {
	e.t.Helper()
	jobs, err := e.st.Jobs(context.Background(), store.JobFilter{Kind: instance.KindNotify, State: state, Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[provision.EventType][]store.Job{}
	for _, j := range jobs {
		var p struct {
			Event string `json:"event"`
		}
		if err := json.Unmarshal(j.Payload, &p); err != nil {
			e.t.Fatal(err)
		}
		out[provision.EventType(p.Event)] = append(out[provision.EventType(p.Event)], j)
	}
	return out
}

// TestStaleStatusEventDropped: a frozen event delivered after the instance
// was unfrozen again (a retry, an admin re-run, two workers) must not
// freeze the vendor's side.
func TestStaleStatusEventDropped(t *testing.T) {
	h := &hooked{p: provision.NewDemo("")}
	e := newEnv(t, options{prov: h, noRunner: true})
	id := e.newActive("CS-STALE")
	e.do(statusReq(id, protocol.StatusFreeze))
	e.do(statusReq(id, protocol.StatusUnfreeze))

	queued := e.notifyJobs(store.JobAvailable)
	if len(queued[provision.EventFrozen]) != 1 || len(queued[provision.EventUnfrozen]) != 1 {
		t.Fatalf("queued notify jobs: %v", queued)
	}
	notify := e.svc.Jobs()[instance.KindNotify]
	// Delivered in the wrong order: the frozen event comes last.
	if err := notify(context.Background(), queued[provision.EventUnfrozen][0]); err != nil {
		t.Fatalf("unfrozen: %v", err)
	}
	if err := notify(context.Background(), queued[provision.EventFrozen][0]); err != nil {
		t.Fatalf("stale frozen: %v", err)
	}
	if n := h.delivered(provision.EventFrozen); n != 0 {
		t.Errorf("a stale instance.frozen reached the vendor (%d times) while the instance is active", n)
	}
	if n := h.delivered(provision.EventUnfrozen); n != 1 {
		t.Errorf("instance.unfrozen delivered %d times, want 1", n)
	}
}

// TestStatusChangeDuringDelivery: when the status changes while a status
// event is being delivered, a corrective event for the new status follows.
func TestStatusChangeDuringDelivery(t *testing.T) {
	h := &hooked{p: provision.NewDemo("")}
	e := newEnv(t, options{prov: h, noRunner: true})
	id := e.newActive("CS-RACE")
	e.do(statusReq(id, protocol.StatusFreeze))
	frozen := e.notifyJobs(store.JobAvailable)[provision.EventFrozen]
	if len(frozen) != 1 {
		t.Fatalf("frozen jobs %v", frozen)
	}
	var once sync.Once
	h.mu.Lock()
	h.before = func(ev provision.Event) {
		if ev.Type == provision.EventFrozen {
			once.Do(func() { e.do(statusReq(id, protocol.StatusUnfreeze)) })
		}
	}
	h.mu.Unlock()
	if err := e.svc.Jobs()[instance.KindNotify](context.Background(), frozen[0]); err != nil {
		t.Fatal(err)
	}
	var fixes int
	for _, j := range e.notifyJobs(store.JobAvailable)[provision.EventUnfrozen] {
		if strings.HasPrefix(j.UniqueKey, "notify:status-fix:") {
			fixes++
		}
	}
	if fixes != 1 {
		t.Errorf("corrective instance.unfrozen jobs: %d, want 1", fixes)
	}
}

// TestReleaseWhileCreating: a release that arrives while the vendor is
// still creating the instance reaches the vendor after instance.created,
// never before it.
func TestReleaseWhileCreating(t *testing.T) {
	v := newVendor(t)
	hold := make(chan struct{})
	v.mu.Lock()
	v.release = hold
	v.mu.Unlock()
	e := newEnv(t, options{prov: v.provisioner(t), budget: 200 * time.Millisecond})
	addOrder(e.api, "CS-RWC", protocol.ChargingPeriod, "sku-basic")
	out := e.do(newReq("CS-RWC"))
	if out.Code != protocol.CodeProcessing {
		t.Fatalf("newInstance with a held vendor: %s", out.Code)
	}
	if r := e.do(releaseReq(out.InstanceID)); r.Code != protocol.CodeSuccess {
		t.Fatalf("release: %s", r.Code)
	}
	eventually(t, "the first release job to finish", func() bool {
		jobs := e.notifyJobs(store.JobDone)[provision.EventReleased]
		return len(jobs) == 1
	})
	if n := v.received(provision.EventReleased); n != 0 {
		t.Fatalf("instance.released reached the vendor before instance.created (%d)", n)
	}
	close(hold)
	eventually(t, "instance.released after the creation", func() bool {
		return v.received(provision.EventCreated) == 1 && v.received(provision.EventReleased) == 1
	})
	if st := e.instance(out.InstanceID).Status; st != store.StatusReleased {
		t.Errorf("status %s, want released", st)
	}
}

// TestReleaseOfFailedInstanceSendsNothing: nothing was created at the
// vendor, so there is nothing to release.
func TestReleaseOfFailedInstanceSendsNothing(t *testing.T) {
	v := newVendor(t)
	v.set("reject", 0)
	e := newEnv(t, options{prov: v.provisioner(t)})
	addOrder(e.api, "CS-RF", protocol.ChargingPeriod, "sku-basic")
	out := e.do(newReq("CS-RF"))
	e.waitStatus(out.InstanceID, store.StatusFailed)
	e.do(releaseReq(out.InstanceID))
	eventually(t, "the release job to finish", func() bool {
		return len(e.notifyJobs(store.JobDone)[provision.EventReleased]) == 1
	})
	if n := v.received(provision.EventReleased); n != 0 {
		t.Errorf("instance.released sent for an instance the vendor never created (%d)", n)
	}
}

// fixedApp provisions every instance with the given credentials.
type fixedApp struct{ user, password string }

func (f fixedApp) Provision(_ context.Context, ev provision.Event) (provision.Result, error) {
	if ev.Type != provision.EventCreated {
		return provision.Result{Allowed: true}, nil
	}
	return provision.Result{AppInfo: &provision.AppInfo{FrontEndURL: "https://x.example/" + ev.Instance.ID, UserName: f.user, Password: f.password}}, nil
}

// TestEncryptedCredentialsFit128: with encrypted credentials, KooGallery's
// 128-character limit covers iv + base64; longer credentials are refused
// when the vendor reports them, not sent out of spec.
func TestEncryptedCredentialsFit128(t *testing.T) {
	cipher, err := sign.NewCredentialCipher("TestAccessKey-0123456789abcdef", sign.EncryptAES256)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		password string
		want     store.InstanceStatus
	}{
		{"79 bytes fit", strings.Repeat("p", 79), store.StatusActive},
		{"80 bytes do not", strings.Repeat("p", 80), store.StatusFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, options{prov: fixedApp{user: "admin", password: tt.password}, cipher: cipher})
			addOrder(e.api, "CS-LEN", protocol.ChargingPeriod, "sku-basic")
			out := e.do(newReq("CS-LEN"))
			inst := e.waitStatus(out.InstanceID, tt.want)
			if tt.want == store.StatusFailed {
				if !strings.Contains(inst.LastError, "128") {
					t.Errorf("LastError %q does not explain the limit", inst.LastError)
				}
				return
			}
			q := e.do(queryReq(out.InstanceID))
			resp, err := json.Marshal(q.Response)
			if err != nil {
				t.Fatal(err)
			}
			var r protocol.QueryInstanceResponse
			if err := json.Unmarshal(resp, &r); err != nil {
				t.Fatal(err)
			}
			if len(r.Info) != 1 || r.Info[0].AppInfo == nil {
				t.Fatalf("query: %s", resp)
			}
			if n := len(r.Info[0].AppInfo.Password); n > 128 {
				t.Errorf("encrypted password is %d characters, over 128", n)
			}
			if err := r.Validate(); err != nil {
				t.Errorf("reply does not validate: %v", err)
			}
		})
	}
}

// TestUpgradeNeverMovesExpiryBack: a renewal that lands while an upgrade
// job waits must not be undone by the upgrade order's older expiry.
func TestUpgradeNeverMovesExpiryBack(t *testing.T) {
	e := newEnv(t, options{prov: provision.NewDemo("")})
	id := e.newActive("CS-EXP")
	later := time.Date(2031, 6, 30, 23, 59, 59, 0, time.UTC)
	if r := e.do(refreshReq(id, "CS-EXP-R", protocol.SceneRenewal, later)); r.Code != protocol.CodeSuccess {
		t.Fatalf("refresh: %s", r.Code)
	}
	addOrder(e.api, "CS-EXP-UP", protocol.ChargingPeriod, "sku-pro") // expires 2027-12-31
	if r := e.do(upgradeReq(id, "CS-EXP-UP")); r.Code != protocol.CodeSuccess {
		t.Fatalf("upgrade: %s", r.Code)
	}
	var inst store.Instance
	eventually(t, "the upgrade to apply", func() bool {
		inst = e.instance(id)
		return inst.SKUCode == "sku-pro"
	})
	if !inst.ExpireTime.Equal(later) {
		t.Errorf("expiry %v after the upgrade, want the renewal's %v", inst.ExpireTime, later)
	}
}
