//go:build !unix

package provision

import (
	"errors"
	"testing"
)

// TestExecUnsupported: without Unix process groups NewExec refuses every
// command, even a valid one, with ErrExecUnsupported.
func TestExecUnsupported(t *testing.T) {
	e, err := NewExec(ExecConfig{Command: []string{"cmd.exe", "/c", "exit 0"}})
	if e != nil || !errors.Is(err, ErrExecUnsupported) {
		t.Fatalf("NewExec = %v, %v; want ErrExecUnsupported", e, err)
	}
}
