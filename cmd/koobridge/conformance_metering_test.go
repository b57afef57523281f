package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/isv"
)

// meteringCases are the metering profile's cases and edge/deadline.
const meteringCases = 16 + 1

// TestConformanceMeteringAgainstServe: the metering profile, as a
// process, against a real "koobridge serve" process with its usage API
// on, pushing every second to the suite's mocked Open API (a second after
// a period ends), which holds its first push (kept, unanswered) until
// serve gives up and sends it again.
func TestConformanceMeteringAgainstServe(t *testing.T) {
	const key, token = "conformance-metering-key-0123456789", "conformance-metering-token-0123456789"
	dir := t.TempDir()
	junit := filepath.Join(dir, "j.xml")
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Settle 1s: run in the first minute of an hour, the default minute
	// would hold the last hour's push beyond the wait.
	out, stderr, code := conformanceVsServe(ctx, t, dir,
		[]string{"--key", key, "--usage-token", token, "--usage-push-interval", "1s", "--usage-settle", "1s"},
		func(base, _ string) []string {
			return []string{"--profile", "metering", "--key", key, "--junit", junit,
				"--usage-url", base + isv.UsagePath, "--usage-token-file", tokenFile, "--usage-wait", "1m"}
		})
	if code != 0 {
		t.Fatalf("conformance --profile metering exit %d against koobridge serve\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	n := strconv.Itoa(meteringCases)
	if !strings.Contains(out, n+" cases: "+n+" passed, 0 failed, 0 skipped") || !strings.HasSuffix(out, "\nPASS\n") ||
		!strings.Contains(out, "PASS  metering/pushed") || !strings.Contains(out, "6 hours pushed") ||
		// The suite held serve's first push; serve gave up after its 10 s
		// and sent it again.
		!strings.Contains(out, "PASS  metering/retry") || !gaveUpAfter(out, 10*time.Second) {
		t.Fatalf("report does not say every case passed:\n%s", out)
	}
	j := readJUnit(t, junit)
	if j.Tests != meteringCases || j.Failures != 0 || len(j.Suites) != 2 || j.Suites[0].Name != "metering" || len(j.Suites[0].Cases) != meteringCases-1 {
		t.Fatalf("JUnit: tests=%d failures=%d suites=%+v, want %d tests in metering and edge, no failure", j.Tests, j.Failures, j.Suites, meteringCases)
	}
	for _, secret := range []string{key, token, testSK} {
		if strings.Contains(out, secret) || strings.Contains(stderr, secret) {
			t.Fatal("the conformance output contains a key, the usage token or the SK")
		}
	}
}

// TestConformanceMeteringFlags: the metering profile's flags are checked
// before anything runs.
func TestConformanceMeteringFlags(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"conformance", "--profile", "metering", "--target", "http://127.0.0.1:1/produce", "--key", "k-0123456789",
		"--ak", testAK, "--sk", testSK, "--openapi-listen", "127.0.0.1:0"}
	tests := []struct {
		name   string
		args   []string
		env    string
		stderr string
	}{
		{"no usage URL", []string{"--usage-token", "t"}, "", "needs the seller's usage API URL (UsageURL, --usage-url)"},
		{"no token", []string{"--usage-url", "http://127.0.0.1:1/api/v1/usage"}, "", "bearer token (UsageToken, --usage-token)"},
		{"token and file", []string{"--usage-url", "http://127.0.0.1:1/api/v1/usage", "--usage-token", "t", "--usage-token-file", empty}, "", "give either --usage-token or --usage-token-file"},
		{"empty token file", []string{"--usage-url", "http://127.0.0.1:1/api/v1/usage", "--usage-token-file", empty}, "", "--usage-token-file " + empty + " is empty"},
		{"bad wait", []string{"--usage-url", "http://127.0.0.1:1/api/v1/usage", "--usage-token", "t", "--usage-wait", "0s"}, "", "--usage-wait 0s: want a positive duration"},
		{"quiet longer than the wait", []string{"--usage-url", "http://127.0.0.1:1/api/v1/usage", "--usage-token", "t", "--usage-wait", "1m", "--usage-quiet", "2m"}, "", "--usage-quiet 2m0s: want a positive duration shorter than --usage-wait 1m0s"},
		{"token from the environment, bad URL", []string{"--usage-url", "ftp://x"}, "from-env", `"ftp://x" is not an http or https URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KOOBRIDGE_KEY", "")
			t.Setenv("KOOBRIDGE_SK", "")
			t.Setenv("KOOBRIDGE_USAGE_TOKEN", tt.env)
			var out, errOut bytes.Buffer
			code := run(append(append([]string{}, base...), tt.args...), strings.NewReader(""), &out, &errOut)
			if code != exitUsage || !strings.Contains(errOut.String(), tt.stderr) {
				t.Errorf("exit %d, stderr %q; want %d with %q", code, errOut.String(), exitUsage, tt.stderr)
			}
		})
	}
}

// gaveUpAfter reports whether the report's metering/retry note says the
// seller gave up on the held push within a second of d (its client's
// timeout).
func gaveUpAfter(report string, d time.Duration) bool {
	m := regexp.MustCompile(`gave up after ([0-9.]+m?s)`).FindStringSubmatch(report)
	if m == nil {
		return false
	}
	got, err := time.ParseDuration(m[1])
	return err == nil && got > d-time.Second && got < d+time.Second
}
