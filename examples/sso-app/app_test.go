package main

// These tests cover what the app decides without its provider: settings,
// and the requests it refuses before it talks to the provider. Signing in
// is tested against koobridge itself, with the app built from this module
// and run as a process (koobridge's cmd/koobridge/sso_e2e_test.go and
// e2e/sso_test.go).

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	testIssuer = "http://127.0.0.1:1" // nothing listens: a test that reached the provider fails
	testBase   = "http://127.0.0.1:8070"
)

func TestParse(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(emptyFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		want    options
		wantErr string
	}{
		{
			name: "flags",
			args: []string{"-issuer", testIssuer, "-client-id", "app", "-client-secret", "s", "-listen", "127.0.0.1:0", "-url", "https://app.example.com",
				"-tenant", "t-1", "-refresh-early", "3s"},
			want: options{listen: "127.0.0.1:0", baseURL: "https://app.example.com", issuer: testIssuer, clientID: "app", clientSecret: "s", tenant: "t-1", refreshEarly: 3 * time.Second},
		},
		{
			name: "environment",
			env: map[string]string{"SSO_ISSUER": testIssuer, "SSO_CLIENT_ID": "app", "SSO_CLIENT_SECRET": "env-secret", "SSO_APP_LISTEN": "127.0.0.1:9",
				"SSO_APP_URL": "http://x", "SSO_TENANT": "t-2", "SSO_REFRESH_EARLY": "1m"},
			want: options{listen: "127.0.0.1:9", baseURL: "http://x", issuer: testIssuer, clientID: "app", clientSecret: "env-secret", tenant: "t-2", refreshEarly: time.Minute},
		},
		{
			name: "a flag wins over the environment",
			args: []string{"-client-id", "flag-app", "-refresh-early", "0s"},
			env:  map[string]string{"SSO_ISSUER": testIssuer, "SSO_CLIENT_ID": "env-app", "SSO_CLIENT_SECRET": "s", "SSO_REFRESH_EARLY": "1m"},
			want: options{listen: "127.0.0.1:8070", issuer: testIssuer, clientID: "flag-app", clientSecret: "s"},
		},
		{
			name: "secret from a file, its newline dropped",
			args: []string{"-issuer", testIssuer, "-client-id", "app", "-client-secret-file", secretFile},
			want: options{listen: "127.0.0.1:8070", issuer: testIssuer, clientID: "app", clientSecret: "file-secret", secretFile: secretFile},
		},
		{name: "no issuer", args: []string{"-client-id", "app", "-client-secret", "s"}, wantErr: "-issuer (or SSO_ISSUER) is required"},
		{name: "no client id", args: []string{"-issuer", testIssuer, "-client-secret", "s"}, wantErr: "-client-id (or SSO_CLIENT_ID) is required"},
		{name: "no secret", args: []string{"-issuer", testIssuer, "-client-id", "app"}, wantErr: "the client secret is required"},
		{name: "secret twice", args: []string{"-issuer", testIssuer, "-client-id", "app", "-client-secret", "s", "-client-secret-file", secretFile},
			wantErr: "give the client secret or its file, not both"},
		{name: "empty secret file", args: []string{"-issuer", testIssuer, "-client-id", "app", "-client-secret-file", emptyFile}, wantErr: "is empty"},
		{name: "missing secret file", args: []string{"-issuer", testIssuer, "-client-id", "app", "-client-secret-file", secretFile + ".no"}, wantErr: "client secret file: open"},
		{name: "bad duration in the environment", args: []string{"-issuer", testIssuer, "-client-id", "app", "-client-secret", "s"},
			env: map[string]string{"SSO_REFRESH_EARLY": "soon"}, wantErr: "SSO_REFRESH_EARLY"},
		{name: "an argument", args: []string{"-issuer", testIssuer, "-client-id", "app", "-client-secret", "s", "extra"}, wantErr: `unexpected arguments ["extra"]`},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: "flag provided but not defined: -nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, errUsage) {
					t.Fatalf("parse: %v, want a usage error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("parse:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	ok := Config{Issuer: testIssuer, ClientID: "app", ClientSecret: "s", BaseURL: testBase}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"issuer not http", func(c *Config) { c.Issuer = "ftp://x" }, "issuer"},
		{"issuer with a query", func(c *Config) { c.Issuer = testIssuer + "?a=1" }, "issuer"},
		{"issuer without host", func(c *Config) { c.Issuer = "http://" }, "issuer"},
		{"base URL with a trailing slash", func(c *Config) { c.BaseURL = testBase + "/" }, "base URL"},
		{"base URL with a fragment", func(c *Config) { c.BaseURL = testBase + "#x" }, "base URL"},
		{"no client id", func(c *Config) { c.ClientID = "" }, "client id is empty"},
		{"no secret", func(c *Config) { c.ClientSecret = "" }, "client secret is empty"},
		{"bad tenant", func(c *Config) { c.Tenant = "a b" }, "tenant"},
		{"negative refresh", func(c *Config) { c.RefreshEarly = -time.Second }, "refresh early"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.change(&c)
			if _, err := New(c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error about %q", err, tc.want)
			}
		})
	}
	a, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	if a.RedirectURI() != testBase+"/callback" || a.PostLogoutRedirectURI() != testBase+"/" || a.InitiateLoginURI() != testBase+"/initiate-login" {
		t.Errorf("URIs: %s %s %s", a.RedirectURI(), a.PostLogoutRedirectURI(), a.InitiateLoginURI())
	}
}

