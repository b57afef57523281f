package tenant_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/tenant"
	"github.com/koobridge/koobridge/provision"
)

// TestRedeliver fails the tenant's department event, for good or by
// spending its attempts, lets the vendor recover, and re-delivers it: it
// is delivered exactly once more, after the later event that went on
// without it, and ends delivered with its attempts and error cleared. A
// second re-delivery is a conflict; an unknown Seq or tenant is not found;
// neither delivers anything.
func TestRedeliver(t *testing.T) {
	for _, d := range dialects {
		for _, tc := range []struct {
			name        string
			maxAttempts int
			err         error
			attempts    int    // the failed event's Attempts before re-delivery
			lastError   string // and its LastError
		}{
			{"refused for good", 50, provision.Permanent(errors.New("vendor rejects departments")), 0, "vendor rejects departments"},
			{"attempts spent", 2, errors.New("vendor down"), 2, "vendor down"},
		} {
			t.Run(d.Name+"/"+tc.name, func(t *testing.T) {
				e := newEnvWith(t, d.Open(t), tc.maxAttempts)
				ctx := context.Background()
				var mu sync.Mutex
				refuse := true
				e.rec.mu.Lock()
				e.rec.fail = func(ev provision.Event) error {
					mu.Lock()
					defer mu.Unlock()
					if refuse && ev.Type == provision.EventOrgCreated {
						return tc.err
					}
					return nil
				}
				e.rec.mu.Unlock()
				res, err := e.svc.SyncTenant(ctx, tenantSync(1, "Acme"))
				must(t, res, err, true)
				res, err = e.svc.SyncOrg(ctx, orgSync(1, "1", "HQ", ""))
				must(t, res, err, true)
				res, err = e.svc.SyncUsers(ctx, authSync(1, user("u1", "1", true)))
				must(t, res, err, true)
				if got, want := types(e.settle(t)), []string{"1:tenant.created", "3:users.authorized"}; !slices.Equal(got, want) {
					t.Fatalf("delivered %v, want %v", got, want)
				}
				failed := storedEvent(t, e, 2)
				if failed.State != store.TenantEventFailed || failed.Attempts != tc.attempts || !strings.Contains(failed.LastError, tc.lastError) {
					t.Fatalf("event 2 before re-delivery: %s, %d attempts, %q; want failed, %d, %q",
						failed.State, failed.Attempts, failed.LastError, tc.attempts, tc.lastError)
				}

				mu.Lock()
				refuse = false
				mu.Unlock()
				ev, err := e.svc.Redeliver(ctx, "t1", 2)
				if err != nil {
					t.Fatalf("Redeliver: %v", err)
				}
				if ev.ID != failed.ID || ev.Seq != 2 || ev.Type != string(provision.EventOrgCreated) || ev.State != store.TenantEventPending ||
					ev.Attempts != 0 || ev.LastError != "" || ev.EventID != failed.EventID {
					t.Errorf("Redeliver returned %+v; want event %d (seq 2, org.created) pending, 0 attempts, no error", ev, failed.ID)
				}
				got := e.settle(t)
				if want := []string{"1:tenant.created", "3:users.authorized", "2:org.created"}; !slices.Equal(types(got), want) {
					t.Fatalf("delivered %v, want %v", types(got), want)
				}
				if org := got[2].Org; org == nil || org.OrgCode != "1" || org.Name != "HQ" || got[2].ID != failed.EventID {
					t.Errorf("re-delivered event %+v, want department 1 HQ with event id %s", got[2], failed.EventID)
				}
				if stored := storedEvent(t, e, 2); stored.State != store.TenantEventDelivered || stored.Attempts != 0 || stored.LastError != "" {
					t.Errorf("event 2 after re-delivery: %s, %d attempts, %q; want delivered, 0, no error", stored.State, stored.Attempts, stored.LastError)
				}
				redeliveries := redeliveryJobs(t, e)
				if len(redeliveries) != 1 || redeliveries[0].State != store.JobDone {
					t.Fatalf("re-delivery jobs %+v, want one, done", redeliveries)
				}
				var p struct {
					TenantID string `json:"tenantId"`
					EventID  int64  `json:"eventId"`
				}
				if err := json.Unmarshal(redeliveries[0].Payload, &p); err != nil || p.TenantID != "t1" || p.EventID != failed.ID {
					t.Errorf("re-delivery job payload %s (%v), want tenant t1, event %d", redeliveries[0].Payload, err, failed.ID)
				}

				for _, bad := range []struct {
					tenant string
					seq    int64
					want   error
				}{
					{"t1", 2, store.ErrConflict}, // delivered now
					{"t1", 1, store.ErrConflict},
					{"t1", 4, store.ErrNotFound},
					{"t1", 0, store.ErrNotFound},
					{"nobody", 1, store.ErrNotFound},
				} {
					if _, err := e.svc.Redeliver(ctx, bad.tenant, bad.seq); !errors.Is(err, bad.want) {
						t.Errorf("Redeliver(%s, %d): %v, want %v", bad.tenant, bad.seq, err, bad.want)
					}
				}
				if n := len(redeliveryJobs(t, e)); n != 1 {
					t.Errorf("%d re-delivery jobs after refused re-deliveries, want 1", n)
				}
				if got := types(e.settle(t)); len(got) != 3 {
					t.Errorf("delivered %v after refused re-deliveries, want nothing more", got)
				}
			})
		}
	}
}

// storedEvent reads tenant t1's event with seq.
func storedEvent(t *testing.T, e *env, seq int64) store.TenantEvent {
	t.Helper()
	evs, err := e.st.TenantEvents(context.Background(), "t1", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Seq == seq {
			return ev
		}
	}
	t.Fatalf("t1 has no event %d", seq)
	return store.TenantEvent{}
}

// redeliveryJobs lists the delivery jobs Redeliver enqueued.
func redeliveryJobs(t *testing.T, e *env) []store.Job {
	t.Helper()
	all, err := e.db.Jobs(context.Background(), store.JobFilter{Kind: tenant.KindEvent})
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Job
	for _, j := range all {
		if strings.Contains(j.UniqueKey, ":redeliver:") {
			out = append(out, j)
		}
	}
	return out
}
