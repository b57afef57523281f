package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const testIssuer = "http://127.0.0.1:1" // nothing listens there

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
