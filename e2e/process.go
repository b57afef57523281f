package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/lockbuf"
)

// The koobridge binary is built once per test run, into buildDir.
var (
	buildOnce sync.Once
	buildDir  string
	binary    string
	buildErr  error
)

// Binary returns the path of a koobridge binary built from this checkout,
// building it on first use. The test's working directory must be the e2e
// package directory, as go test sets it.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "koobridge-e2e-")
		if buildErr != nil {
			return
		}
		binary = filepath.Join(buildDir, "koobridge")
		cmd := exec.Command("go", "build", "-o", binary, "github.com/koobridge/koobridge/cmd/koobridge")
		// Build in the main module, with its own go.sum: this module
		// only needs the sums of the packages its tests import.
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build koobridge: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// RemoveBinary deletes the built binary; call it from TestMain after the
// tests ran.
func RemoveBinary() {
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
}

// Koobridge is a running koobridge process.
type Koobridge struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234.
	URL    string
	cmd    *exec.Cmd
	stderr *lockbuf.Buffer
	exited chan struct{}
}

// startTimeout bounds how long the process may take to answer /healthz.
const startTimeout = 30 * time.Second

// StartKoobridge runs the koobridge binary with args plus --listen on a
// free 127.0.0.1 port, waits until /healthz answers and stops the process
// with SIGTERM when the test ends. Its stderr is logged if the test fails.
// The free port is only free when it is picked; if another process takes
// it before koobridge binds it, the start is retried on another port.
func StartKoobridge(t testing.TB, args ...string) *Koobridge {
	t.Helper()
	bin := Binary(t)
	for attempt := 1; ; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		k := &Koobridge{URL: "http://" + addr, stderr: &lockbuf.Buffer{}, exited: make(chan struct{})}
		k.cmd = exec.Command(bin, append(args, "--listen", addr)...)
		// Started by name, as an installed koobridge is: the demo prints
		// the commands to run next with the name it was started as.
		k.cmd.Args[0] = "koobridge"
		k.cmd.Stdout = k.stderr
		k.cmd.Stderr = k.stderr
		if err := k.cmd.Start(); err != nil {
			t.Fatalf("start koobridge: %v", err)
		}
		go func() { _ = k.cmd.Wait(); close(k.exited) }()
		err = k.waitHealthy()
		if err != nil && attempt < 3 && strings.Contains(k.Stderr(), "address already in use") {
			k.stop()
			continue
		}
		t.Cleanup(func() {
			k.stop()
			if t.Failed() {
				t.Logf("koobridge stderr:\n%s", k.Stderr())
			}
		})
		if err != nil {
			t.Fatalf("koobridge %v: %v\nstderr:\n%s", args, err, k.Stderr())
		}
		return k
	}
}

// Stderr returns what the process wrote so far (stdout included).
func (k *Koobridge) Stderr() string { return k.stderr.String() }

func (k *Koobridge) waitHealthy() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, k.URL+"/healthz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-k.exited:
			return fmt.Errorf("exited before it was healthy (%v)", k.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("/healthz did not answer 200 within %v", startTimeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits for the graceful shutdown, killing the
// process if it takes too long.
func (k *Koobridge) stop() {
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(20 * time.Second):
		_ = k.cmd.Process.Kill()
		<-k.exited
	}
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago; the small race with other processes is acceptable in tests.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}
