package main

import (
	"encoding/xml"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/koobridge/koobridge/cmd/koobridge/internal/ssoapp"
)

// ssoConformanceCases is how many cases "--profile sso" runs: the bind,
// the five sign-in cases and edge/deadline.
const ssoConformanceCases = 7

// TestConformanceSSOAgainstServe runs "koobridge conformance --profile
// sso" against a real "koobridge serve" process (its OpenID Connect
// provider on --public-url) and the sample app (package ssoapp) as the
// vendor's app: every case passes, and the report and the JUnit file
// show neither a secret nor a code.
func TestConformanceSSOAgainstServe(t *testing.T) {
	bin := koobridgeBinary(t)
	dir := t.TempDir()
	const key, kitKey = "sso-conf-basic-key-0123456789", "sso-conf-kit-key-9876543210"
	const clientID, clientSecret = "conformance-app", "conformance-app-secret-0123456789"
	prefix := filepath.Join(dir, "seller")
	if out, err := exec.Command(bin, "keygen", "rsa", "--out", prefix).CombinedOutput(); err != nil {
		t.Fatalf("keygen rsa: %v\n%s", err, out)
	}
	junit := filepath.Join(dir, "sso.xml")
	var (
		code           int
		stdout, stderr string
		srv            *serveProc
	)
	// The server and the app are told the suite's address before the
	// suite listens on it: if another process took a port meanwhile,
	// start everything again on new ones.
	for attempt := range portRetries {
		openAPI := "127.0.0.1:" + strconv.Itoa(freePort(t))
		serverAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
		public := "http://" + serverAddr
		appLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		appURL := "http://" + appLn.Addr().String()
		app, err := ssoapp.New(ssoapp.Config{Issuer: public, ClientID: clientID, ClientSecret: clientSecret, BaseURL: appURL})
		if err != nil {
			t.Fatalf("ssoapp.New: %v", err)
		}
		appSrv := httptest.NewUnstartedServer(app)
		_ = appSrv.Listener.Close()
		appSrv.Listener = appLn
		appSrv.Start()
		t.Cleanup(appSrv.Close)
		srv = startServe(t, "--db", filepath.Join(dir, "k"+strconv.Itoa(attempt)+".db"), "--key", key, "--kit-key", kitKey,
			"--rsa-private-key-file", prefix+".pem", "--ak", testAK, "--sk", testSK, "--data-key", newDataKey(t),
			"--openapi-url", "http://"+openAPI, "--listen", serverAddr, "--public-url", public,
			"--sso-client-id", clientID, "--sso-client-secret", clientSecret,
			"--sso-redirect-uri", app.RedirectURI(), "--sso-post-logout-redirect-uri", app.PostLogoutRedirectURI(),
			"--sso-initiate-login-uri", app.InitiateLoginURI())
		if srv.base != public {
			t.Fatalf("serve listens on %s, want %s", srv.base, public)
		}
		code, stdout, stderr = runConformance(t, []string{"conformance", "--profile", "sso", "--target", public + "/produce",
			"--key", key, "--kit-key", kitKey, "--ak", testAK, "--sk", testSK, "--openapi-listen", openAPI,
			"--rsa-public-key-file", prefix + ".pub.pem", "--junit", junit,
			"--sso-login-url", appURL + "/login?tenant={tenantId}", "--sso-whoami-url", appURL + "/",
			"--sso-logout-url", appURL + "/logout"})
		if !inUse(code, stderr) {
			break
		}
		_ = srv.stop(t, os.Interrupt)
		appSrv.Close()
	}
	if code != exitOK {
		t.Fatalf("conformance exit %d against koobridge serve and the sample app\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	want := strconv.Itoa(ssoConformanceCases) + " cases: " + strconv.Itoa(ssoConformanceCases) + " passed, 0 failed"
	if !strings.Contains(stdout, want) || strings.Contains(stdout, "FAIL") {
		t.Fatalf("report does not say %q:\n%s", want, stdout)
	}
	for _, id := range []string{"sso/bind", "sso/sign-in", "sso/tampered-state", "sso/unauthorised-user", "sso/revoked-user", "sso/logout"} {
		if !strings.Contains(stdout, "PASS  "+id+" ") {
			t.Errorf("report has no PASS line for %s:\n%s", id, stdout)
		}
	}
	j := readJUnit(t, junit)
	if j.Tests != ssoConformanceCases || j.Failures != 0 {
		t.Fatalf("JUnit: tests=%d failures=%d, want %d and 0", j.Tests, j.Failures, ssoConformanceCases)
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Out []string `xml:"testsuite>testcase>system-out"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	all := stdout + stderr + strings.Join(doc.Out, "\n") + srv.output()
	for _, leak := range []string{clientSecret, key, kitKey, testSK, "emulator-password"} {
		if strings.Contains(all, leak) {
			t.Errorf("the report, the JUnit file or serve's log holds %q", leak)
		}
	}
	// The browser's calls are in the JUnit file, their query values
	// redacted: no code or state reaches it.
	if !strings.Contains(strings.Join(doc.Out, "\n"), "/oneaccess/") {
		t.Errorf("the JUnit file shows no call to the tenant's OneAccess")
	}
	for _, s := range doc.Out {
		for _, line := range strings.Split(s, "\n") {
			if strings.Contains(line, "code=") && !strings.Contains(line, "code=[redacted]") {
				t.Errorf("the JUnit file shows a code: %s", line)
			}
		}
	}
}

// TestConformanceSSOFlags: the sso profile's flags reach the suite's
// configuration; a missing or malformed one is a usage error naming it.
func TestConformanceSSOFlags(t *testing.T) {
	bin := koobridgeBinary(t)
	prefix := filepath.Join(t.TempDir(), "seller")
	if out, err := exec.Command(bin, "keygen", "rsa", "--out", prefix).CombinedOutput(); err != nil {
		t.Fatalf("keygen rsa: %v\n%s", err, out)
	}
	base := []string{"conformance", "--profile", "sso", "--target", "http://127.0.0.1:1/produce", "--key", "k", "--ak", testAK,
		"--sk", testSK, "--openapi-listen", "127.0.0.1:1"}
	login, whoami, logout := []string{"--sso-login-url", "http://127.0.0.1:2/login?tenant={tenantId}"},
		[]string{"--sso-whoami-url", "http://127.0.0.1:2/"}, []string{"--sso-logout-url", "http://127.0.0.1:2/logout"}
	key := []string{"--rsa-public-key-file", prefix + ".pub.pem"}
	join := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no RSA key", join(base, login, whoami, logout), "the sso profile needs the seller's RSA public key"},
		{"no login URL", join(base, key, whoami, logout), "the sso profile needs SSO.LoginURL (--sso-login-url)"},
		{"no whoami URL", join(base, key, login, logout), "the sso profile needs SSO.WhoamiURL (--sso-whoami-url)"},
		{"no logout URL", join(base, key, login, whoami), "the sso profile needs SSO.LogoutURL (--sso-logout-url)"},
		{"relative whoami URL", join(base, key, login, logout, []string{"--sso-whoami-url", "/me"}), `SSO.WhoamiURL "/me" is not an http or https URL`},
		{"public URL with a query", join(base, key, login, whoami, logout, []string{"--sso-public-url", "http://127.0.0.1:3/?a=b"}), "SSO.PublicURL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runConformance(t, tt.args)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q (stdout %q), want %d with %q", code, stderr, stdout, exitUsage, tt.want)
			}
		})
	}
}
