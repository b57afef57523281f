//go:build !unix

package provision

import (
	"os/exec"
	"runtime"
)

// execSupported refuses: there are no Unix process groups here. (Windows
// job objects could do the same; nobody has needed it yet.)
func execSupported() error { return errExecUnsupported(runtime.GOOS) }

// killGroupOnCancel is never reached: NewExec refuses first.
func killGroupOnCancel(*exec.Cmd) {}
