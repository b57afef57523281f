package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestHealthURL(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		want   string
		errHas string
	}{
		{name: "default listen", want: "http://127.0.0.1:8080/healthz"},
		{name: "empty host", env: map[string]string{"KOOBRIDGE_LISTEN": ":9000"}, want: "http://127.0.0.1:9000/healthz"},
		{name: "IPv4 wildcard", env: map[string]string{"KOOBRIDGE_LISTEN": "0.0.0.0:8080"}, want: "http://127.0.0.1:8080/healthz"},
		{name: "IPv6 wildcard", env: map[string]string{"KOOBRIDGE_LISTEN": "[::]:8080"}, want: "http://[::1]:8080/healthz"},
		{name: "specific host kept", env: map[string]string{"KOOBRIDGE_LISTEN": "10.1.2.3:8443"}, want: "http://10.1.2.3:8443/healthz"},
		{name: "name kept", env: map[string]string{"KOOBRIDGE_LISTEN": "localhost:8080"}, want: "http://localhost:8080/healthz"},
		{name: "TLS", env: map[string]string{"KOOBRIDGE_LISTEN": "0.0.0.0:8443", "KOOBRIDGE_TLS_CERT": "/tls/cert.pem"}, want: "https://127.0.0.1:8443/healthz"},
		{name: "port 0", env: map[string]string{"KOOBRIDGE_LISTEN": "127.0.0.1:0"}, errHas: "no fixed port"},
		{name: "no port", env: map[string]string{"KOOBRIDGE_LISTEN": "127.0.0.1"}, errHas: "KOOBRIDGE_LISTEN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := healthURL(func(k string) string { return tc.env[k] })
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("healthURL = %q, %v; want an error containing %q", got, err, tc.errHas)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("healthURL = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestHealthcheckCommand runs the built binary, as a container runtime runs
// the image's HEALTHCHECK, against a real serve and against what must fail.
func TestHealthcheckCommand(t *testing.T) {
	bin := koobridgeBinary(t)
	p := startServe(t, "--dev", "--listen", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "k.db"))
	_, port, err := net.SplitHostPort(strings.TrimPrefix(p.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}

	// A serve with TLS and a certificate no system pool trusts.
	certFile, keyFile, _ := selfSigned(t)
	tp := startServe(t, "--dev", "--listen", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "k.db"),
		"--tls-cert", certFile, "--tls-key", keyFile)
	_, tlsPort, err := net.SplitHostPort(strings.TrimPrefix(tp.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}

	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
	}))
	defer unavailable.Close()
	redirect := httptest.NewServer(http.RedirectHandler(p.base+"/healthz", http.StatusFound))
	defer redirect.Close()
	hang := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	defer hanging.Close()
	defer close(hang) // before hanging.Close, which waits for the handler
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	_ = closed.Close()

	tests := []struct {
		name string
		args []string
		env  []string
		want int
	}{
		{name: "healthy serve, URL from the wildcard listen address", env: []string{"KOOBRIDGE_LISTEN=0.0.0.0:" + port}, want: 0},
		{name: "healthy serve, empty listen host", env: []string{"KOOBRIDGE_LISTEN=:" + port}, want: 0},
		{name: "healthy serve, --url", args: []string{"--url", p.base + "/healthz"}, want: 0},
		{name: "TLS serve, https from KOOBRIDGE_TLS_CERT", env: []string{"KOOBRIDGE_LISTEN=0.0.0.0:" + tlsPort, "KOOBRIDGE_TLS_CERT=" + certFile}, want: 0},
		{name: "TLS serve asked over plain HTTP", env: []string{"KOOBRIDGE_LISTEN=0.0.0.0:" + tlsPort}, want: 1},
		{name: "503", args: []string{"--url", unavailable.URL + "/healthz"}, want: 1},
		{name: "redirect is not healthy", args: []string{"--url", redirect.URL + "/healthz"}, want: 1},
		{name: "closed port", args: []string{"--url", "http://" + closedAddr + "/healthz"}, want: 1},
		{name: "closed port from the listen address", env: []string{"KOOBRIDGE_LISTEN=" + closedAddr}, want: 1},
		{name: "no answer within --timeout", args: []string{"--url", hanging.URL + "/healthz", "--timeout", "200ms"}, want: 1},
		{name: "bad URL exits 1, not Docker's reserved 2", args: []string{"--url", "ftp://example"}, want: 1},
		{name: "listen without a port", env: []string{"KOOBRIDGE_LISTEN=127.0.0.1:0"}, want: 1},
		// 0 would wait for a hung serve for ever: a wrong command line (2).
		{name: "--timeout 0 is refused", args: []string{"--url", hanging.URL + "/healthz", "--timeout", "0"}, want: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Far above --timeout: a check that ignores it fails here, not at
			// the test binary's 10 minutes.
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, append([]string{"healthcheck"}, tc.args...)...)
			cmd.Env = append(cleanEnv(), tc.env...)
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.want {
				t.Fatalf("koobridge healthcheck %v exited %d, want %d:\n%s", tc.args, code, tc.want, out)
			}
		})
	}
}
