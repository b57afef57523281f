//go:build unix

package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestExecSuccess(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KOOBRIDGE_SK", "must-not-leak")
	t.Setenv("VENDOR_HOME", "/opt/vendor")
	path := script(t, `
cat > "$OUT/stdin.json"
env > "$OUT/env.txt"
echo "args: $*" >&2
printf '%s' '{"appInfo":{"frontEndUrl":"https://app.example.com/t/inst-1","password":"pw","memo":"中文"}}'
`)
	e := newTestExec(t, ExecConfig{Command: []string{path, "--flag", "two words"}, Env: []string{"OUT=" + dir, "EXTRA=1"}})
	ev := testEvent(EventCreated)
	res, err := e.Provision(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if res.AppInfo == nil || res.AppInfo.FrontEndURL != "https://app.example.com/t/inst-1" || res.AppInfo.Memo != "中文" {
		t.Errorf("Result = %+v", res)
	}

	stdin, err := os.ReadFile(filepath.Join(dir, "stdin.json"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(ev)
	if !bytes.Equal(stdin, want) {
		t.Errorf("stdin = %s, want %s", stdin, want)
	}
	envText, err := os.ReadFile(filepath.Join(dir, "env.txt"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(envText), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	for k, v := range map[string]string{
		"KOOBRIDGE_EVENT":    "instance.created",
		"KOOBRIDGE_EVENT_ID": ev.ID,
		"EXTRA":              "1",
		"VENDOR_HOME":        "/opt/vendor",
	} {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["KOOBRIDGE_SK"]; ok {
		t.Error("koobridge's own KOOBRIDGE_SK reached the command")
	}
}

func TestExecOutcomes(t *testing.T) {
	tests := []struct {
		name      string
		typ       EventType
		script    string
		wantErr   string // "" = success
		permanent bool
		check     func(t *testing.T, res Result)
	}{
		{name: "renewed, no output", typ: EventRenewed, script: "cat >/dev/null\n"},
		{name: "ignores stdin", typ: EventReleased, script: "exit 0\n"},
		{name: "change refused", typ: EventChangeCheck, script: `echo '{"allowed":false,"reason":"no downgrades"}'` + "\n",
			check: func(t *testing.T, res Result) {
				if res.Allowed || res.Reason != "no downgrades" {
					t.Errorf("Result = %+v", res)
				}
			}},
		{name: "change allowed by silence", typ: EventChangeCheck, script: "exit 0\n",
			check: func(t *testing.T, res Result) {
				if !res.Allowed {
					t.Errorf("Result = %+v", res)
				}
			}},
		{name: "created, no output", typ: EventCreated, script: "exit 0\n", wantErr: "no appInfo.frontEndUrl", permanent: true},
		{name: "bad JSON", typ: EventCreated, script: "echo 'provisioned!'\n", wantErr: "not a JSON result object", permanent: true},
		{name: "exit 3", typ: EventCreated, script: "echo 'customer is blocked' >&2\nexit 3\n", wantErr: "customer is blocked", permanent: true},
		{name: "exit 1", typ: EventCreated, script: "echo 'database down' >&2\nexit 1\n", wantErr: "exit status 1; stderr: database down"},
		{name: "exit 2", typ: EventRenewed, script: "exit 2\n", wantErr: "exit status 2"},
		{name: "killed by a signal", typ: EventRenewed, script: "kill -9 $$\n", wantErr: "signal: killed"},
		{name: "stdout too large", typ: EventRenewed, script: "head -c 1100000 /dev/zero | tr '\\0' ' '\n", wantErr: "exceeds", permanent: true},
		{name: "stdout exactly 1 MiB", typ: EventRenewed, script: "printf '{}'; head -c 1048574 /dev/zero | tr '\\0' ' '\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestExec(t, ExecConfig{Command: []string{script(t, tt.script)}})
			res, err := e.Provision(context.Background(), testEvent(tt.typ))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tt.check != nil {
					tt.check(t, res)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
			if got := errors.Is(err, ErrPermanent); got != tt.permanent {
				t.Errorf("permanent = %v, want %v (%v)", got, tt.permanent, err)
			}
		})
	}
}

func TestExecStderrTail(t *testing.T) {
	e := newTestExec(t, ExecConfig{Command: []string{script(t, `
i=0
while [ $i -lt 100 ]; do echo "noise line $i" >&2; i=$((i+1)); done
echo "FINAL: quota exceeded" >&2
exit 1
`)}})
	_, err := e.Provision(context.Background(), testEvent(EventCreated))
	if err == nil {
		t.Fatal("exit 1 succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, "FINAL: quota exceeded") {
		t.Errorf("error %q lacks the end of stderr", msg)
	}
	if strings.Contains(msg, "noise line 0 ") || strings.Contains(msg, "noise line 1 ") {
		t.Errorf("error %q quotes the start of stderr", msg)
	}
	_, tail, _ := strings.Cut(msg, "stderr: ")
	if len(tail) > 500 {
		t.Errorf("stderr quote is %d bytes, want at most 500", len(tail))
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error %q spans several lines", msg)
	}
}

// TestExecTimeoutKillsGroup runs a command that starts a child and sleeps:
// the timeout must kill both, not only the direct child.
func TestExecTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	path := script(t, `
sleep 300 &
echo $! > "$OUT/child.pid"
echo $$ > "$OUT/parent.pid"
sleep 300
`)
	e := newTestExec(t, ExecConfig{Command: []string{path}, Timeout: 500 * time.Millisecond, Env: []string{"OUT=" + dir}})
	_, err := e.Provision(context.Background(), testEvent(EventCreated))
	if err == nil || errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("error = %v, want a retryable timeout", err)
	}
	for _, name := range []string{"parent.pid", "child.pid"} {
		pid := readPID(t, filepath.Join(dir, name))
		waitGone(t, pid)
	}
}

// TestExecCallerCancel stops a run when the caller's context ends (the
// job's lease), as a retryable error.
func TestExecCallerCancel(t *testing.T) {
	e := newTestExec(t, ExecConfig{Command: []string{script(t, "sleep 300\n")}, Timeout: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := e.Provision(ctx, testEvent(EventRenewed))
	if err == nil || errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("error = %v, want a retryable stop", err)
	}
}

// TestExecBackgroundChild: a command that exits 0 but leaves a background
// process holding its standard output still succeeds with what it wrote.
func TestExecBackgroundChild(t *testing.T) {
	dir := t.TempDir()
	path := script(t, `
sleep 300 &
echo $! > "$OUT/child.pid"
echo '{"appInfo":{"frontEndUrl":"https://app.example.com"}}'
`)
	e := newTestExec(t, ExecConfig{Command: []string{path}, Env: []string{"OUT=" + dir}})
	t.Cleanup(func() {
		if pid := readPID(t, filepath.Join(dir, "child.pid")); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	res, err := e.Provision(context.Background(), testEvent(EventCreated))
	if err != nil {
		t.Fatal(err)
	}
	if res.AppInfo == nil || res.AppInfo.FrontEndURL != "https://app.example.com" {
		t.Errorf("Result = %+v", res)
	}
}

func TestNewExecConfig(t *testing.T) {
	ok := script(t, "exit 0\n")
	plain := filepath.Join(t.TempDir(), "plain.sh")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  ExecConfig
	}{
		{"no command", ExecConfig{}},
		{"empty program", ExecConfig{Command: []string{""}}},
		{"not found", ExecConfig{Command: []string{"koobridge-no-such-program-xyz"}}},
		{"not executable", ExecConfig{Command: []string{plain}}},
		{"negative timeout", ExecConfig{Command: []string{ok}, Timeout: -time.Second}},
		{"bad env", ExecConfig{Command: []string{ok}, Env: []string{"NOEQUALS"}}},
	}
	for _, tt := range tests {
		if _, err := NewExec(tt.cfg); err == nil {
			t.Errorf("%s: NewExec accepted %+v", tt.name, tt.cfg)
		}
	}
	// A bare name is looked up in PATH.
	if _, err := NewExec(ExecConfig{Command: []string{"sh", "-c", "exit 0"}}); err != nil {
		t.Errorf("sh from PATH: %v", err)
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pid
}

// waitGone polls until pid no longer runs (gone, or a zombie waiting for a
// parent that never reaps it, as in containers without an init).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return // gone
		}
		// The state follows the ")" that closes the command name.
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d still runs after the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