// TestRefusals: requests the app refuses before it asks the provider
// anything (its issuer is a closed port, so one that did would answer
// 502, not the status wanted).
func TestRefusals(t *testing.T) {
	a, err := New(Config{Issuer: testIssuer, ClientID: "app", ClientSecret: "s", BaseURL: testBase,
		HTTPClient: &http.Client{Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, target, body string
		status                     int
		text                       string
	}{
		{"unknown page", "GET", "/admin", "", 404, "There is no such page here."},
		{"home by POST", "POST", "/", "", 405, "This page takes GET, HEAD."},
		{"login by POST", "POST", "/login?tenant=t", "", 405, "This page takes GET."},
		{"tenant twice", "GET", "/login?tenant=a&tenant=b", "", 400, "the parameter tenant is given 2 times"},
		{"tenant with a space", "GET", "/login?tenant=a+b", "", 400, "The tenant must be 1 to 64"},
		{"tenant too long", "GET", "/login?tenant=" + strings.Repeat("t", 65), "", 400, "The tenant must be 1 to 64"},
		{"malformed query", "GET", "/login?tenant=%zz", "", 400, "the query is malformed"},
		{"callback without state", "GET", "/callback?code=c", "", 400, "This answer is not for a sign-in this browser started here"},
		{"callback with an unknown state", "GET", "/callback?code=c&state=forged", "", 400, "This answer is not for a sign-in this browser started here"},
		{"callback with state twice", "GET", "/callback?code=c&state=a&state=b", "", 400, "the parameter state is given 2 times"},
		{"callback by POST", "POST", "/callback?code=c&state=a", "", 405, "This page takes GET."},
		{"initiate login without iss", "GET", "/initiate-login", "", 400, "The iss parameter does not name this app&#39;s provider."},
		{"initiate login from another issuer", "GET", "/initiate-login?iss=http://127.0.0.1:2", "", 400, "does not name this app&#39;s provider"},
		{"initiate login to another site", "GET", "/initiate-login?iss=" + testIssuer + "&target_link_uri=https://evil.example/", "", 400, "The target_link_uri is not a page of this app."},
		{"initiate login to a look-alike host", "GET", "/initiate-login?iss=" + testIssuer + "&target_link_uri=" + testBase + ".evil.example/", "", 400, "The target_link_uri is not a page of this app."},
		{"initiate login with iss twice", "GET", "/initiate-login?iss=" + testIssuer + "&iss=" + testIssuer, "", 400, "the parameter iss is given 2 times"},
		{"initiate login with a bad tenant", "GET", "/initiate-login?iss=" + testIssuer + "&tenant=%3Cx%3E", "", 400, "The tenant must be"},
		{"initiate login with a long hint", "GET", "/initiate-login?iss=" + testIssuer + "&login_hint=" + strings.Repeat("h", 257), "", 400, "The login_hint is too long."},
		{"initiate login form with a query", "POST", "/initiate-login?iss=" + testIssuer, "iss=" + testIssuer, 400, "send the parameters in the form, not the query"},
		{"initiate login form, iss twice", "POST", "/initiate-login", "iss=a&iss=b", 400, "the parameter iss is given 2 times"},
		{"initiate login by PUT", "PUT", "/initiate-login", "", 405, "This page takes GET, POST."},
		{"logout by GET", "GET", "/logout", "", 405, "This page takes POST."},
		{"logout with a query", "POST", "/logout?next=https://evil.example/", "", 400, "Sign-out takes no parameters."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, req)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.text) {
				t.Errorf("%s %s: %d, want %d with %q:\n%s", tc.method, tc.target, rec.Code, tc.status, tc.text, rec.Body.String())
			}
			if rec.Header().Get("Location") != "" {
				t.Errorf("a refusal redirects to %s", rec.Header().Get("Location"))
			}
		})
	}
}

