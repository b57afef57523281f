package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ExitPermanent is the exit code with which an exec command says that
// retrying the event cannot help (the vendor rejected it). Any other
// non-zero exit is retried.
const ExitPermanent = 3

// DefaultExecTimeout bounds one run when ExecConfig.Timeout is 0.
const DefaultExecTimeout = 30 * time.Second

// stderrTail is how much of a failed command's standard error its error
// message quotes (the end, where the reason usually is).
const stderrTail = 500

// ErrExecUnsupported is wrapped by NewExec's error on systems where the
// exec provisioner cannot run (those without Unix process groups, such as
// Windows); the webhook provisioner works everywhere.
var ErrExecUnsupported = errors.New("exec provisioner is not supported")

// errExecUnsupported is NewExec's error on goos, a system without Unix
// process groups: without them a timeout could kill the command but not
// what it started, which would keep running unsupervised.
func errExecUnsupported(goos string) error {
	return fmt.Errorf("provision: %w on %s: a timeout must kill the command's whole process group, which needs Unix; use the webhook provisioner", ErrExecUnsupported, goos)
}

// execWaitDelay is how long a command's pipes may stay open after it
// exited or was killed (a background child still holding them).
const execWaitDelay = 2 * time.Second

// ExecConfig configures an Exec.
type ExecConfig struct {
	// Command is the program and its arguments, run directly (no shell).
	Command []string
	// Timeout bounds one run (default 30s); the command's whole process
	// group is killed when it expires.
	Timeout time.Duration
	// Env holds extra "NAME=value" variables for the command.
	Env []string
}

// Exec delivers events to a local command: the Event JSON on its standard
// input, KOOBRIDGE_EVENT and KOOBRIDGE_EVENT_ID in its environment, a JSON
// Result (or nothing) on its standard output.
//
// The command inherits koobridge's environment except the KOOBRIDGE_*
// variables, which hold koobridge's own keys and tokens. It runs in its
// own process group so a timeout kills everything it started.
type Exec struct {
	path    string // Command[0] resolved in PATH
	args    []string
	name    string // base name of Command[0], for error messages
	timeout time.Duration
	env     []string
}

// NewExec checks cfg, looks the program up in PATH and returns an Exec.
//
// On systems without Unix process groups (Windows) it returns an error
// that wraps ErrExecUnsupported: a timed-out command could leave its
// children running there.
func NewExec(cfg ExecConfig) (*Exec, error) {
	if err := execSupported(); err != nil {
		return nil, err
	}
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, errors.New("provision: exec command is required")
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("provision: exec timeout must not be negative")
	}
	for _, kv := range cfg.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("provision: exec environment entry %q is not NAME=value", k)
		}
	}
	path, err := exec.LookPath(cfg.Command[0])
	if err != nil {
		return nil, fmt.Errorf("provision: exec: %w", err)
	}
	e := &Exec{
		path:    path,
		args:    append([]string(nil), cfg.Command[1:]...),
		name:    filepath.Base(cfg.Command[0]),
		timeout: cfg.Timeout,
		env:     append([]string(nil), cfg.Env...),
	}
	if e.timeout == 0 {
		e.timeout = DefaultExecTimeout
	}
	return e, nil
}

// Provision runs the command once for ev.
//
// Exit 0 succeeds and standard output is read as a JSON Result (empty is
// fine except for instance.created, which needs appInfo.frontEndUrl unless
// the event says AppInfoOptional, and license.requested, which needs a
// license). For
// instance.created, exit 0 with {"resultCode":"000106","resultMsg":"…"} on
// standard output, one of the business codes, refuses the purchase:
// Provision returns the *Refusal.
// Exit 3 (ExitPermanent), and a success whose output cannot be used, give
// a Permanent error. Any other exit, a signal, a timeout or a failure to
// start is retryable. Errors quote the last 500 bytes of standard error.
func (e *Exec) Provision(ctx context.Context, ev Event) (Result, error) {
	if ev.ID == "" || ev.Type == "" {
		return Result{}, Permanent(fmt.Errorf("provision: exec %s: event without id or type", e.name))
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return Result{}, Permanent(fmt.Errorf("provision: exec: encode event: %w", err))
	}
	var stdout capBuffer
	stdout.max = maxReplyBytes
	var stderr capBuffer
	stderr.max = stderrTail
	stderr.tail = true
	fail := func(format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		if s := printable([]byte(redactDevice(ev, string(stderr.Bytes())))); s != "" {
			msg += "; stderr: " + s
		}
		return fmt.Errorf("provision: exec %s: %s %s: %s", e.name, ev.Type, ev.ID, msg)
	}

	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.path, e.args...)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.Env = e.environ(ev)
	killGroupOnCancel(cmd)
	cmd.WaitDelay = execWaitDelay

	err = cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		// It exited 0 but left a background process holding its output;
		// what it wrote before exiting is its answer.
		err = nil
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		if stdout.overflow {
			return Result{}, Permanent(fail("standard output exceeds %d bytes", maxReplyBytes))
		}
		res, err := decodeResult(ev, stdout.Bytes())
		if err != nil {
			return Result{}, asRefusal(err, func(err error) error { return Permanent(fail("%v", err)) })
		}
		return res, nil
	case parent.Err() != nil:
		return Result{}, fail("stopped: %v", parent.Err())
	case ctx.Err() != nil:
		return Result{}, fail("killed after the %s timeout", e.timeout)
	case errors.As(err, &exitErr):
		if exitErr.ExitCode() == ExitPermanent {
			return Result{}, Permanent(fail("exit status %d: the command rejected the event", ExitPermanent))
		}
		return Result{}, fail("%v", exitErr)
	default:
		return Result{}, fail("run: %v", err)
	}
}

// environ is koobridge's environment without KOOBRIDGE_* variables, then
// the configured extras, then the event's variables, which win.
func (e *Exec) environ(ev Event) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KOOBRIDGE_") {
			env = append(env, kv)
		}
	}
	env = append(env, e.env...)
	return append(env, "KOOBRIDGE_EVENT="+string(ev.Type), "KOOBRIDGE_EVENT_ID="+ev.ID)
}

// capBuffer keeps at most max bytes of what is written to it: the first
// max bytes, or the last max bytes when tail is set. It never fails a
// write, so a chatty command is not stopped by a broken pipe.
type capBuffer struct {
	buf      []byte
	max      int
	tail     bool
	overflow bool
}

func (b *capBuffer) Write(p []byte) (int, error) {
	n := len(p)
	switch {
	case b.tail:
		b.buf = append(b.buf, p...)
		if len(b.buf) > b.max {
			b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.max:]...)
			b.overflow = true
		}
	case len(b.buf)+len(p) > b.max:
		b.buf = append(b.buf, p[:b.max-len(b.buf)]...)
		b.overflow = true
	default:
		b.buf = append(b.buf, p...)
	}
	return n, nil
}

// Bytes returns what was kept.
func (b *capBuffer) Bytes() []byte { return b.buf }
