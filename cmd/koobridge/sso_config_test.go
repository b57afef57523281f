package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/provision"
	"github.com/koobridge/koobridge/store"
)

const ssoSecret = "app-secret-0123456789"

func TestSSOConfig(t *testing.T) {
	secretFile := writeFile(t, "app-secret", ssoSecret+"\n")
	yamlFile := writeFile(t, "koobridge.yaml", `
public-url: https://isv.example.com/
sso-clients:
  - id: app-b
    secret-file: `+secretFile+`
    redirect-uris: [https://b.example.com/cb, https://b.example.com/cb2]
    post-logout-redirect-uris: [https://b.example.com/]
    initiate-login-uri: https://b.example.com/initiate
    app-id: APP-B
`)
	casYAML := writeFile(t, "cas.yaml", `
public-url: https://isv.example.com
sso-cas-tenant: [t-2, t-3]
sso-clients:
  - id: app-b
    secret-file: `+secretFile+`
    redirect-uris: [https://b.example.com/cb, https://b.example.com/cb2]
    post-logout-redirect-uris: [https://b.example.com/]
    initiate-login-uri: https://b.example.com/initiate
    app-id: APP-B
`)
	flagClient := []string{"--sso-client-id", "app-a", "--sso-client-secret", ssoSecret, "--sso-redirect-uri", "https://a.example.com/cb",
		"--sso-post-logout-redirect-uri", "https://a.example.com/", "--sso-initiate-login-uri", "https://a.example.com/initiate"}
	clientA := isv.SSOClient{ID: "app-a", Secret: ssoSecret, RedirectURIs: []string{"https://a.example.com/cb"},
		PostLogoutRedirectURIs: []string{"https://a.example.com/"}, InitiateLoginURI: "https://a.example.com/initiate"}
	clientB := isv.SSOClient{ID: "app-b", Secret: ssoSecret, RedirectURIs: []string{"https://b.example.com/cb", "https://b.example.com/cb2"},
		PostLogoutRedirectURIs: []string{"https://b.example.com/"}, InitiateLoginURI: "https://b.example.com/initiate", AppID: "APP-B"}
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		want    *isv.SSOConfig
		wantErr string
	}{
		{"off", nil, nil, nil, ""},
		{"public URL alone", []string{"--public-url", "https://isv.example.com"}, nil, nil, ""},
		{"flags", append([]string{"--public-url", "https://isv.example.com"}, flagClient...), nil,
			&isv.SSOConfig{PublicURL: "https://isv.example.com", Clients: []isv.SSOClient{clientA}}, ""},
		{"flags and YAML", append([]string{"--config", yamlFile}, flagClient...), nil,
			&isv.SSOConfig{PublicURL: "https://isv.example.com", Clients: []isv.SSOClient{clientA, clientB}}, ""},
		{"client without public URL", flagClient, nil, nil, "need --public-url"},
		{"short secret", []string{"--public-url", "https://i.example.com", "--sso-client-id", "a", "--sso-client-secret", "short", "--sso-redirect-uri", "https://a.example.com/cb"}, nil, nil, "at least 16 characters"},
		{"no redirect URI", []string{"--public-url", "https://i.example.com", "--sso-client-id", "a", "--sso-client-secret", ssoSecret}, nil, nil, "redirect URI is required"},
		{"bad redirect URI", []string{"--public-url", "https://i.example.com", "--sso-client-id", "a", "--sso-client-secret", ssoSecret, "--sso-redirect-uri", "app://cb"}, nil, nil, `"app://cb"`},
		{"bad public URL", []string{"--public-url", "https://i.example.com/?x=1"}, nil, nil, "--public-url"},
		{"secret and file", []string{"--public-url", "https://i.example.com", "--sso-client-id", "a", "--sso-client-secret", ssoSecret, "--sso-client-secret-file", secretFile, "--sso-redirect-uri", "https://a.example.com/cb"}, nil, nil, "not both"},
		{"CAS tenants by flag", append([]string{"--public-url", "https://isv.example.com", "--sso-cas-tenant", "t-1", "--sso-cas-tenant", "*"}, flagClient...), nil,
			&isv.SSOConfig{PublicURL: "https://isv.example.com", Clients: []isv.SSOClient{clientA}, CASTenants: []string{"t-1", "*"}}, ""},
		{"CAS tenant by environment", append([]string{"--public-url", "https://isv.example.com"}, flagClient...), map[string]string{"KOOBRIDGE_SSO_CAS_TENANT": "t-4"},
			&isv.SSOConfig{PublicURL: "https://isv.example.com", Clients: []isv.SSOClient{clientA}, CASTenants: []string{"t-4"}}, ""},
		{"CAS tenants in YAML", []string{"--config", casYAML}, nil,
			&isv.SSOConfig{PublicURL: "https://isv.example.com", Clients: []isv.SSOClient{clientB}, CASTenants: []string{"t-2", "t-3"}}, ""},
		{"CAS tenant with a space", append([]string{"--public-url", "https://isv.example.com", "--sso-cas-tenant", "t 1"}, flagClient...), nil, nil,
			`--sso-cas-tenant "t 1": want a tenantId (at most 64 characters, no spaces) or *`},
		{"empty CAS tenant", append([]string{"--public-url", "https://isv.example.com", "--sso-cas-tenant", ""}, flagClient...), nil, nil,
			`--sso-cas-tenant "": want a tenantId`},
		{"CAS tenant too long", append([]string{"--public-url", "https://isv.example.com", "--sso-cas-tenant", strings.Repeat("t", 65)}, flagClient...), nil, nil,
			`want a tenantId (at most 64 characters`},
		{"CAS tenant without a client", []string{"--public-url", "https://isv.example.com", "--sso-cas-tenant", "t-1"}, nil, nil,
			"--sso-cas-tenant needs an SSO client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := resolveArgs(t, append(append([]string{}, base...), tc.args...), tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), ssoSecret) {
					t.Fatalf("error shows the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.sso, tc.want) {
				t.Fatalf("sso %+v, want %+v", cfg.sso, tc.want)
			}
		})
	}
	t.Run("YAML unknown field", func(t *testing.T) {
		f := writeFile(t, "bad.yaml", "public-url: https://i.example.com\nsso-clients:\n  - id: a\n    secret: "+ssoSecret+"\n    redirect-uri: https://a.example.com/cb\n")
		if _, err := resolveArgs(t, append(append([]string{}, base...), "--config", f), nil); err == nil || !strings.Contains(err.Error(), "sso-clients") {
			t.Fatalf("error %v, want one naming sso-clients", err)
		}
	})
}

