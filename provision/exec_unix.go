//go:build unix

package provision

import (
	"os/exec"
	"syscall"
)

// execSupported reports whether Exec can run here: Unix has process groups.
func execSupported() error { return nil }

// killGroupOnCancel starts cmd in its own process group and makes its
// cancellation kill the whole group, so a timeout also stops whatever the
// command spawned.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The negative pid signals the whole group: the command and
		// whatever it spawned.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
