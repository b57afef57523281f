package main

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeSecureCookie: with --secure-cookie, a console login over plain
// HTTP (TLS ends at a proxy in front) gets a Secure session cookie; without
// it, it does not.
func TestServeSecureCookie(t *testing.T) {
	for _, secure := range []bool{true, false} {
		args := []string{"--dev", "--listen", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "kb.db"), "--admin-token", adminToken}
		if secure {
			args = append(args, "--secure-cookie")
		}
		p := startServe(t, args...)
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.PostForm(p.base+"/admin/login", url.Values{"token": {adminToken}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var session *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Value != "" {
				session = c
			}
		}
		if resp.StatusCode != http.StatusSeeOther || session == nil {
			t.Fatalf("--secure-cookie=%v: login answered %d with cookies %v", secure, resp.StatusCode, resp.Header["Set-Cookie"])
		}
		if session.Secure != secure || strings.Contains(resp.Header.Get("Set-Cookie"), "Secure") != secure {
			t.Errorf("--secure-cookie=%v: session cookie %q", secure, resp.Header.Get("Set-Cookie"))
		}
		if code := p.stop(t, os.Interrupt); code != 0 {
			t.Fatalf("exit %d after SIGINT", code)
		}
	}
}
