package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol/sign"
)

// junitCounts is the top of a JUnit report.
type junitCounts struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Suites   []struct {
		Name  string `xml:"name,attr"`
		Cases []struct {
			Name    string    `xml:"name,attr"`
			Failure *struct{} `xml:"failure"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func readJUnit(t *testing.T, path string) junitCounts {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("JUnit file: %v", err)
	}
	var j junitCounts
	if err := xml.Unmarshal(b, &j); err != nil {
		t.Fatalf("JUnit does not parse: %v\n%s", err, b)
	}
	return j
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before it is used: callers retry with a new
// one when the start fails with "address already in use" (portRetries).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func newDataKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// portRetries is how many ports a test tries when the one freePort gave
// has been taken meanwhile.
const portRetries = 3

// conformanceVsServe runs "koobridge conformance" (confArgs, given the
// server's base URL and the suite's Open API address, beside --target,
// --ak, --sk and --openapi-listen) against a "koobridge serve" (serveArgs
// beside a fresh database in dir, --ak, --sk, a data key and the suite's
// Open API as its own), both as processes. The server is told the suite's
// Open API address before the suite listens on it: if another process took
// the port meanwhile, both start again on a new one. It returns the
// suite's output and exit code.
func conformanceVsServe(ctx context.Context, t *testing.T, dir string, serveArgs []string, confArgs func(base, openAPI string) []string) (stdout, stderr string, code int) {
	t.Helper()
	bin := koobridgeBinary(t)
	var (
		cmd     *exec.Cmd
		out, eo bytes.Buffer
	)
	for attempt := range portRetries {
		openAPI := "127.0.0.1:" + strconv.Itoa(freePort(t))
		p := startServe(t, append([]string{"--db", filepath.Join(dir, "k"+strconv.Itoa(attempt)+".db"), "--ak", testAK, "--sk", testSK,
			"--data-key", newDataKey(t), "--openapi-url", "http://" + openAPI, "--listen", "127.0.0.1:0"}, serveArgs...)...)
		cmd = exec.CommandContext(ctx, bin, append([]string{"conformance", "--target", p.base + "/produce",
			"--ak", testAK, "--sk", testSK, "--openapi-listen", openAPI}, confArgs(p.base, openAPI)...)...)
		cmd.Env = cleanEnv()
		out.Reset()
		eo.Reset()
		cmd.Stdout, cmd.Stderr = &out, &eo
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("run conformance: %v", err)
		}
		if !inUse(cmd.ProcessState.ExitCode(), eo.String()) {
			break
		}
		_ = p.stop(t, os.Interrupt)
	}
	return out.String(), eo.String(), cmd.ProcessState.ExitCode()
}

// inUse reports whether a conformance run failed because its
// --openapi-listen port was taken.
func inUse(code int, stderr string) bool {
	return code == exitUsage && strings.Contains(stderr, "address already in use")
}

// openAPIPlaceholder in a test's arguments stands for a fresh
// --openapi-listen address.
const openAPIPlaceholder = "{openapi}"

// runConformance runs the command in-process, replacing
// openAPIPlaceholder by a free 127.0.0.1 address, and retries with a new
// one if the port was taken meanwhile.
func runConformance(t *testing.T, args []string) (code int, stdout, stderr string) {
	t.Helper()
	for range portRetries {
		a := make([]string, len(args))
		for i, s := range args {
			a[i] = strings.ReplaceAll(s, openAPIPlaceholder, "127.0.0.1:"+strconv.Itoa(freePort(t)))
		}
		var out, errOut bytes.Buffer
		code = run(a, strings.NewReader(""), &out, &errOut)
		stdout, stderr = out.String(), errOut.String()
		if !slices.Contains(args, openAPIPlaceholder) || !inUse(code, stderr) {
			break
		}
	}
	return code, stdout, stderr
}

var openAPICallsRE = regexp.MustCompile(`the seller made (\d+) requests to it`)

// allCases is how many cases "--profile all" runs: 13 period, 4 one-time,
// 6 on-demand, 6 package, 6 order notification and 15 edge cases.
const allCases = 50

// TestConformanceAgainstServe is the end-to-end check: the
// conformance suite, as a process, against a real "koobridge serve"
// process whose Open API URL points at the suite's mocked Open API.
func TestConformanceAgainstServe(t *testing.T) {
	dir := t.TempDir()
	const key = "conformance-e2e-key-0123456789"
	// Order notification has a key of its own, as Seller Center binds one
	// per interface type: the suite then also checks the others are refused.
	const generalKey = "conformance-e2e-general-key-9876543210"
	junit := filepath.Join(dir, "j.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	stdout, stderr, code := conformanceVsServe(ctx, t, dir, []string{"--key", key, "--general-key", generalKey},
		func(string, string) []string {
			return []string{"--profile", "all", "--key", key, "--general-key", generalKey, "--junit", junit}
		})
	if code != 0 {
		t.Fatalf("conformance exit %d against koobridge serve\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	out := stdout
	if !strings.Contains(out, strconv.Itoa(allCases)+" cases: "+strconv.Itoa(allCases)+" passed, 0 failed") || !strings.HasSuffix(out, "\nPASS\n") {
		t.Fatalf("report does not say every case passed:\n%s", out)
	}
	if strings.Contains(out, "FAIL") {
		t.Fatalf("report has a failed case:\n%s", out)
	}
	// The server really asked the suite's Open API for its orders.
	if m := openAPICallsRE.FindStringSubmatch(out); m == nil || m[1] == "0" {
		t.Fatalf("the server made no Query Order call to the mocked Open API:\n%s", out)
	}
	j := readJUnit(t, junit)
	if j.Tests != allCases || j.Failures != 0 {
		t.Fatalf("JUnit: tests=%d failures=%d, want %d and 0", j.Tests, j.Failures, allCases)
	}
	for _, secret := range []string{key, testSK} {
		if strings.Contains(out, secret) || strings.Contains(stderr, secret) {
			t.Fatal("the conformance output contains the key or the SK")
		}
	}
}

// TestConformanceCommand drives the command in-process against the
// independent test seller: exit codes, the report, the JUnit file, and the
// key and SK from the environment.
func TestConformanceCommand(t *testing.T) {
	const key = "conformance-cli-key-0123456789"
	correct := httptest.NewServer(testseller.New(key, testseller.Faults{}))
	defer correct.Close()
	broken := httptest.NewServer(testseller.New(key, testseller.Faults{SkipSignature: true}))
	defer broken.Close()
	noUpgrade := httptest.NewServer(withoutUpgrade(key, testseller.New(key, testseller.Faults{})))
	defer noUpgrade.Close()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	keyFile, skFile := filepath.Join(t.TempDir(), "key"), filepath.Join(t.TempDir(), "sk")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(skFile, []byte(testSK+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	args := func(target string, extra ...string) []string {
		return append([]string{"conformance", "--target", target + "/produce", "--ak", testAK,
			"--openapi-listen", openAPIPlaceholder}, extra...)
	}
	tests := []struct {
		name     string
		args     []string
		env      bool // KOOBRIDGE_KEY and KOOBRIDGE_SK set
		code     int
		stdout   []string
		noStdout []string
		stderr   string
		junitBad int // failures expected in the JUnit file; -1: no file
	}{
		{"correct seller, key and SK from the environment", args(correct.URL, "--profile", "onetime"), true, exitOK,
			[]string{"PASS  onetime/purchase", "PASS  edge/wrong-signature", "PASS  edge/missing-nonce", "19 cases: 19 passed, 0 failed, 0 skipped"},
			[]string{"sent:"}, "", 0},
		{"verbose", args(correct.URL, "--profile", "onetime", "--verbose"), true, exitOK,
			[]string{"PASS  onetime/purchase", "#1 newInstance: resultCode", "sent:     POST http://", "received: HTTP 200"}, nil, "", 0},
		{"seller that skips signature checks", args(broken.URL, "--profile", "ondemand", "--key", key, "--sk", testSK), false, exitRejected,
			[]string{"FAIL  edge/wrong-signature", "rule signature-check: the seller accepted a call with a wrong signature",
				"FAIL  edge/stale-timestamp", "FAIL  edge/replayed-nonce", "FAIL  edge/missing-signature", "7 failed"}, nil, "7 of 21 conformance cases failed", 7},
		{"optional interface not implemented", args(noUpgrade.URL, "--profile", "period"), true, exitOK,
			[]string{"SKIP  period/upgrade", "upgradeInstance: not implemented (optional, saas-v2.md §1.3)", "28 cases: 27 passed, 0 failed, 1 skipped"}, nil, "", 0},
		{"optional interface required", args(noUpgrade.URL, "--profile", "period", "--require-optional"), true, exitRejected,
			[]string{"FAIL  period/upgrade", "1 failed, 0 skipped"}, nil, "1 of 28 conformance cases failed", 1},
		{"no target", []string{"conformance", "--key", key, "--ak", testAK, "--sk", testSK, "--openapi-listen", "127.0.0.1:0"}, false, exitUsage, nil, nil, "--target is required", -1},
		{"no key", args(correct.URL, "--sk", testSK), false, exitUsage, nil, nil, "--key is required", -1},
		{"no SK", args(correct.URL, "--key", key), false, exitUsage, nil, nil, "--sk are required", -1},
		{"bad profile", args(correct.URL, "--profile", "yearly"), true, exitUsage, nil, nil, `profile "yearly": want one of period, onetime, ondemand, ondemand-pkg, order, v1, kit, sso, license, online-license, metering, all`, -1},
		{"bad deadline", args(correct.URL, "--deadline", "0s"), true, exitUsage, nil, nil, "--deadline", -1},
		// Config.Validate judges the target before the Open API port is taken.
		{"bad target", []string{"conformance", "--target", "ftp://x", "--openapi-listen", busy.Addr().String(), "--ak", testAK}, true, exitUsage, nil, nil, `Target "ftp://x" is not an http or https URL`, -1},
		{"key and SK from files", args(correct.URL, "--profile", "onetime", "--key-file", keyFile, "--sk-file", skFile), false, exitOK,
			[]string{"19 cases: 19 passed"}, nil, "", 0},
		{"key from both flag and file", args(correct.URL, "--key", key, "--key-file", keyFile, "--sk", testSK), false, exitUsage, nil, nil, "either --key or --key-file", -1},
		{"Open API port in use", []string{"conformance", "--target", correct.URL, "--ak", testAK, "--openapi-listen", busy.Addr().String()}, true, exitUsage, nil, nil, "--openapi-listen", -1},
		// The run must not happen: no report on standard output.
		{"JUnit file not writable", args(correct.URL, "--junit", filepath.Join(t.TempDir(), "no-such-dir", "j.xml")), true, exitUsage,
			nil, []string{"cases:", "PASS", "FAIL"}, "--junit", -1},
		{"unknown flag", args(correct.URL, "--frobnicate"), true, exitUsage, nil, nil, "unknown flag", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env {
				t.Setenv("KOOBRIDGE_KEY", key)
				t.Setenv("KOOBRIDGE_SK", testSK)
			} else {
				t.Setenv("KOOBRIDGE_KEY", "")
				t.Setenv("KOOBRIDGE_SK", "")
			}
			a := tt.args
			junit := filepath.Join(t.TempDir(), "j.xml")
			if tt.junitBad >= 0 {
				a = append(a, "--junit", junit)
			}
			code, stdout, stderr := runConformance(t, a)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			for _, want := range tt.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			for _, unwanted := range tt.noStdout {
				if strings.Contains(stdout, unwanted) {
					t.Errorf("stdout has %q:\n%s", unwanted, stdout)
				}
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, tt.stderr)
			}
			if strings.Contains(stdout+stderr, key) || strings.Contains(stdout+stderr, testSK) {
				t.Error("the output contains the key or the SK")
			}
			if tt.junitBad >= 0 {
				if j := readJUnit(t, junit); j.Failures != tt.junitBad {
					t.Errorf("JUnit failures=%d, want %d", j.Failures, tt.junitBad)
				}
			}
		})
	}
}

// v1KitCases is how many cases "--profile v1,kit" runs: 14 V1, 15 Kit V1,
// 18 Kit V2 and edge/deadline.
const v1KitCases = 48

// TestConformanceV1Kit drives the v1 and kit profiles in-process against
// the independent test seller: the seller's public key from
// --rsa-public-key-file or KOOBRIDGE_RSA_PUBLIC_KEY_FILE, the Kit key, a
// fault named, and the refusals of bad flags.
func TestConformanceV1Kit(t *testing.T) {
	const key, kitKey = "conformance-cli-key-0123456789", "conformance-cli-kit-key-2468"
	keys := testseller.Keys{Basic: key, Kit: kitKey}
	correctSeller := testseller.NewWithKeys(keys, testseller.Faults{})
	correct := httptest.NewServer(correctSeller)
	defer correct.Close()
	replays := httptest.NewServer(testseller.NewWithKeys(keys, testseller.Faults{KitReplayOK: true}))
	defer replays.Close()
	dir := t.TempDir()
	der, err := x509.MarshalPKIXPublicKey(correctSeller.RSAPublicKey())
	if err != nil {
		t.Fatal(err)
	}
	pubFile, notPEM := filepath.Join(dir, "seller.pub.pem"), filepath.Join(dir, "not.pem")
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(notPEM, []byte("not a key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := func(target string, extra ...string) []string {
		return append([]string{"conformance", "--target", target + "/produce", "--key", key, "--kit-key", kitKey,
			"--ak", testAK, "--sk", testSK, "--openapi-listen", openAPIPlaceholder}, extra...)
	}
	tests := []struct {
		name   string
		args   []string
		pubEnv string // KOOBRIDGE_RSA_PUBLIC_KEY_FILE
		code   int
		stdout []string
		stderr string
	}{
		{"correct seller", args(correct.URL, "--profile", "v1,kit", "--rsa-public-key-file", pubFile), "", exitOK,
			[]string{"PASS  v1/purchase", "PASS  v1/wrong-key", "PASS  kit/v1/application-sync", "PASS  kit/v2/unbind",
				fmt.Sprintf("%d cases: %d passed, 0 failed", v1KitCases, v1KitCases)}, ""},
		{"public key from the environment, Kit under the production path", args(correct.URL, "--profile", "kit", "--kit-target", correct.URL+"/produce"),
			pubFile, exitOK, []string{"PASS  kit/v2/bad-secret", "34 cases: 34 passed"}, ""},
		{"seller that takes replayed nonces", args(replays.URL, "--profile", "kit", "--rsa-public-key-file", pubFile), "", exitRejected,
			[]string{"FAIL  kit/v2/replayed-nonce", "rule nonce-check: the seller accepted a Kit v2 call that reused the x-nonce"}, "1 of 34 conformance cases failed"},
		{"kit without the public key", args(correct.URL, "--profile", "kit"), "", exitUsage, nil, "--rsa-public-key-file"},
		{"public key file missing", args(correct.URL, "--profile", "kit", "--rsa-public-key-file", filepath.Join(dir, "none.pem")), "", exitUsage, nil, "--rsa-public-key-file"},
		{"public key file not PEM", args(correct.URL, "--profile", "kit", "--rsa-public-key-file", notPEM), "", exitUsage, nil, "--rsa-public-key-file " + notPEM},
		{"bad kit target", args(correct.URL, "--profile", "v1", "--kit-target", "ftp://x"), "", exitUsage, nil, `KitTarget "ftp://x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KOOBRIDGE_RSA_PUBLIC_KEY_FILE", tt.pubEnv)
			code, stdout, stderr := runConformance(t, tt.args)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			for _, want := range tt.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, tt.stderr)
			}
			for _, secret := range []string{key, kitKey, testSK} {
				if strings.Contains(stdout+stderr, secret) {
					t.Error("the output contains a key or the SK")
				}
			}
		})
	}
}