// TestSSOMounted: serve's handler answers the provider's discovery under
// the public URL, beside the production interface and /healthz.
func TestSSOMounted(t *testing.T) {
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "kb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var ts *httptest.Server
	var handler http.Handler
	ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	defer ts.Close()
	cfg, err := resolveArgs(t, append(append([]string{}, base...), "--public-url", ts.URL, "--sso-client-id", "app-a",
		"--sso-client-secret", ssoSecret, "--sso-redirect-uri", "https://a.example.com/cb"), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := isv.New(isv.Config{Keys: cfg.keys, DB: st, DataKey: cfg.dataKey, Orders: devOrders{now: time.Now}, Provisioner: provision.NewDemo("")})
	if err != nil {
		t.Fatal(err)
	}
	if handler, err = mountSSO(newServeMux(cfg, st, srv, prometheus.NewRegistry(), slog.New(slog.DiscardHandler)), srv, cfg.sso); err != nil {
		t.Fatal(err)
	}
	code, body := httpGet(t, ts.URL+"/.well-known/openid-configuration", "")
	var d struct {
		Issuer string `json:"issuer"`
		Token  string `json:"token_endpoint"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &d) != nil || d.Issuer != ts.URL || d.Token != ts.URL+"/oauth/token" {
		t.Fatalf("discovery: %d %s", code, body)
	}
	if code, _ := httpGet(t, ts.URL+"/healthz", ""); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	if code, body := httpGet(t, ts.URL+"/elsewhere", ""); code != 404 || !strings.Contains(body, `"resultCode":"000002"`) {
		t.Fatalf("unknown path: %d %s", code, body)
	}
}