// TestLogoutWithoutSession: signing out of no session clears the cookie
// and goes home, without asking the provider.
func TestLogoutWithoutSession(t *testing.T) {
	a, err := New(Config{Issuer: testIssuer, ClientID: "app", ClientSecret: "s", BaseURL: testBase})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/logout", nil)
	req.AddCookie(&http.Cookie{Name: Cookie, Value: "unknown"})
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/" {
		t.Fatalf("logout: %d to %q, want 303 to /", rec.Code, rec.Header().Get("Location"))
	}
	if c := rec.Result().Cookies(); len(c) != 1 || c[0].Name != Cookie || c[0].MaxAge >= 0 || !c[0].HttpOnly {
		t.Errorf("logout cookies: %+v, want %s cleared", c, Cookie)
	}
}

// TestRunServes starts the app as main does and reads its signed-out
// home page over HTTP; the discovery document is not needed for it.
func TestRunServes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-issuer", testIssuer, "-client-id", "app", "-tenant", "t-9"},
			func(k string) string { return map[string]string{"SSO_CLIENT_SECRET": "top-secret-value"}[k] }, pw, &stderr)
		pw.Close()
	}()
	line, err := readLine(pr)
	if err != nil {
		t.Fatalf("no start line: %v (%s)", err, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	m := regexp.MustCompile(`^sso-app listening on (http://127\.0\.0\.1:\d+)/ \(issuer http://127\.0\.0\.1:1; redirect URI (\S+), post-logout (\S+), initiate login (\S+)\)$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("start line %q", line)
	}
	base := m[1]
	if m[2] != base+"/callback" || m[3] != base+"/" || m[4] != base+"/initiate-login" {
		t.Errorf("start line URIs: %q", line)
	}
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `<h1 id="title">Signed out</h1>`) ||
		!strings.Contains(string(body), `name="tenant" value="t-9"`) {
		t.Errorf("home: %d\n%s", resp.StatusCode, body)
	}
	for h, want := range map[string]string{"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Content-Type": "text/html; charset=utf-8"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if strings.Contains(stderr.String(), "top-secret-value") {
		t.Errorf("the log holds the client secret:\n%s", stderr.String())
	}
}

func readLine(r io.Reader) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for {
		if _, err := r.Read(one); err != nil {
			return string(b), err
		}
		if one[0] == '\n' {
			return string(b), nil
		}
		b = append(b, one[0])
	}
}
