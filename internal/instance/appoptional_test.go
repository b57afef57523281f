package instance_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/internal/saasv2"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// frontless is the vendor of an online-license product: it answers
// instance.created without app info, once gate (when set) is closed, and
// records the events it confirmed.
type frontless struct {
	gate chan struct{}

	mu     sync.Mutex
	events []provision.Event
}

func (v *frontless) Provision(ctx context.Context, ev provision.Event) (provision.Result, error) {
	if ev.Type == provision.EventCreated && v.gate != nil {
		select {
		case <-v.gate:
		case <-ctx.Done():
			return provision.Result{}, ctx.Err()
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.events = append(v.events, ev)
	return provision.Result{}, nil
}

func (v *frontless) list() []provision.Event {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]provision.Event(nil), v.events...)
}

func (v *frontless) count(typ provision.EventType) int {
	n := 0
	for _, ev := range v.list() {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// onlineFamily is a family serving the V2 instance activities as online
// license does: instances whose app info is optional.
func onlineFamily(e *env) *inbound.Family {
	return &inbound.Family{Activities: saasv2.Activities(), Serve: saasv2.Serve(e.svc, saasv2.Options{AppInfoOptional: true})}
}

// TestAppInfoOptional: an instance bought through a family whose products
// have no front end is provisioned although the vendor gives no app info,
// answers queryInstance without app info, and its release reaches the
// vendor; a V2 instance whose vendor gives none fails, as before.
func TestAppInfoOptional(t *testing.T) {
	tests := []struct {
		name       string
		optional   bool
		wantStatus store.InstanceStatus
	}{
		{name: "online license", optional: true, wantStatus: store.StatusActive},
		{name: "SaaS V2", optional: false, wantStatus: store.StatusFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &frontless{}
			e := newEnv(t, options{prov: v})
			f := e.v2
			if tt.optional {
				f = onlineFamily(e)
			}
			order := "CS-NOFRONT-" + strings.ReplaceAll(tt.name, " ", "")
			addOrder(e.api, order, protocol.ChargingPeriod, "sku-1")
			out := doOn(t, f, newReq(order))
			inst := e.waitStatus(out.InstanceID, tt.wantStatus)
			if inst.AppInfo != (store.AppInfo{}) {
				t.Errorf("app info %+v, want none", inst.AppInfo)
			}
			if !tt.optional {
				if !strings.Contains(inst.LastError, "no appInfo.frontEndUrl") {
					t.Errorf("last error %q", inst.LastError)
				}
				return
			}
			created := v.list()[0]
			if created.Type != provision.EventCreated || !created.AppInfoOptional {
				t.Fatalf("first event %+v, want instance.created with appInfoOptional", created)
			}
			if again := doOn(t, f, newReq(order)); again.Code != protocol.CodeSuccess || !again.Repeat || again.InstanceID != out.InstanceID {
				t.Errorf("repeat: %+v", again)
			}
			q := doOn(t, f, queryReq(out.InstanceID))
			resp := q.Response.(protocol.QueryInstanceResponse)
			if q.Code != protocol.CodeSuccess || len(resp.Info) != 1 || resp.Info[0].AppInfo != nil {
				t.Errorf("queryInstance: %s %+v", q.Code, resp)
			}
			// The same order line bought through SaaS V2 is not a repeat.
			if other := e.do(newReq(order)); other.Code != protocol.CodeInvalidParam {
				t.Errorf("V2 newInstance of the online order line: %s %s", other.Code, other.Msg)
			}
			if r := doOn(t, f, releaseReq(out.InstanceID)); r.Code != protocol.CodeSuccess {
				t.Fatalf("release: %s %s", r.Code, r.Msg)
			}
			eventually(t, "instance.released at the vendor", func() bool { return v.count(provision.EventReleased) == 1 })
		})
	}
}

// TestAppInfoOptionalReleasedWhileCreating: an online-license instance
// released while the vendor is still creating it is released at the vendor
// after the creation, never before it.
func TestAppInfoOptionalReleasedWhileCreating(t *testing.T) {
	v := &frontless{gate: make(chan struct{})}
	e := newEnv(t, options{prov: v, budget: 200 * time.Millisecond})
	f := onlineFamily(e)
	addOrder(e.api, "CS-NOFRONT-REL", protocol.ChargingPeriod, "sku-1")
	out := doOn(t, f, newReq("CS-NOFRONT-REL"))
	if out.Code != protocol.CodeProcessing {
		t.Fatalf("newInstance while the vendor holds on: %s", out.Code)
	}
	if r := doOn(t, f, releaseReq(out.InstanceID)); r.Code != protocol.CodeSuccess {
		t.Fatalf("release: %s %s", r.Code, r.Msg)
	}
	// The release job runs while nothing exists at the vendor: skipped.
	eventually(t, "the first release job done", func() bool {
		js, err := e.st.Jobs(context.Background(), store.JobFilter{Kind: "notify"})
		return err == nil && len(js) == 1 && js[0].State == store.JobDone
	})
	if n := v.count(provision.EventReleased); n != 0 {
		t.Fatalf("%d instance.released delivered before the instance existed at the vendor", n)
	}
	close(v.gate)
	eventually(t, "instance.released after the creation", func() bool { return v.count(provision.EventReleased) == 1 })
	evs := v.list()
	if evs[0].Type != provision.EventCreated || evs[1].Type != provision.EventReleased {
		t.Errorf("events %s, %s; want instance.created then instance.released", evs[0].Type, evs[1].Type)
	}
	if inst := e.instance(out.InstanceID); inst.Status != store.StatusReleased {
		t.Errorf("status %s", inst.Status)
	}
}
