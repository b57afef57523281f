package provision

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// script writes an executable shell script into a temporary directory and
// returns its path. The exec provisioner runs only on Unix (NewExec refuses
// elsewhere, see TestExecUnsupported), so a test that needs one stops here.
func script(t *testing.T, body string) string {
	t.Helper()
	if err := execSupported(); err != nil {
		t.Skipf("exec provisioner: %v", err)
	}
	path := filepath.Join(t.TempDir(), "hook.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func newTestExec(t *testing.T, cfg ExecConfig) *Exec {
	t.Helper()
	e, err := NewExec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestExecUnsupportedMessage checks the error that NewExec gives on a system
// without process groups: matchable, and saying which system and what to
// use instead, since an operator reads it at "koobridge serve" start.
func TestExecUnsupportedMessage(t *testing.T) {
	err := errExecUnsupported("windows")
	if !errors.Is(err, ErrExecUnsupported) {
		t.Errorf("%v does not wrap ErrExecUnsupported", err)
	}
	for _, want := range []string{"provision: exec provisioner is not supported on windows:", "use the webhook provisioner"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
