package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/testseller"
)

// Cases of each license profile, edge/deadline included: 19 license-code
// cases and edge/deadline, 13 online-license cases and edge/deadline.
const (
	licenseCases       = 19 + 1
	onlineLicenseCases = 13 + 1
)

// TestConformanceLicenseAgainstServe: the license and online-license
// profiles, as a process, against a real "koobridge serve" process with a
// license key of its own and its Open API URL at the suite's mocked Open
// API, where its Query Order calls and its license uploads go.
func TestConformanceLicenseAgainstServe(t *testing.T) {
	const key, licenseKey = "conformance-e2e-key-0123456789", "conformance-e2e-license-key-2468"
	for _, tt := range []struct {
		profile string
		cases   int
	}{
		{"license", licenseCases},
		{"online-license", onlineLicenseCases},
	} {
		t.Run(tt.profile, func(t *testing.T) {
			dir := t.TempDir()
			junit := filepath.Join(dir, "j.xml")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			out, stderr, code := conformanceVsServe(ctx, t, dir, []string{"--key", key, "--license-key", licenseKey},
				func(string, string) []string {
					return []string{"--profile", tt.profile, "--key", key, "--license-key", licenseKey, "--junit", junit}
				})
			if code != 0 {
				t.Fatalf("conformance --profile %s exit %d against koobridge serve\nstdout:\n%s\nstderr:\n%s", tt.profile, code, out, stderr)
			}
			n := strconv.Itoa(tt.cases)
			if !strings.Contains(out, n+" cases: "+n+" passed, 0 failed, 0 skipped") || !strings.HasSuffix(out, "\nPASS\n") || strings.Contains(out, "FAIL") {
				t.Fatalf("report does not say every case passed:\n%s", out)
			}
			if m := openAPICallsRE.FindStringSubmatch(out); tt.profile == "online-license" && (m == nil || m[1] == "0") {
				t.Fatalf("the server made no Query Order call or upload to the mocked Open API:\n%s", out)
			}
			j := readJUnit(t, junit)
			if j.Tests != tt.cases || j.Failures != 0 || len(j.Suites) != 2 || j.Suites[0].Name != tt.profile || len(j.Suites[0].Cases) != tt.cases-1 {
				t.Fatalf("JUnit: tests=%d failures=%d suites=%+v, want %d tests in %s and edge, no failure", j.Tests, j.Failures, j.Suites, tt.cases, tt.profile)
			}
			for _, secret := range []string{key, licenseKey, testSK} {
				if strings.Contains(out, secret) || strings.Contains(stderr, secret) {
					t.Fatal("the conformance output contains a key or the SK")
				}
			}
		})
	}
}

// TestConformanceLicenseCommand drives the license profiles in-process
// against the independent test seller, whose Open API is the suite's
// listener: its license target and key flags, a fault named, and the
// refusals of bad flags.
func TestConformanceLicenseCommand(t *testing.T) {
	const key, licenseKey = "conformance-cli-key-0123456789", "conformance-cli-license-key-1357"
	keys := testseller.Keys{Basic: key, License: licenseKey}
	tests := []struct {
		name   string
		faults testseller.Faults
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"correct seller", testseller.Faults{}, []string{"--profile", "license,online-license", "--license-upload-window", "10m"}, exitOK,
			[]string{"PASS  license/renewal", "PASS  online-license/request-license", "33 cases: 33 passed, 0 failed"}, ""},
		{"license target", testseller.Faults{}, []string{"--profile", "license", "--license-target", "{seller}/vendor/license"}, exitOK,
			[]string{"PASS  license/wrong-key", "20 cases: 20 passed"}, ""},
		{"online license signed with the basic key", testseller.Faults{}, []string{"--profile", "online-license", "--online-license-key-type", "basic", "--license-upload-window", "10m"},
			exitRejected, []string{"FAIL  online-license/purchase", "000001"}, "conformance cases failed"},
		{"wrong sha256", testseller.Faults{OnlineLicenseWrongSHA256: true}, []string{"--profile", "online-license", "--license-upload-window", "10m"}, exitRejected,
			[]string{"FAIL  online-license/request-license", "rule license-upload: ", "CBC.0101 invalid parameter sha256"}, "2 of 14 conformance cases failed"},
		{"bad key type", testseller.Faults{}, []string{"--profile", "online-license", "--online-license-key-type", "kit"}, exitUsage, nil, `--online-license-key-type "kit": want license or basic`},
		{"bad upload window", testseller.Faults{}, []string{"--profile", "online-license", "--license-upload-window", "0s"}, exitUsage, nil, "--license-upload-window 0s"},
		{"bad license target", testseller.Faults{}, []string{"--profile", "license", "--license-target", "ftp://x/license"}, exitUsage, nil, `LicenseTarget "ftp://x/license"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KOOBRIDGE_KEY", "")
			t.Setenv("KOOBRIDGE_SK", "")
			var code int
			var stdout, stderr string
			for range portRetries {
				openAPI := "127.0.0.1:" + strconv.Itoa(freePort(t))
				seller := httptest.NewServer(testseller.NewWithKeys(keys, tt.faults).WithOpenAPI("http://"+openAPI, testAK, testSK))
				args := []string{"conformance", "--target", seller.URL + "/produce", "--key", key, "--license-key", licenseKey,
					"--ak", testAK, "--sk", testSK, "--openapi-listen", openAPI}
				for _, a := range tt.args {
					args = append(args, strings.ReplaceAll(a, "{seller}", seller.URL))
				}
				var out, errOut bytes.Buffer
				code = run(args, strings.NewReader(""), &out, &errOut)
				stdout, stderr = out.String(), errOut.String()
				seller.Close()
				if !inUse(code, stderr) {
					break
				}
			}
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
			for _, secret := range []string{key, licenseKey, testSK} {
				if strings.Contains(stdout+stderr, secret) {
					t.Error("the output contains a key or the SK")
				}
			}
		})
	}
}
