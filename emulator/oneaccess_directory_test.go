package emulator

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestAddDirectoryUser: a user added to the directory signs in at the
// tenant's OneAccess and userinfo answers it, though authSync never sent
// it (the tenant's users do not list it); bad additions are refused.
func TestAddDirectoryUser(t *testing.T) {
	w := startOA(t, jointID, nil)
	err := w.v.e.AddDirectoryUser(w.tenant.TenantID, DirectoryUser{UserName: "outsider", Name: "Out Sider", OrgCode: "ORG-RD"})
	if err != nil {
		t.Fatalf("AddDirectoryUser: %v", err)
	}
	tn, _ := w.v.e.Tenant(w.tenant.TenantID)
	for _, u := range tn.Users {
		if u.UserName == "outsider" {
			t.Fatalf("the directory user is listed among the tenant's authSync users: %+v", u)
		}
	}
	status, loc, _ := w.signIn(w.browser, w.authorizeURL(callback, "d"), "outsider", DefaultUserPassword)
	if status != http.StatusFound {
		t.Fatalf("directory user's sign-in: %d, want 302", status)
	}
	tok := w.exchange(w.location(loc, callback).Get("code"), callback)
	status, body := w.userinfo(tok.AccessToken)
	for _, want := range []string{`"userName":"outsider"`, `"name":"Out Sider"`, `"role":"user"`, `"organizationCode":"ORG-RD"`, `"tenant":"` + w.tenant.TenantID + `"`} {
		if status != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("directory user's userinfo: %d %s, want %s", status, body, want)
		}
	}

	for _, tt := range []struct {
		name, tenant string
		user         DirectoryUser
		want         string
		notFound     bool
	}{
		{"no userName", w.tenant.TenantID, DirectoryUser{}, "userName is required", false},
		{"overlong userName", w.tenant.TenantID, DirectoryUser{UserName: strings.Repeat("u", 129)}, "at most 128 bytes of UTF-8", false},
		{"not UTF-8", w.tenant.TenantID, DirectoryUser{UserName: "bad\xff"}, "at most 128 bytes of UTF-8", false},
		{"already added", w.tenant.TenantID, DirectoryUser{UserName: "outsider"}, `already has user "outsider"`, false},
		{"authSync user", w.tenant.TenantID, DirectoryUser{UserName: "user001"}, `already has user "user001"`, false},
		{"unknown tenant", "no-such-tenant", DirectoryUser{UserName: "x"}, `tenant "no-such-tenant"`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := w.v.e.AddDirectoryUser(tt.tenant, tt.user)
			if err == nil || !strings.Contains(err.Error(), tt.want) || errors.Is(err, ErrNotFound) != tt.notFound {
				t.Fatalf("AddDirectoryUser: %v, want an error with %q (not found: %v)", err, tt.want, tt.notFound)
			}
		})
	}
}
