package provision

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The verifier examples in docs/examples/webhook-verify are what vendors
// copy, so they are tested against real deliveries from Webhook.

const exampleDir = "../docs/examples/webhook-verify"

// captureDelivery sends ev through a Webhook to a recording server and
// returns the signature header and the raw body as received.
func captureDelivery(t *testing.T, ev Event) (header string, body []byte) {
	t.Helper()
	v := newVendor(t, http.StatusOK, createdReply)
	if _, err := newTestWebhook(t, v.srv.URL).Provision(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	d := v.last(t)
	return d.header.Get(HeaderSignature), d.body
}

// buildGoExample compiles the Go verifier once per test.
func buildGoExample(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	bin := filepath.Join(t.TempDir(), "webhook-verify")
	cmd := exec.Command(goBin, "build", "-o", bin, ".")
	cmd.Dir = exampleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", exampleDir, err, out)
	}
	return bin
}

type verifierCase struct {
	name   string
	secret string
	header string
	body   []byte
	now    time.Time
	valid  bool
}

func verifierCases(t *testing.T) []verifierCase {
	header, body := captureDelivery(t, testEvent(EventCreated))
	ts, _, _ := strings.Cut(strings.TrimPrefix(header, "t="), ",")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		t.Fatalf("header %q: %v", header, err)
	}
	at := time.Unix(sec, 0)
	return []verifierCase{
		{"real delivery", testSecret, header, body, at, true},
		{"4 minutes later", testSecret, header, body, at.Add(4 * time.Minute), true},
		{"tampered body", testSecret, header, bytes.Replace(body, []byte("inst-1"), []byte("inst-2"), 1), at, false},
		{"wrong secret", "whsec-wrong", header, body, at, false},
		{"replayed after 6 minutes", testSecret, header, body, at.Add(6 * time.Minute), false},
		{"from the future", testSecret, header, body, at.Add(-6 * time.Minute), false},
		{"no signature", testSecret, "t=" + ts, body, at, false},
		{"known answer", testSecret, "t=1767225600,v1=6a4ed5e5bb49126ec0901c1ee467c86e53cf206444cedc2f7fe32f5101b8ff7d",
			[]byte(`{"id":"e1","type":"instance.created"}`), time.Unix(1767225600, 0), true},
	}
}

// runVerifier runs one verifier command with the body on stdin and
// reports whether it exited 0; exit 1 means invalid, anything else fails.
func runVerifier(t *testing.T, argv []string, body []byte) bool {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Env = append(os.Environ(), "WEBHOOK_SECRET=")
	out, err := cmd.CombinedOutput()
	if err == nil {
		return true
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		return false
	}
	t.Fatalf("%v: %v\n%s", argv, err, out)
	return false
}

func TestGoVerifierExample(t *testing.T) {
	bin := buildGoExample(t)
	for _, c := range verifierCases(t) {
		argv := []string{bin, "-check", "-secret", c.secret, "-header", c.header, "-now", strconv.FormatInt(c.now.Unix(), 10)}
		if got := runVerifier(t, argv, c.body); got != c.valid {
			t.Errorf("%s: Go verifier says valid=%v, want %v", c.name, got, c.valid)
		}
	}
}

func TestPythonVerifierExample(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not on PATH: the Python verifier example is not tested")
	}
	script, err := filepath.Abs(filepath.Join(exampleDir, "verify.py"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range verifierCases(t) {
		argv := []string{python, script, "--secret", c.secret, "--header", c.header, "--now", strconv.FormatInt(c.now.Unix(), 10)}
		if got := runVerifier(t, argv, c.body); got != c.valid {
			t.Errorf("%s: Python verifier says valid=%v, want %v", c.name, got, c.valid)
		}
	}
}

// TestGoExampleVendor runs the Go example as a real vendor server and
// delivers events to it: it accepts koobridge's signature, answers
// instance.created with app info, answers a repeat identically, and
// rejects a delivery signed with another secret (permanent: 401).
func TestGoExampleVendor(t *testing.T) {
	bin := buildGoExample(t)
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "WEBHOOK_SECRET="+testSecret)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		wg.Wait()
	})
	addr := make(chan string, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				addr <- u
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	var url string
	select {
	case url = <-addr:
	case <-time.After(30 * time.Second):
		t.Fatal("example vendor did not start listening")
	}

	w := newTestWebhook(t, url)
	ev := testEvent(EventCreated)
	first, err := w.Provision(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if first.AppInfo == nil || !strings.HasSuffix(first.AppInfo.FrontEndURL, "/t/inst-1") {
		t.Fatalf("Result = %+v", first)
	}
	again, err := w.Provision(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if *again.AppInfo != *first.AppInfo {
		t.Errorf("repeat answered %+v, first %+v", again.AppInfo, first.AppInfo)
	}
	check, err := w.Provision(context.Background(), testEvent(EventChangeCheck))
	if err != nil || !check.Allowed {
		t.Errorf("change.check = %+v, %v", check, err)
	}

	bad, err := NewWebhook(WebhookConfig{URL: url, Secret: "whsec-wrong"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Provision(context.Background(), testEvent(EventRenewed))
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("wrongly signed delivery: %v, want HTTP 401", err)
	}
}
