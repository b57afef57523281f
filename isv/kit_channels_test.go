package isv_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// TestKitEventChannels: the Kit events reach the vendor's product through
// the signed webhook and through a local command, in order, with the
// decrypted client secret and the users' contact data in full.
func TestKitEventChannels(t *testing.T) {
	const secret = "kit-webhook-secret-0123456789"
	var mu sync.Mutex
	var viaWebhook []provision.Event
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := provision.VerifyWebhook(secret, r.Header.Get(provision.HeaderSignature), body, time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ev provision.Event
		if err := json.Unmarshal(body, &ev); err != nil || r.Header.Get(provision.HeaderEvent) != string(ev.Type) {
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		mu.Lock()
		viaWebhook = append(viaWebhook, ev)
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer hook.Close()
	webhook, err := provision.NewWebhook(provision.WebhookConfig{URL: hook.URL, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}

	// The command appends each event's JSON to a file, one line each.
	dir := t.TempDir()
	out := filepath.Join(dir, "events.jsonl")
	script := filepath.Join(dir, "hook.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n{ cat; echo; } >> "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	command, err := provision.NewExec(provision.ExecConfig{Command: []string{script}})
	if err != nil {
		t.Fatal(err)
	}

	for _, ch := range []struct {
		name   string
		prov   provision.Provisioner
		events func() []provision.Event
	}{
		{"webhook", webhook, func() []provision.Event {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(viaWebhook)
		}},
		{"exec", command, func() []provision.Event {
			raw, _ := os.ReadFile(out)
			var evs []provision.Event
			for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
				var ev provision.Event
				if json.Unmarshal([]byte(line), &ev) == nil {
					evs = append(evs, ev)
				}
			}
			return evs
		}},
	} {
		t.Run(ch.name, func(t *testing.T) {
			e, _ := v1Env(t, func(c *isv.Config) {
				c.Keys.Kit, c.RSAPrivateKey = []string{kitKey}, kitRSA
				c.Provisioner, c.TestProvisioner = ch.prov, ch.prov
			})
			for _, kr := range []kitRequest{
				{gen: 2, op: "tenantSync", body: tenantBody(t, 1, "Acme")},
				{gen: 2, op: "applicationSync", body: appBody(t, 1, "client-secret-1")},
				{gen: 1, op: "authSync", body: authBody(t, 1, usersJSON(t, 3, "1"))},
				{gen: 2, op: "singleOrgSync", body: orgBody(t, 1, "1", "HQ", "")},
			} {
				wantCode(t, e.kit(t, kr), protocol.CodeSuccess)
			}
			var evs []provision.Event
			eventually(t, "four events through "+ch.name, func() bool { evs = ch.events(); return len(evs) >= 4 })
			var got []string
			for _, ev := range evs {
				got = append(got, string(ev.Type))
				if ev.Tenant == nil || ev.Tenant.ID != "t-0001" {
					t.Errorf("%s names tenant %+v", ev.Type, ev.Tenant)
				}
			}
			if want := []string{"tenant.created", "app.created", "users.authorized", "org.created"}; !slices.Equal(got, want) {
				t.Fatalf("events %v, want %v", got, want)
			}
			for i, ev := range evs {
				if ev.Seq != int64(i+1) {
					t.Errorf("%s has seq %d, want %d", ev.Type, ev.Seq, i+1)
				}
			}
			if evs[1].App == nil || evs[1].App.ClientSecret != "client-secret-1" {
				t.Errorf("app.created carries %+v, want the decrypted secret", evs[1].App)
			}
			if u := evs[2].Users[0]; u.Mobile != "13912345678" || u.Email != "first@example.com" || u.Role != "admin" {
				t.Errorf("first user %+v, want mobile and e-mail in full", u)
			}
		})
	}
}
