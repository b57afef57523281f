package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/testseller"
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

var openAPICallsRE = regexp.MustCompile(`the seller made (\d+) requests to it`)

// allCases is how many cases "--profile all" runs: 13 period, 4 one-time,
// 6 pay-per-use, 6 package, 11 edge.
const allCases = 40

// TestConformanceAgainstServe is the end-to-end check: the
// conformance suite, as a process, against a real "koobridge serve"
// process whose Open API URL points at the suite's mocked Open API.
func TestConformanceAgainstServe(t *testing.T) {
	bin := koobridgeBinary(t)
	dir := t.TempDir()
	const key = "conformance-e2e-key-0123456789"
	openAPI := "127.0.0.1:" + strconv.Itoa(freePort(t))
	p := startServe(t, "--db", filepath.Join(dir, "k.db"), "--key", key, "--ak", testAK, "--sk", testSK,
		"--data-key", newDataKey(t), "--openapi-url", "http://"+openAPI, "--listen", "127.0.0.1:0")

	junit := filepath.Join(dir, "j.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "conformance", "--profile", "all", "--target", p.base+"/produce",
		"--key", key, "--ak", testAK, "--sk", testSK, "--openapi-listen", openAPI, "--junit", junit)
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run conformance: %v", err)
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("conformance exit %d against koobridge serve\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
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
		if strings.Contains(out, secret) || strings.Contains(stderr.String(), secret) {
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
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	args := func(target string, extra ...string) []string {
		return append([]string{"conformance", "--target", target + "/produce", "--ak", testAK,
			"--openapi-listen", "127.0.0.1:" + strconv.Itoa(freePort(t))}, extra...)
	}
	tests := []struct {
		name     string
		args     []string
		env      bool // KOOBRIDGE_KEY and KOOBRIDGE_SK set
		code     int
		stdout   []string
		stderr   string
		junitBad int // failures expected in the JUnit file; -1: no file
	}{
		{"correct seller, key and SK from the environment", args(correct.URL, "--profile", "onetime"), true, exitOK,
			[]string{"PASS  onetime/purchase", "PASS  edge/wrong-signature", "15 cases: 15 passed, 0 failed"}, "", 0},
		{"seller that skips signature checks", args(broken.URL, "--profile", "ondemand", "--key", key, "--sk", testSK), false, exitRejected,
			[]string{"FAIL  edge/wrong-signature", "rule signature-check: the seller accepted a call with a wrong signature",
				"FAIL  edge/stale-timestamp", "FAIL  edge/replayed-nonce", "3 failed"}, "3 of 17 conformance cases failed", 3},
		{"no target", []string{"conformance", "--key", key, "--ak", testAK, "--sk", testSK, "--openapi-listen", "127.0.0.1:0"}, false, exitUsage, nil, "--target is required", -1},
		{"no key", args(correct.URL, "--sk", testSK), false, exitUsage, nil, "--key is required", -1},
		{"no SK", args(correct.URL, "--key", key), false, exitUsage, nil, "--sk are required", -1},
		{"bad profile", args(correct.URL, "--profile", "yearly"), true, exitUsage, nil, "--profile", -1},
		{"bad deadline", args(correct.URL, "--deadline", "0s"), true, exitUsage, nil, "--deadline", -1},
		{"bad target", []string{"conformance", "--target", "ftp://x", "--openapi-listen", "127.0.0.1:0", "--ak", testAK}, true, exitUsage, nil, "--target", -1},
		{"Open API port in use", []string{"conformance", "--target", correct.URL, "--ak", testAK, "--openapi-listen", busy.Addr().String()}, true, exitUsage, nil, "--openapi-listen", -1},
		{"unknown flag", args(correct.URL, "--frobnicate"), true, exitUsage, nil, "unknown flag", -1},
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
			var stdout, stderr bytes.Buffer
			code := run(a, strings.NewReader(""), &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout.String(), stderr.String())
			}
			for _, want := range tt.stdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
				}
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.stderr)
			}
			if strings.Contains(stdout.String()+stderr.String(), key) || strings.Contains(stdout.String()+stderr.String(), testSK) {
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
