package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestVersionFlag: "koobridge --version" and "-v" print the same line as
// "koobridge version".
func TestVersionFlag(t *testing.T) {
	want := runCLI(t, "", "version")
	if want.code != exitOK || !strings.HasPrefix(want.stdout, "koobridge ") {
		t.Fatalf("version: exit %d, %q", want.code, want.stdout)
	}
	for _, flag := range []string{"--version", "-v"} {
		r := runCLI(t, "", flag)
		if r.code != exitOK || r.stdout != want.stdout {
			t.Errorf("koobridge %s: exit %d, %q; want %q", flag, r.code, r.stdout, want.stdout)
		}
	}
}

// TestVersionBuilds builds the real binary three ways and checks what
// "version" and "--version" print: the link-time stamps exactly, the
// toolchain's VCS information when there are no stamps, and still a
// useful line with neither.
func TestVersionBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the koobridge binary; skipped with -short")
	}
	goVersion := goOutput(t, "env", "GOVERSION")
	platform := goVersion + " " + goOutput(t, "env", "GOOS") + "/" + goOutput(t, "env", "GOARCH")
	head := gitOutput(t, "rev-parse", "HEAD")
	const stampedCommit = "0123456789abcdef0123456789abcdef01234567"

	tests := []struct {
		name  string
		clone bool // build in a fresh clone of HEAD
		flags []string
		want  *regexp.Regexp
	}{
		{
			name: "stamped",
			flags: []string{"-buildvcs=false", "-ldflags",
				"-X main.version=v9.8.7-test -X main.commit=" + stampedCommit + " -X main.date=2026-12-07T01:02:03Z"},
			want: regexp.MustCompile(`^` + regexp.QuoteMeta("koobridge v9.8.7-test (commit 0123456789ab, built 2026-12-07T01:02:03Z, "+platform+")") + `$`),
		},
		{
			// go build in a clone: the module version Go derives from the
			// VCS, the commit and its time. Built in a fresh clone of HEAD,
			// because Go stamps only where .git is a directory, and the
			// tests may run in a git worktree, whose .git is a file;
			// -trimpath lets that build reuse the cache.
			name:  "VCS",
			clone: true,
			flags: []string{"-buildvcs=true", "-trimpath"},
			want: regexp.MustCompile(`^koobridge v\S+ \(commit ` + head[:12] + `, built \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, ` +
				regexp.QuoteMeta(platform) + `\)$`),
		},
		{
			name:  "plain",
			flags: []string{"-buildvcs=false"},
			want:  regexp.MustCompile(`^koobridge devel \(` + regexp.QuoteMeta(platform) + `\)$`),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "koobridge")
			args := append(append([]string{"build"}, tt.flags...), "-o", bin, ".")
			build := exec.Command("go", args...)
			if tt.clone {
				clone := filepath.Join(t.TempDir(), "clone")
				gitOutput(t, "clone", "--quiet", "--shared", gitOutput(t, "rev-parse", "--show-toplevel"), clone)
				build.Dir = filepath.Join(clone, "cmd", "koobridge")
			}
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			for _, arg := range []string{"version", "--version"} {
				out, err := exec.Command(bin, arg).Output()
				if err != nil {
					t.Fatalf("koobridge %s: %v", arg, err)
				}
				if line := strings.TrimSuffix(string(out), "\n"); !tt.want.MatchString(line) {
					t.Errorf("koobridge %s = %q, want %s", arg, out, tt.want)
				}
			}
		})
	}
}

// goOutput runs the go command and returns its trimmed output.
func goOutput(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// gitOutput runs git in the clone and returns its trimmed output.
func gitOutput(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		t.Fatalf("git %s: %v (the tests run in a git clone)", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}
