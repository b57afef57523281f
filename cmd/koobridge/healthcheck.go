package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// defaultHealthTimeout bounds one health check: a container runtime kills a
// check that outlives its own timeout and counts it as failed anyway, so
// answer first, and say why.
const defaultHealthTimeout = 5 * time.Second

// newHealthcheckCommand is "koobridge healthcheck": GET /healthz of a local
// serve and exit 0 on 200, 1 otherwise. It exists for the container image,
// whose distroless base has no shell and no curl for a HEALTHCHECK.
func newHealthcheckCommand() *cobra.Command {
	var (
		rawURL  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Check that a local serve answers /healthz (exit 0 if it answers 200, 1 otherwise)",
		Long: `Send GET /healthz to a running "koobridge serve" and exit 0 when it answers
200, 1 when it answers anything else, cannot be reached or takes longer than
--timeout. Without --url the address follows KOOBRIDGE_LISTEN (default :8080):
an unspecified or wildcard host (0.0.0.0, [::]) becomes the loopback address,
and the scheme is https when KOOBRIDGE_TLS_CERT is set. It is the container
image's HEALTHCHECK. A serve whose address comes from --listen or a --config
file rather than KOOBRIDGE_LISTEN needs --url.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 { // 0 would be no timeout at all: a hung serve would hang the check
				return usageErrorf("healthcheck: --timeout %v: want more than 0", timeout)
			}
			target := rawURL
			if target == "" {
				u, err := healthURL(os.Getenv)
				if err != nil {
					return rejectedf("healthcheck: %v", err)
				}
				target = u
			}
			return checkHealth(cmd.OutOrStdout(), target, timeout)
		},
	}
	cmd.Flags().StringVar(&rawURL, "url", "", "URL to check (default: /healthz at KOOBRIDGE_LISTEN, wildcard hosts as loopback)")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultHealthTimeout, "give up after this long")
	return cmd
}

// healthURL derives the /healthz URL of the serve in this environment from
// KOOBRIDGE_LISTEN and KOOBRIDGE_TLS_CERT, the settings the image sets.
func healthURL(getenv func(string) string) (string, error) {
	listen := getenv(envName("listen"))
	if listen == "" {
		listen = ":8080" // serve's default
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("%s=%q: %w", envName("listen"), listen, err)
	}
	if port == "" || port == "0" {
		return "", fmt.Errorf("%s=%q: no fixed port to check; give --url", envName("listen"), listen)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		// A wildcard listener answers on loopback; [::] may be IPv6-only.
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	scheme := "http"
	if getenv(envName("tls-cert")) != "" {
		scheme = "https"
	}
	return (&url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port), Path: "/healthz"}).String(), nil
}

// checkHealth GETs target and returns nil on 200, a rejection (exit 1)
// otherwise. Redirects are not followed: /healthz answers directly.
func checkHealth(out io.Writer, target string, timeout time.Duration) error {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Exit 1, not the usual 2: Docker reserves 2 in a HEALTHCHECK.
		return rejectedf("healthcheck: --url %q: want an http:// or https:// URL", target)
	}
	client := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy: nil, // a local check must not go through HTTP_PROXY
			// The certificate names the public host, not the loopback
			// address this probe dials; only the status matters here.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // loopback liveness probe
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Get(u.String())
	if err != nil {
		return rejectedf("healthcheck: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return rejectedf("healthcheck: GET %s: %s", u.Redacted(), resp.Status)
	}
	fmt.Fprintf(out, "ok: GET %s: %s\n", u.Redacted(), resp.Status)
	return nil
}
