package isv_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/provision"
)

// TestAdminRedeliver: the admin API that AdminHandler serves re-delivers a
// failed Kit event through the server's own tenant service: the running
// server delivers it to the provisioner, once.
func TestAdminRedeliver(t *testing.T) {
	e := newEnv(t)
	const adminToken = "admin-token-0123456789"
	admin := httptest.NewServer(e.srv.AdminHandler(isv.AdminConfig{Token: adminToken}))
	t.Cleanup(admin.Close)

	ctx := context.Background()
	b, err := json.Marshal(provision.Event{ID: "org.created:admin-test", Type: provision.EventOrgCreated,
		Tenant: &provision.Tenant{ID: "t-admin"}, Org: &provision.Org{OrgCode: "1", Name: "HQ"}})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := e.sealer.Seal(string(b))
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := e.st.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		id, _, _, err = tx.InsertTenantEvent(ctx, store.TenantEvent{TenantID: "t-admin", EventID: "org.created:admin-test",
			Type: string(provision.EventOrgCreated), PayloadSealed: payload, State: store.TenantEventFailed, LastError: "vendor down"})
		return err
	}); err != nil {
		t.Fatal(err)
	}

	post := func() (int, string) {
		t.Helper()
		req, err := http.NewRequest("POST", admin.URL+"/admin/api/tenants/t-admin/events/1/redeliver", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := post(); code != http.StatusAccepted {
		t.Fatalf("redeliver: %d %s", code, body)
	}
	eventually(t, "the re-delivered event delivered", func() bool {
		ev, err := e.st.TenantEvent(ctx, id)
		return err == nil && ev.State == store.TenantEventDelivered
	})
	if n := e.prov.count(provision.EventOrgCreated); n != 1 {
		t.Errorf("provisioner got %d org.created events, want 1", n)
	}
	if code, body := post(); code != http.StatusConflict {
		t.Errorf("second redeliver: %d %s, want 409", code, body)
	}
}