// withoutUpgrade answers 000002 to upgradeInstance, as a seller that does
// not implement the optional interface does, and passes the rest to next.
func withoutUpgrade(key string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"activity":"upgradeInstance"`)) {
			reply := []byte(`{"resultCode":"000002","resultMsg":"upgradeInstance is not supported"}`)
			w.Header().Set("Content-Type", "application/json;charset=UTF-8")
			w.Header().Set(sign.BodySignHeader, sign.BodySign(key, reply))
			_, _ = w.Write(reply)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// TestConformanceInterrupted: a run cut short (Ctrl-C) still prints the
// report of the cases that ran, writes the JUnit file, and exits 1.
func TestConformanceInterrupted(t *testing.T) {
	const key = "conformance-int-key-0123456789"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seller := testseller.New(key, testseller.Faults{})
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 5 {
			cancel() // as SIGINT does to the command's context
		}
		seller.ServeHTTP(w, r)
	}))
	defer srv.Close()
	junit := filepath.Join(t.TempDir(), "j.xml")
	t.Setenv("KOOBRIDGE_KEY", "")
	t.Setenv("KOOBRIDGE_SK", "")
	var stdout, stderr bytes.Buffer
	root := newRootCommand(strings.NewReader(""), &stdout, &stderr)
	root.SetArgs([]string{"conformance", "--target", srv.URL + "/produce", "--key", key, "--ak", testAK, "--sk", testSK,
		"--openapi-listen", "127.0.0.1:0", "--junit", junit})
	err := root.ExecuteContext(ctx)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitRejected || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("err %v, want exit 1 for the interrupt\nstdout:\n%s", err, stdout.String())
	}
	m := regexp.MustCompile(`(\d+) cases: `).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no summary in the partial report:\n%s", stdout.String())
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 || n >= allCases {
		t.Errorf("partial report has %d cases, want some but fewer than %d", n, allCases)
	}
	if j := readJUnit(t, junit); j.Tests == 0 || j.Tests >= allCases {
		t.Errorf("JUnit has %d tests, want the partial run", j.Tests)
	}
}
